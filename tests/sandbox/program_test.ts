import { assert, assertEquals, assertThrows } from "../_helpers.ts";
import { Program } from "../../sandbox/mod.ts";
import { syscallNumber } from "denobox/libc";

Deno.test("program: steps encode syscall numbers, arguments, labels (no privileges)", () => {
  using p = new Program({ arch: "x86_64" });
  p.mount("proc", "/r/proc", { type: "proc", flags: 14 });
  p.pivotRoot("/srv/box/rootfs", "/srv/box/rootfs");
  const fd = p.open("/proc/self/uid_map", { flags: 1 });
  p.write(fd, "0 1000 1");
  p.execve("/bin/sh", ["sh", "-c", "true"], { A: "1" });
  const steps = p.decode();
  assertEquals(steps.map((s) => s.syscall), [
    "mount",
    "pivot_root",
    "openat",
    "write",
    "execve",
  ]);
  assertEquals(steps[1]!.label, 'pivot_root("/srv/box/rootfs")');
  assertEquals(steps[1]!.nr, 155);
  assertEquals(p.readString(steps[0]!.args[1]!), "/r/proc");
  assertEquals(steps[0]!.args[3], 14n);
  // the write loads its fd from the open step's result slot, and expects the full length
  assertEquals(steps[3]!.loads, [true, false, false, false, false, false]);
  assertEquals(steps[3]!.args[0], fd.address);
  assertEquals(steps[3]!.expect, 8n);
  assertEquals(steps[2]!.args[2], BigInt(1 | 0o2000000), "O_CLOEXEC added");
});

Deno.test("program: aarch64 programs use aarch64 numbers (openat, dup3)", () => {
  using p = new Program({ arch: "aarch64" });
  p.open("/x");
  p.dup3(5, 0);
  p.setrlimit("nofile", { soft: 10, hard: 20 });
  assertEquals(p.decode().map((s) => s.nr), [
    syscallNumber("openat", "aarch64"),
    syscallNumber("dup3", "aarch64"),
    syscallNumber("prlimit64", "aarch64"),
  ]);
});

Deno.test("program: a fork step records where the parent continues; mayFail is kept", () => {
  using p = new Program({ arch: "x86_64" });
  const f = p.vfork();
  p.execve("/bin/true", ["true"], {}, { mayFail: true });
  p.execve("/bin/true", ["true"], {});
  p.parentContinues(f);
  p.setsid();
  const s = p.decode();
  assertEquals(s[0]!.parentContinuesAt, 3);
  assertEquals(s[1]!.mayFail, true);
  assertEquals(s[2]!.mayFail, false);
  // the end marker follows the last step
  assertEquals(p.memory.view.getBigInt64(64 + 4 * 80, true), -1n);
});

Deno.test("program: a sibling fork asks the kernel to store its pid (CLONE_PARENT_SETTID)", () => {
  using p = new Program({ arch: "x86_64" });
  const { step, pidAddress } = p.forkSibling();
  p.execve("/bin/true", ["true"], {});
  p.parentContinues(step);
  p.syscall("exit_group", [0]);
  const s = p.decode();
  assertEquals(s[0]!.syscall, "clone");
  assertEquals(s[0]!.parentContinuesAt, 2);
  // CLONE_PARENT | CLONE_PARENT_SETTID | CLONE_VM | SIGCHLD, no stack, the pid slot
  assertEquals(s[0]!.args.slice(0, 3), [0x108111n, 0n, pidAddress]);
  assertEquals(s[0]!.loads, [false, false, false, false, false, false]);
  assertEquals(p.siblingPid(pidAddress), 0);
});

Deno.test("program: bad arguments are TypeError/RangeError", () => {
  using p = new Program({ maxSteps: 2 });
  assertThrows(() => p.chdir("/a\0b"), TypeError);
  assertThrows(() => p.setrlimit("nofile", { soft: 5, hard: 1 }), RangeError);
  assertThrows(() => p.seccomp(new Uint8Array(7)), RangeError);
  assertThrows(() => p.execve("/x", ["x"], { "A=B": "1" }), TypeError);
  p.setsid();
  p.setsid();
  assertThrows(() => p.setsid(), RangeError);
  assert(p.length === 2);
});
