import { assert, assertEquals, assertThrows } from "../_helpers.ts";
import { Program, Ref } from "../../sandbox/mod.ts";
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

Deno.test("program: argument words are 64-bit two's complement, whatever their JS type", () => {
  using p = new Program();
  const big = 2 ** 40 + 5, safe = Number.MAX_SAFE_INTEGER;
  p.syscall("getpid", [
    -100,
    0xffffffff,
    big,
    safe,
    -(2 ** 40),
    2n ** 63n + 1n,
  ]);
  p.syscall("getpid", [
    -1n,
    2 ** 60,
    0x80000000,
    -0x80000000,
    -0,
    "7" as never,
  ]);
  const external = new Ref(2n ** 60n, "far");
  const r = p.syscall("getpid", []);
  p.syscall("getpid", [r, p.fds.syncRead, external]);
  const s = p.decode();
  const M = 2n ** 64n;
  assertEquals(s[0]!.args, [
    M - 100n,
    0xffffffffn,
    BigInt(big),
    BigInt(safe),
    M - 2n ** 40n,
    2n ** 63n + 1n,
  ]);
  assertEquals(s[1]!.args, [
    M - 1n,
    2n ** 60n,
    0x80000000n,
    M - 0x80000000n,
    0n,
    7n,
  ]);
  assertEquals(s[3]!.args.slice(0, 3), [
    r.address,
    p.fds.syncRead.address,
    2n ** 60n,
  ]);
  assertEquals(s[3]!.loads, [true, true, true, false, false, false]);
  assertEquals(r.name, "result of step 2");
  assertEquals(external.name, "far");
  assertThrows(() => p.syscall("getpid", [1.5]), RangeError);
  assertEquals(p.length, 4, "a refused step is not appended");
});

Deno.test("program: labels name quoted paths; strings land NUL-terminated in the heap", () => {
  using p = new Program();
  p.mkdir('/a "b"');
  p.mount(null, "/x", { flags: 1 });
  p.mount("tmpfs", "/t", { type: "tmpfs" });
  p.mount("/s", "/t");
  p.mount("/s", "/t", { label: "mine" });
  p.writeFile("/f", "hi", { create: true });
  p.open("/o", { label: undefined } as never);
  const s = p.decode();
  assertEquals(s.map((x) => x.label), [
    'mkdir("/a \\"b\\"")',
    'mount("/x")',
    'mount("tmpfs", "/t")',
    'mount("/s", "/t")',
    "mine",
    'open("/f")',
    'write("/f")',
    "close",
    "openat",
  ]);
  assertEquals(p.readString(s[0]!.args[1]!), '/a "b"');
  assertEquals(p.readString(p.string("é/ü")), "é/ü");
  const at = p.memory.offsetOf(p.string("xyz"));
  assertEquals([...p.memory.bytes.subarray(at, at + 4)], [120, 121, 122, 0]);
});
