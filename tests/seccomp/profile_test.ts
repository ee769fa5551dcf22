/**
 * Docker-format profiles and denobox's default profile: resolution by caps/arch/kernel, the
 * size budget, decisions for every syscall of both tables against libseccomp's compilation of
 * the same resolved rules, and the committed default.json.
 */
import { SYSCALL_TABLES } from "denobox/libc";
import {
  actionValue,
  AUDIT_ARCH,
  compileProfile,
  compileSeccomp,
  DEFAULT_SECCOMP_PROFILE,
  resolveProfile,
  type SeccompArch,
  type SeccompProfile,
} from "../../sandbox/seccomp/mod.ts";
import {
  CAPABILITIES,
  DEFAULT_CAPABILITIES,
  DOCKER_DEFAULT_CAPABILITIES,
} from "../../sandbox/capabilities.ts";
import { defaultProfileJson } from "../../sandbox/seccomp/_gen_default_json.ts";
import { assert, assertEquals, assertThrows } from "../_helpers.ts";
import { actionName, decode, disassemble, validate } from "./_bpf_interp.ts";
import { decide, EDGE_VALUES, libseccompBpf } from "./_reference.ts";

const ARCHES: readonly SeccompArch[] = ["x86_64", "aarch64"];
const ALLOW = 0x7fff0000;
const EPERM = 0x50001;
const ENOSYS = 0x50026;
const KILL_PROCESS = 0x80000000;

const CAP_SETS: Record<string, readonly string[]> = {
  "no caps": [],
  "denobox default caps": DEFAULT_CAPABILITIES,
  "Docker default caps": DOCKER_DEFAULT_CAPABILITIES,
  "default + SYS_ADMIN": [...DEFAULT_CAPABILITIES, "CAP_SYS_ADMIN"],
  "all caps": Object.keys(CAPABILITIES),
};

Deno.test("seccomp profile: includes and excludes follow caps, arch and kernel", () => {
  const profile: SeccompProfile = {
    defaultAction: "SCMP_ACT_ERRNO",
    defaultErrnoRet: 13,
    syscalls: [
      {
        names: ["mount"],
        action: "SCMP_ACT_ALLOW",
        includes: { caps: ["CAP_SYS_ADMIN"] },
      },
      {
        names: ["clone3"],
        action: "SCMP_ACT_ERRNO",
        errnoRet: 38,
        excludes: { caps: ["SYS_ADMIN"] },
      },
      {
        names: ["arch_prctl"],
        action: "SCMP_ACT_ALLOW",
        includes: { arches: ["amd64", "x32"] },
      },
      {
        names: ["ptrace"],
        action: "SCMP_ACT_ALLOW",
        includes: { minKernel: "4.8" },
      },
      {
        names: ["pidfd_getfd"],
        action: "SCMP_ACT_LOG",
        excludes: { minKernel: "5.6" },
      },
      { names: ["read"], action: "SCMP_ACT_KILL" },
      { name: "write", action: "SCMP_ACT_TRACE", errnoRet: 5 },
      {
        names: ["socket"],
        action: "SCMP_ACT_ALLOW",
        args: [{ index: 0, value: 40, op: "SCMP_CMP_LT" }],
      },
      {
        names: ["clone"],
        action: "SCMP_ACT_ALLOW",
        args: [{
          index: 0,
          value: 0x7e020000,
          valueTwo: 0,
          op: "SCMP_CMP_MASKED_EQ",
        }],
      },
    ],
  };
  const names = (caps: string[], arch: SeccompArch, kernel: string) =>
    resolveProfile(profile, { caps, arch, kernel }).rules.flatMap((r) =>
      r.syscall
    );
  assertEquals(names([], "x86_64", "6.1"), [
    "clone3",
    "arch_prctl",
    "ptrace",
    "read",
    "write",
    "socket",
    "clone",
  ]);
  assertEquals(names(["CAP_SYS_ADMIN"], "aarch64", "4.4.0"), [
    "mount",
    "pidfd_getfd",
    "read",
    "write",
    "socket",
    "clone",
  ]);
  const f = resolveProfile(profile, {
    caps: [],
    arch: "x86_64",
    kernel: "6.1",
  });
  assertEquals(f.defaultAction, { errno: 13 });
  assertEquals(f.rules[0]!.action, { errno: 38 });
  assertEquals(f.rules[3]!.action, "kill-thread");
  assertEquals(f.rules[4]!.action, { trace: 5 });
  assertEquals(f.rules[6]!.args, [{
    arg: 0,
    op: "masked-eq",
    mask: 0x7e020000,
    value: 0,
  }]);
  assertThrows(
    () =>
      resolveProfile({
        ...profile,
        syscalls: [{
          names: ["x"],
          action: "SCMP_ACT_ALLOW",
          includes: { minKernel: "four" },
        }],
      }),
    RangeError,
    "Invalid kernel version",
  );
  assertThrows(
    () =>
      resolveProfile({ defaultAction: "SCMP_ACT_NOPE" as "SCMP_ACT_ALLOW" }),
    TypeError,
    "SCMP_ACT_NOPE",
  );
  // Names the architecture lacks are skipped, as Docker does.
  const bpf = compileProfile({
    defaultAction: "SCMP_ACT_ALLOW",
    syscalls: [{ names: ["open", "keyctl"], action: "SCMP_ACT_ERRNO" }],
  }, { arch: "aarch64" });
  const prog = decode(bpf);
  assertEquals(
    decide(prog, "aarch64", { nr: SYSCALL_TABLES.aarch64["keyctl"]! }),
    EPERM,
  );
});

