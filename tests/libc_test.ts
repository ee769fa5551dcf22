import {
  CArena,
  cstr,
  errnoMessage,
  errnoName,
  errnoNumber,
  getrlimit,
  kernelRelease,
  mount,
  open,
  pidfdOpen,
  pidfdSendSignal,
  pipe,
  read,
  setrlimit,
  SYSCALL_TABLES,
  SyscallError,
  syscallNumber,
  umount,
  withContext,
  write,
} from "denobox/libc";
import { ERRNO_TABLE } from "../libc/_tables.ts";
import { parseTable } from "../libc/_table.ts";
import { errno, libc, symbolNames } from "../libc/_ffi.ts";
import {
  assert,
  assertEquals,
  assertThrows,
  fdTargets,
  IS_ROOT,
  REPO,
} from "./_helpers.ts";

Deno.test("kernelRelease() is uname(2)'s release, the same as Deno.osRelease() here", () => {
  assertEquals(kernelRelease(), Deno.osRelease());
});

Deno.test("cstr() rejects a NUL before any call", () => {
  assertThrows(() => cstr("/ok\0/../etc"), TypeError, "NUL");
  assertThrows(
    () => mount("none", "/tmp/\0x", { type: "tmpfs" }),
    TypeError,
    "NUL",
  );
  assertEquals([...cstr("é")], [0xc3, 0xa9, 0]);
});

Deno.test("mount() on a missing directory is ENOENT with the path [root]", {
  ignore: !IS_ROOT,
}, () => {
  const e = assertThrows(
    () => mount("none", "/nonexistent-denobox/dir", { type: "tmpfs" }),
    SyscallError,
  ) as SyscallError;
  assertEquals(e.code, "ENOENT");
  assertEquals(e.errno, 2);
  assertEquals(e.syscall, "mount");
  assertEquals(e.path, "/nonexistent-denobox/dir");
  assertEquals(
    e.message,
    'mount("/nonexistent-denobox/dir"): ENOENT (No such file or directory)',
  );
});

Deno.test("umount() of a path that is not a mount point is EINVAL [root]", {
  ignore: !IS_ROOT,
}, () => {
  const dir = Deno.makeTempDirSync();
  try {
    const e = assertThrows(() => umount(dir), SyscallError) as SyscallError;
    assertEquals(e.code, "EINVAL");
    assertEquals(e.path, dir);
  } finally {
    Deno.removeSync(dir);
  }
});

Deno.test("open() of a missing file is ENOENT; open/pipe/read/write round-trip", () => {
  const e = assertThrows(
    () => open("/nonexistent-denobox"),
    SyscallError,
  ) as SyscallError;
  assertEquals(e.code, "ENOENT");
  const ours: number[] = [];
  const targets: string[] = [];
  {
    using p = pipe();
    ours.push(p.read.fd, p.write.fd);
    assertEquals(write(p.write.fd, new Uint8Array([1, 2, 3])), 3);
    const buf = new Uint8Array(8);
    assertEquals(read(p.read.fd, buf), 3);
    assertEquals([...buf.subarray(0, 3)], [1, 2, 3]);
    using f = open("/proc/self/status");
    ours.push(f.fd);
    assert.ok(f.fd > 2);
    targets.push(...ours.map((fd) => Deno.readLinkSync(`/proc/self/fd/${fd}`)));
  }
  // Deno's own threads may open (and reuse the numbers of) fds meanwhile, so check what ours
  // pointed to (pipe:[inode], the path), not their numbers.
  const still = new Set(fdTargets().values());
  assertEquals(targets.filter((t) => still.has(t)), [], "no fd leaked");
});

Deno.test("SyscallError gains context and hints", () => {
  const e = assertThrows(
    () =>
      withContext("container demo", () =>
        withContext("rootfs", () => {
          throw new SyscallError("pivot_root", 22, { path: "/srv/r" });
        })),
    SyscallError,
  ) as SyscallError;
  assertEquals(e.context, ["container demo", "rootfs"]);
  assertEquals(
    e.message,
    'container demo: rootfs: pivot_root("/srv/r"): EINVAL (Invalid argument)',
  );
  assertEquals(
    e.withHint("try again").message.endsWith("\nHint: try again"),
    true,
  );
});

