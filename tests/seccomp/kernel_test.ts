/**
 * Compiled filters in the real kernel: the probe (tests/security/probe.c) installs a BPF file
 * after no_new_privs and execs itself to try one syscall. Each expectation is paired with the
 * same call without the filter, so every assertion can fail.
 */
import { join } from "node:path";
import { DEFAULT_CAPABILITIES } from "../../sandbox/capabilities.ts";
import {
  compileProfile,
  compileSeccomp,
  DEFAULT_SECCOMP_PROFILE,
  type SeccompFilter,
} from "../../sandbox/seccomp/mod.ts";
import { ARCH, syscallNumber } from "denobox/libc";
import { assertEquals, IS_ROOT, NOBODY } from "../_helpers.ts";
import { ensureProbe, parseProbe } from "../security/_probe.ts";

interface Outcome {
  line: string;
  signal: Deno.Signal | null;
}

async function runProbe(
  probe: string,
  bpf: string | null,
  args: string[],
  options: { nobody?: boolean } = {},
): Promise<Outcome> {
  const argv = bpf
    ? [probe, "seccomp-exec", bpf, probe, ...args]
    : [probe, ...args];
  const cmd = options.nobody
    ? [
      "setpriv",
      `--reuid=${NOBODY.uid}`,
      `--regid=${NOBODY.gid}`,
      "--clear-groups",
      ...argv,
    ]
    : argv;
  const out = await new Deno.Command(cmd[0]!, {
    args: cmd.slice(1),
    stdout: "piped",
    stderr: "piped",
    clearEnv: true,
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim();
  if (out.signal === null && out.code !== 0) {
    throw new Error(
      `probe ${args.join(" ")} failed (${out.code}): ${
        new TextDecoder().decode(out.stderr)
      }`,
    );
  }
  return { line: text, signal: out.signal };
}

const describe = (o: Outcome) =>
  o.signal ? `killed by ${o.signal}` : o.line.replace(/ \d+$/, "");

async function withFilter<T>(
  bpf: Uint8Array,
  fn: (path: string) => Promise<T>,
): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "denobox-seccomp-" });
  try {
    await Deno.chmod(dir, 0o755);
    const path = join(dir, "filter.bpf");
    await Deno.writeFile(path, bpf, { mode: 0o644 });
    return await fn(path);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const nr = (name: string) => String(syscallNumber(name, ARCH));

/** [probe arguments, outcome with the default filter, outcome without any filter]. */
function defaultCases(rootless: boolean): [string[], string, string][] {
  const cases: [string[], string, string][] = [
    [["keyctl"], "err EPERM", "ok keyring"],
    [["perf"], "err EPERM", "ok perf event"],
    [["unshare-user"], "err EPERM", "ok new user namespace"],
    // socket(AF_VSOCK) with garbage in the high half, which the kernel would drop
    [
      ["syscall", nr("socket"), String(40n | (1n << 32n)), "1", "0"],
      "err EPERM",
      "ok syscall",
    ],
    [["syscall", nr("socket"), "1", "1", "0"], "ok syscall", "ok syscall"],
    // clone3(NULL, 0): EINVAL from the kernel, ENOSYS from the filter (so libc falls back)
    [["syscall", nr("clone3"), "0", "0"], "err ENOSYS", "err EINVAL"],
    [["syscall", nr("getpid")], "ok syscall", "ok syscall"],
  ];
  if (!rootless) cases.push([["bpf"], "err EPERM", "ok bpf map"]);
  if (ARCH === "x86_64") {
    // x32 getpid: the filter kills the process; without it the kernel answers (or refuses x32)
    cases.push([
      ["syscall", String(0x40000000 | 39)],
      "killed by SIGSYS",
      "!killed by SIGSYS",
    ]);
  }
  return cases;
}

async function checkDefault(rootless: boolean) {
  const probe = await ensureProbe();
  const bpf = compileProfile(DEFAULT_SECCOMP_PROFILE, {
    caps: DEFAULT_CAPABILITIES,
    newerSyscallAction: { errno: "ENOSYS" },
  });
  await withFilter(bpf, async (file) => {
    for (const [args, filtered, unfiltered] of defaultCases(rootless)) {
      const withIt = describe(
        await runProbe(probe, file, args, { nobody: rootless }),
      );
      assertEquals(withIt, filtered, `with the filter: ${args.join(" ")}`);
      const without = describe(
        await runProbe(probe, null, args, { nobody: rootless }),
      );
      if (unfiltered.startsWith("!")) {
        if (without === unfiltered.slice(1)) {
          throw new Error(`without the filter: ${args.join(" ")}: ${without}`);
        }
      } else {
        assertEquals(
          without,
          unfiltered,
          `without the filter: ${args.join(" ")}`,
        );
      }
    }
  });
}

Deno.test("seccomp kernel: the default profile refuses as compiled [root]", async () => {
  await checkDefault(false);
});

Deno.test("seccomp kernel: the default profile refuses as compiled, as uid 65534", async () => {
  if (!IS_ROOT) {
    throw new Error(
      "this test switches to uid 65534 with setpriv: run it as root",
    );
  }
  await checkDefault(true);
});

Deno.test("seccomp kernel: kill, trap, errno and argument rules take effect", async () => {
  const probe = await ensureProbe();
  const filter: SeccompFilter = {
    defaultAction: "allow",
    rules: [
      { syscall: "getppid", action: "kill-process" },
      { syscall: "getpgrp", action: "trap" },
      { syscall: "getuid", action: { errno: "EOPNOTSUPP" } },
      {
        syscall: "getgid",
        action: { errno: 77 },
        args: [{ arg: 0, op: "gt", value: 1n << 32n }],
      },
      {
        syscall: "getgid",
        action: "log",
        args: [{ arg: 1, op: "masked-eq", mask: 0xf0, value: 0x30 }],
      },
    ],
  };
  const bpf = compileSeccomp(filter);
  await withFilter(bpf, async (file) => {
    const d = async (args: string[], bpfFile: string | null = file) =>
      describe(await runProbe(probe, bpfFile, args));
    assertEquals(await d(["syscall", nr("getppid")]), "killed by SIGSYS");
    assertEquals(await d(["syscall", nr("getppid")], null), "ok syscall");
    assertEquals(await d(["syscall", nr("getpgrp")]), "killed by SIGSYS"); // SIGSYS unhandled
    assertEquals(await d(["syscall", nr("getuid")]), "err ENOTSUP");
    assertEquals(await d(["syscall", nr("getuid")], null), "ok syscall");
    assertEquals(
      await d(["syscall", nr("getgid"), String((1n << 32n) + 1n)]),
      "err E?",
    ); // errno 77
    assertEquals(
      (await runProbe(probe, file, [
        "syscall",
        nr("getgid"),
        String((1n << 32n) + 1n),
      ])).line,
      "err E? 77",
    );
    assertEquals(
      await d(["syscall", nr("getgid"), String(1n << 32n)]),
      "ok syscall",
    );
    assertEquals(await d(["syscall", nr("getgid"), "0", "0x3f"]), "ok syscall"); // logged, runs
  });
  // parseProbe understands both shapes
  assertEquals(parseProbe("ok x\n"), { ok: true, detail: "x" });
  assertEquals(parseProbe("err EPERM 1\n"), { ok: false, errno: "EPERM" });
});