Deno.test("seccomp profile: the default compiles to at most 300 instructions", () => {
  for (const arch of ARCHES) {
    for (const [what, caps] of Object.entries(CAP_SETS)) {
      const prog = decode(
        compileProfile(DEFAULT_SECCOMP_PROFILE, {
          arch,
          caps,
          newerSyscallAction: { errno: "ENOSYS" },
        }),
      );
      validate(prog);
      assert(
        prog.length <= 300,
        `${arch}, ${what}: ${prog.length} instructions\n${disassemble(prog)}`,
      );
    }
  }
});

Deno.test("seccomp profile: the default refuses the side channels and keeps the basics", () => {
  for (const arch of ARCHES) {
    const t = SYSCALL_TABLES[arch];
    const prog = decode(
      compileProfile(DEFAULT_SECCOMP_PROFILE, {
        arch,
        caps: DEFAULT_CAPABILITIES,
      }),
    );
    const d = (name: string, args: bigint[] = []) =>
      actionName(decide(prog, arch, { nr: t[name]!, args }));
    for (
      const name of [
        "keyctl",
        "add_key",
        "request_key",
        "io_uring_setup",
        "io_uring_enter",
        "io_uring_register",
        "userfaultfd",
        "perf_event_open",
        "bpf",
        "kexec_load",
        "kexec_file_load",
        "init_module",
        "finit_module",
        "delete_module",
        "mount",
        "umount2",
        "pivot_root",
        "setns",
        "ptrace",
        "open_by_handle_at",
        "process_vm_readv",
        "syslog",
        "sethostname",
      ]
    ) {
      assertEquals(d(name), "errno(1)", `${arch} ${name}`);
    }
    for (
      const name of [
        "read",
        "write",
        "openat",
        "execve",
        "exit_group",
        "mmap",
        "futex",
        "rt_sigreturn",
        "wait4",
        "getrandom",
        "chroot",
      ]
    ) {
      assertEquals(d(name), "allow", `${arch} ${name}`);
    }
    assertEquals(d("socket", [40n]), "errno(1)"); // AF_VSOCK
    assertEquals(d("socket", [40n | (1n << 32n)]), "errno(1)"); // the kernel would truncate to 40
    assertEquals(d("socket", [2n]), "allow");
    assertEquals(d("clone3"), "errno(38)");
    assertEquals(d("clone", [0x11n]), "allow"); // SIGCHLD | fork-like
    assertEquals(d("clone", [0x10000000n]), "errno(1)"); // CLONE_NEWUSER
    assertEquals(d("unshare", [0x200n]), "allow"); // CLONE_FS
    assertEquals(d("unshare", [0x80n]), "errno(1)"); // CLONE_NEWTIME
    assertEquals(d("personality", [0xffffffffn]), "allow");
    assertEquals(d("personality", [0x0040000n]), "errno(1)"); // ADDR_NO_RANDOMIZE
    // Another ABI is killed, whatever the number.
    assertEquals(decide(prog, arch, { nr: 0, arch: 0x40000003 }), KILL_PROCESS);
    assertEquals(decide(prog, arch, { nr: 0, arch: 0x40000028 }), KILL_PROCESS);
  }
  const x64 = decode(
    compileProfile(DEFAULT_SECCOMP_PROFILE, { arch: "x86_64", caps: [] }),
  );
  assertEquals(decide(x64, "x86_64", { nr: 0x40000000 }), KILL_PROCESS); // x32 read
  // With CAP_SYS_ADMIN, namespaces and mounts open up, as in Docker.
  const admin = decode(
    compileProfile(DEFAULT_SECCOMP_PROFILE, {
      arch: "x86_64",
      caps: ["CAP_SYS_ADMIN"],
    }),
  );
  const t = SYSCALL_TABLES.x86_64;
  assertEquals(decide(admin, "x86_64", { nr: t["mount"]! }), ALLOW);
  assertEquals(decide(admin, "x86_64", { nr: t["clone3"]! }), ALLOW);
  assertEquals(
    decide(admin, "x86_64", { nr: t["clone"]!, args: [0x10000000n] }),
    ALLOW,
  );
  assertEquals(decide(admin, "x86_64", { nr: t["keyctl"]! }), EPERM);
});