Deno.test("errno and syscall tables agree with the kernel headers (C probe)", async () => {
  const ERRNO_NUMBERS = parseTable(ERRNO_TABLE);
  const SYSCALLS_X86_64 = SYSCALL_TABLES.x86_64;
  const SYSCALLS_AARCH64 = SYSCALL_TABLES.aarch64;
  const dir = await Deno.makeTempDir();
  try {
    const errnoNames = Object.keys(ERRNO_NUMBERS);
    const x64 = Object.keys(SYSCALLS_X86_64);
    const src = [
      "#include <stdio.h>",
      "#include <errno.h>",
      "#include <sys/syscall.h>",
      "int main(void){",
      ...errnoNames.map((n) => `printf("e ${n} %d\\n", ${n});`),
      ...x64.map((n) => `printf("s ${n} %d\\n", __NR_${n});`),
      "return 0;}",
    ].join("\n");
    await Deno.writeTextFile(`${dir}/p.c`, src);
    const cc = await new Deno.Command("cc", {
      args: ["-o", `${dir}/p`, `${dir}/p.c`],
    }).output();
    assert.ok(cc.success, new TextDecoder().decode(cc.stderr));
    const out = new TextDecoder().decode(
      (await new Deno.Command(`${dir}/p`).output()).stdout,
    );
    for (const line of out.trim().split("\n")) {
      const [kind, name, value] = line.split(" ");
      const table = kind === "e" ? ERRNO_NUMBERS : SYSCALLS_X86_64;
      assertEquals(table[name!], Number(value), `${name}`);
    }
    assert.ok(errnoNames.length >= 130, "every errno is named");
    // aarch64: a handful of well-known numbers from the arm64 ABI
    assertEquals(SYSCALLS_AARCH64.pivot_root, 41);
    assertEquals(SYSCALLS_AARCH64.openat, 56);
    assertEquals(SYSCALLS_AARCH64.execve, 221);
    assertEquals(SYSCALLS_AARCH64.clone3, 435);
    assertEquals(SYSCALLS_AARCH64.open, undefined);
    assertEquals(syscallNumber("pidfd_open", "x86_64"), 434);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("every libc symbol binds on first access, once; errno reads this thread's", () => {
  const table = libc as unknown as Record<string, unknown>;
  const names = symbolNames();
  assert.ok(names.length > 80);
  for (const name of names) {
    assertEquals(typeof table[name], "function", name);
    assert.ok(
      Object.hasOwn(table, name),
      `${name} is an own property once bound`,
    );
    assertEquals(table[name], table[name], name);
  }
  assertEquals(table["nope"], undefined);
  assertEquals(
    table["toString"],
    undefined,
    "the table holds libc symbols only",
  );
  assertEquals(libc.close(-1), -1);
  assertEquals(errno(), errnoNumber("EBADF"));
});

Deno.test("errno and syscall lookups: names, numbers, messages, unknowns", () => {
  assertEquals(errnoName(1), "EPERM");
  assertEquals(errnoName(133), "EHWPOISON");
  assertEquals(errnoName(9999), "E9999");
  assertEquals(errnoName(-1), "E-1");
  assertEquals(errnoNumber("ENOENT"), 2);
  assertEquals(errnoMessage(2), "No such file or directory");
  assertEquals(errnoMessage(133), "EHWPOISON");
  for (const bad of ["toString", "EPERM 1", 'EPERM": 1,\n"ENOENT', ""]) {
    assertThrows(() => errnoNumber(bad), RangeError);
    assertThrows(() => syscallNumber(bad, "aarch64"), RangeError);
  }
  assertEquals(syscallNumber("read", "aarch64"), 63);
  assertEquals(syscallNumber("set_mempolicy_home_node", "x86_64"), 450);
  assertEquals(Object.keys(SYSCALL_TABLES.x86_64)[0], "read");
  assertThrows(() => syscallNumber("constructor", "x86_64"), RangeError);
  assertThrows(
    () => syscallNumber("read", "riscv64" as "x86_64"),
    RangeError,
    "Unknown architecture",
  );
});

Deno.test("the committed tables are what tools/gen_tables.sh generates", async () => {
  const out = await new Deno.Command("bash", {
    args: [`${REPO}/tools/gen_tables.sh`],
  }).output();
  assert.ok(out.success);
  const committed = await Deno.readTextFile(`${REPO}/libc/_tables.ts`);
  assertEquals(new TextDecoder().decode(out.stdout), committed);
});

Deno.test("struct offsets match the C headers (C probe)", async () => {
  const S = await import("denobox/libc");
  const probes: [string, string, number][] = [
    ["siginfo_t", "sizeof(siginfo_t)", S.SIGINFO.size],
    ["si_pid", "offsetof(siginfo_t, si_pid)", S.SIGINFO.si_pid],
    ["si_status", "offsetof(siginfo_t, si_status)", S.SIGINFO.si_status],
    ["si_code", "offsetof(siginfo_t, si_code)", S.SIGINFO.si_code],
    ["rlimit", "sizeof(struct rlimit)", S.RLIMIT.size],
    ["sockaddr_nl", "sizeof(struct sockaddr_nl)", S.SOCKADDR_NL.size],
    ["nl_pid", "offsetof(struct sockaddr_nl, nl_pid)", S.SOCKADDR_NL.nl_pid],
    ["epoll_event", "sizeof(struct epoll_event)", S.EPOLL_EVENT.size],
    ["epoll data", "offsetof(struct epoll_event, data)", S.EPOLL_EVENT.data],
    ["winsize", "sizeof(struct winsize)", S.WINSIZE.size],
    ["termios", "sizeof(struct termios)", S.TERMIOS.size],
    ["c_lflag", "offsetof(struct termios, c_lflag)", S.TERMIOS.c_lflag],
    ["clone_args", "sizeof(struct clone_args)", S.CLONE_ARGS.size],
    [
      "clone cgroup",
      "offsetof(struct clone_args, cgroup)",
      S.CLONE_ARGS.cgroup,
    ],
    ["rusage", "sizeof(struct rusage)", S.RUSAGE.size],
    ["ru_maxrss", "offsetof(struct rusage, ru_maxrss)", S.RUSAGE.ru_maxrss],
    ["ru_nvcsw", "offsetof(struct rusage, ru_nvcsw)", S.RUSAGE.ru_nvcsw],
    ["ru_nivcsw", "offsetof(struct rusage, ru_nivcsw)", S.RUSAGE.ru_nivcsw],
  ];
  const dir = await Deno.makeTempDir();
  try {
    const src = [
      "#include <stdio.h>",
      "#include <stddef.h>",
      "#include <signal.h>",
      "#include <termios.h>",
      "#include <sys/ioctl.h>",
      "#include <sys/epoll.h>",
      "#include <sys/resource.h>",
      "#include <linux/netlink.h>",
      "#include <linux/sched.h>",
      "int main(void){",
      ...probes.map(([, expr]) => `printf("%zu\\n", (size_t)(${expr}));`),
      "return 0;}",
    ].join("\n");
    await Deno.writeTextFile(`${dir}/p.c`, src);
    const cc = await new Deno.Command("cc", {
      args: ["-o", `${dir}/p`, `${dir}/p.c`],
    }).output();
    assert.ok(cc.success, new TextDecoder().decode(cc.stderr));
    const out = new TextDecoder().decode(
      (await new Deno.Command(`${dir}/p`).output()).stdout,
    )
      .trim().split("\n").map(Number);
    probes.forEach(([name], i) => assertEquals(probes[i]![2], out[i], name));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("CArena lives outside the V8 heap and rejects overflow", () => {
  using a = new CArena(100);
  assertEquals(a.size, 4096);
  const s = a.cstring("hi");
  assertEquals(a.bytes[a.offsetOf(s)], "h".charCodeAt(0));
  const arr = a.pointerArray([s, s]);
  assertEquals(a.view.getBigUint64(a.offsetOf(arr) + 16, true), 0n);
  assertThrows(() => a.reserve(10000), RangeError, "Arena full");
  assertThrows(() => a.cstring("a\0b"), TypeError, "NUL");
});

Deno.test("getrlimit/setrlimit round-trip; bad values are RangeError before the call", () => {
  const cur = getrlimit("nofile");
  assert.ok(cur.soft <= cur.hard);
  setrlimit("nofile", cur);
  assertThrows(
    () => setrlimit("nofile", { soft: 10, hard: 5 }),
    RangeError,
    "above hard",
  );
  assertThrows(() => setrlimit("nofile", { soft: -1, hard: 5 }), RangeError);
  if (cur.hard !== Infinity) {
    // raising the hard limit needs CAP_SYS_RESOURCE, which this machine lacks even as root
    const e = assertThrows(
      () => setrlimit("nofile", { soft: cur.soft, hard: cur.hard + 1 }),
      SyscallError,
    ) as SyscallError;
    assertEquals(e.code, "EPERM");
  }
});

Deno.test("pidfdOpen/pidfdSendSignal signal a child by pidfd", async () => {
  const child = new Deno.Command("sleep", { args: ["30"] }).spawn();
  {
    using fd = pidfdOpen(child.pid);
    pidfdSendSignal(fd.fd, "SIGKILL");
  }
  const st = await child.status;
  assertEquals(st.signal, "SIGKILL");
  assertThrows(() => pidfdOpen(0), RangeError);
});