Deno.test("seccomp profile: syscalls newer than the table can get ENOSYS", () => {
  for (const arch of ARCHES) {
    const max = Math.max(...Object.values(SYSCALL_TABLES[arch]));
    const prog = decode(
      compileProfile(DEFAULT_SECCOMP_PROFILE, {
        arch,
        caps: [],
        newerSyscallAction: { errno: "ENOSYS" },
      }),
    );
    assertEquals(decide(prog, arch, { nr: max + 1 }), ENOSYS);
    assertEquals(decide(prog, arch, { nr: max + 100 }), ENOSYS);
    assertEquals(
      decide(prog, arch, { nr: SYSCALL_TABLES[arch]["keyctl"]! }),
      EPERM,
    );
  }
});

/** Argument vectors that exercise each argument rule of the default profile on both sides. */
function probes(): bigint[][] {
  const out: bigint[][] = [[]];
  for (
    const v of [
      ...EDGE_VALUES,
      8n,
      0x20000n,
      0x20008n,
      0x40000n,
      39n,
      41n,
      0x11n,
      0x10000000n,
      0x80n,
      0x200n,
      0x7e020000n,
    ]
  ) {
    out.push([v, v, v, v, v, v]);
  }
  return out;
}

Deno.test("seccomp profile: the default decides every syscall as libseccomp does", async () => {
  for (const arch of ARCHES) {
    const table = SYSCALL_TABLES[arch];
    const numbers = [
      ...Object.values(table),
      // around and past the table, and -1
      ...Array.from(
        { length: 40 },
        (_, i) => Math.max(...Object.values(table)) - 5 + i,
      ),
      0xffffffff,
    ];
    for (const [what, caps] of Object.entries(CAP_SETS)) {
      const filter = resolveProfile(DEFAULT_SECCOMP_PROFILE, { arch, caps });
      const ours = decode(
        compileSeccomp(filter, { arch, ignoreUnknown: true }),
      );
      const theirs = await libseccompBpf(filter, arch);
      validate(theirs);
      let compared = 0;
      for (const nr of numbers) {
        for (const args of probes()) {
          const a = decide(ours, arch, { nr, args });
          const b = decide(theirs, arch, { nr, args });
          if (a !== b) {
            const name = Object.entries(table).find(([, n]) => n === nr)?.[0] ??
              nr;
            throw new Error(
              `${arch}, ${what}: ${name}(${
                args.map((x) => x.toString(16))
              }): ours ${actionName(a)}, libseccomp ${actionName(b)}`,
            );
          }
          compared++;
        }
      }
      // and the foreign-ABI paths
      for (
        const foreign of [
          0x40000003,
          AUDIT_ARCH[arch === "x86_64" ? "aarch64" : "x86_64"],
        ]
      ) {
        assertEquals(
          decide(ours, arch, { nr: 1, arch: foreign }),
          decide(theirs, arch, { nr: 1, arch: foreign }),
        );
      }
      if (arch === "x86_64") {
        for (
          const nr of [
            0x40000000,
            0x40000001,
            0x40000200,
            0x7fffffff,
            0xfffffffe,
          ]
        ) {
          assertEquals(
            decide(ours, arch, { nr }),
            decide(theirs, arch, { nr }),
            `x32 nr ${nr}`,
          );
        }
      }
      assert(compared > 1000);
      assert(actionValue(filter.defaultAction) === EPERM);
    }
  }
});

Deno.test("seccomp profile: default.json is the TypeScript profile", () => {
  const committed = Deno.readTextFileSync(
    new URL("../../sandbox/seccomp/default.json", import.meta.url),
  );
  assertEquals(
    committed,
    defaultProfileJson(),
    "run: tools/deno run -A sandbox/seccomp/_gen_default_json.ts",
  );
  // and it resolves the same once parsed back
  const parsed = JSON.parse(committed) as SeccompProfile;
  assertEquals(
    compileProfile(parsed, { arch: "x86_64", caps: [] }),
    compileProfile(DEFAULT_SECCOMP_PROFILE, { arch: "x86_64", caps: [] }),
  );
});
