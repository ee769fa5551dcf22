/**
 * The seccomp compiler, checked as data: every program is validated like the kernel does and
 * run by the test BPF interpreter; decisions are compared with the filter's meaning (a direct
 * evaluation) and with libseccomp's own program for the same rules.
 */
import { SYSCALL_TABLES } from "denobox/libc";
import {
  actionValue,
  type ArgCondition,
  type ArgOperator,
  AUDIT_ARCH,
  compileSeccomp,
  type SeccompAction,
  type SeccompArch,
  type SeccompFilter,
  type SeccompRule,
} from "../../sandbox/seccomp/mod.ts";
import { assert, assertEquals, assertThrows } from "../_helpers.ts";
import { actionName, decode, disassemble, validate } from "./_bpf_interp.ts";
import {
  decide,
  EDGE_VALUES,
  expected,
  libseccompBpf,
  rng,
} from "./_reference.ts";

const ARCHES: readonly SeccompArch[] = ["x86_64", "aarch64"];

function compile(filter: SeccompFilter, arch: SeccompArch) {
  const prog = decode(compileSeccomp(filter, { arch }));
  validate(prog);
  return prog;
}

function check(
  filter: SeccompFilter,
  arch: SeccompArch,
  calls: { nr: number; arch?: number; args?: readonly bigint[] }[],
) {
  const prog = compile(filter, arch);
  for (const call of calls) {
    const want = expected(filter, arch, call);
    const got = decide(prog, arch, call);
    if (want !== got) {
      throw new Error(
        `${arch} nr ${call.nr} args ${
          call.args?.map((a) => a.toString(16))
        }: compiled ${actionName(got)}, expected ${actionName(want)}\n${
          disassemble(prog)
        }`,
      );
    }
  }
  return prog;
}

Deno.test("seccomp: actions encode to SECCOMP_RET values", () => {
  assertEquals(actionValue("allow"), 0x7fff0000);
  assertEquals(actionValue("kill-process"), 0x80000000);
  assertEquals(actionValue("kill-thread"), 0);
  assertEquals(actionValue("trap"), 0x30000);
  assertEquals(actionValue("log"), 0x7ffc0000);
  assertEquals(actionValue("user-notif"), 0x7fc00000);
  assertEquals(actionValue({ errno: "ENOSYS" }), 0x50026);
  assertEquals(actionValue({ errno: 4095 }), 0x50fff);
  assertEquals(actionValue({ trace: 0xffff }), 0x7ff0ffff);
  assertThrows(
    () => actionValue({ errno: 4096 }),
    RangeError,
    "errno must be 0 to 4095",
  );
  assertThrows(() => actionValue({ errno: "ENOPE" }), RangeError, "ENOPE");
  assertThrows(() => actionValue({ trace: -1 }), RangeError);
  assertThrows(
    () => actionValue("permit" as SeccompAction),
    TypeError,
    "permit",
  );
});

Deno.test("seccomp: bad rules are refused before anything is built", () => {
  const f = (rules: SeccompRule[]): SeccompFilter => ({
    defaultAction: "allow",
    rules,
  });
  assertThrows(
    () =>
      compileSeccomp(f([{ syscall: "nosuchcall", action: "trap" }]), {
        arch: "x86_64",
      }),
    RangeError,
    "unknown syscall on x86_64: nosuchcall",
  );
  assertThrows(
    () =>
      compileSeccomp(f([{ syscall: "open", action: "trap" }]), {
        arch: "aarch64",
      }),
    RangeError,
    "open",
  );
  // ...unless asked to skip names the architecture lacks.
  compileSeccomp(f([{ syscall: "open", action: "trap" }]), {
    arch: "aarch64",
    ignoreUnknown: true,
  });
  const bad: [ArgCondition, ErrorConstructor, string][] = [
    [{ arg: 6, op: "eq", value: 0 }, RangeError, "0 to 5"],
    [{ arg: 0, op: "eq", value: 0, mask: 1 }, TypeError, "mask"],
    [{ arg: 0, op: "masked-eq", value: 0 }, TypeError, "mask"],
    [{ arg: 0, op: "like" as ArgOperator, value: 0 }, TypeError, "like"],
    [{ arg: 0, op: "eq", value: 2 ** 60 }, RangeError, "bigint"],
    [{ arg: 0, op: "eq", value: 1n << 64n }, RangeError, "64 bits"],
  ];
  for (const [cond, cls, text] of bad) {
    assertThrows(
      () =>
        compileSeccomp(f([{ syscall: "read", action: "trap", args: [cond] }])),
      cls,
      text,
    );
  }
  assertThrows(
    () => compileSeccomp(f([{ syscall: 0x40000000, action: "trap" }])),
    RangeError,
    "out of range",
  );
});

Deno.test("seccomp: architecture check, x32 and syscall -1", () => {
  const filter: SeccompFilter = {
    defaultAction: "allow",
    badArchAction: { errno: "ENOEXEC" },
    rules: [{ syscall: "getpid", action: "kill-process" }],
  };
  for (const arch of ARCHES) {
    const prog = compile(filter, arch);
    const other = arch === "x86_64" ? AUDIT_ARCH.aarch64 : AUDIT_ARCH.x86_64;
    assertEquals(decide(prog, arch, { nr: 0, arch: other }), 0x50008);
    assertEquals(
      decide(prog, arch, { nr: 0, arch: 0x40000003 /* i386 */ }),
      0x50008,
    );
    const getpid = SYSCALL_TABLES[arch]["getpid"]!;
    assertEquals(decide(prog, arch, { nr: getpid }), 0x80000000);
    assertEquals(decide(prog, arch, { nr: getpid + 1 }), 0x7fff0000);
    assertEquals(decide(prog, arch, { nr: 0xffffffff }), 0x7fff0000);
  }
  const x64 = compile(filter, "x86_64");
  // x32's getpid is 39 | 0x40000000: refused as another ABI, not treated as 39.
  assertEquals(decide(x64, "x86_64", { nr: 0x40000000 | 39 }), 0x50008);
  assertEquals(decide(x64, "x86_64", { nr: 0x40000000 | 1 }), 0x50008);
});

Deno.test("seccomp: every operator on 64-bit values matches its meaning", () => {
  const ops: ArgOperator[] = ["eq", "ne", "lt", "le", "gt", "ge", "masked-eq"];
  for (const arch of ARCHES) {
    for (const op of ops) {
      for (const value of EDGE_VALUES) {
        const args: ArgCondition[] = op === "masked-eq"
          ? [{
            arg: 2,
            op,
            mask: 0xffffffff0000ffffn,
            value: value & 0xffffffff0000ffffn,
          }]
          : [{ arg: 2, op, value }];
        const filter: SeccompFilter = {
          defaultAction: { errno: 1 },
          rules: [{ syscall: "read", action: "allow", args }],
        };
        check(
          filter,
          arch,
          EDGE_VALUES.map((a) => ({
            nr: SYSCALL_TABLES[arch]["read"]!,
            args: [0n, 0n, a],
          })),
        );
      }
    }
  }
});

/**
 * `oneRulePerCall`: libseccomp 2.5.4 (Debian 12) miscompiles several conditional rules on
 * different arguments of one syscall: a shared tail assumes the accumulator still holds an
 * argument that another path has overwritten (found by this test; see the report). The
 * libseccomp cross-check therefore gives each syscall at most one rule.
 */
function randomFilter(
  next: () => number,
  arch: SeccompArch,
  size: number,
  oneRulePerCall = false,
): SeccompFilter {
  const names = Object.keys(SYSCALL_TABLES[arch]);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)]!;
  const actions: SeccompAction[] = [
    "allow",
    "kill-process",
    "kill-thread",
    "trap",
    "log",
    { errno: 1 },
    { errno: 38 },
    { trace: 7 },
  ];
  const ops: ArgOperator[] = ["eq", "ne", "lt", "le", "gt", "ge", "masked-eq"];
  const defaultAction = pick(actions);
  const rules: SeccompRule[] = [];
  const used = new Set<string>();
  for (let i = 0; i < size; i++) {
    const name = pick(names);
    if (used.has(name)) continue;
    used.add(name);
    let action = pick(actions);
    while (actionValue(action) === actionValue(defaultAction)) {
      action = pick(actions);
    }
    const conditional = next() < 0.4;
    const count = conditional && !oneRulePerCall
      ? 1 + Math.floor(next() * 3)
      : 1;
    // One action per syscall, so first-match and libseccomp's precedence agree.
    for (let r = 0; r < count; r++) {
      const args: ArgCondition[] = [];
      if (conditional) {
        const argIdx = [0, 1, 2, 3, 4, 5].sort(() => next() - 0.5).slice(
          0,
          1 + Math.floor(next() * 2),
        );
        for (const arg of argIdx) {
          const op = pick(ops);
          const value = pick(EDGE_VALUES);
          args.push(
            op === "masked-eq"
              ? {
                arg,
                op,
                mask: pick(EDGE_VALUES),
                value: value & pick(EDGE_VALUES),
              }
              : { arg, op, value },
          );
        }
      }
      rules.push({ syscall: name, action, ...(args.length ? { args } : {}) });
    }
  }
  return { defaultAction, rules };
}

function randomCalls(
  next: () => number,
  arch: SeccompArch,
  filter: SeccompFilter,
  n: number,
) {
  const table = SYSCALL_TABLES[arch];
  const named = filter.rules.map((r) => table[r.syscall as string]!);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)]!;
  const calls: { nr: number; args: bigint[] }[] = [];
  for (let i = 0; i < n; i++) {
    const nr = next() < 0.7 ? pick(named) : Math.floor(next() * 520);
    const args = Array.from(
      { length: 6 },
      () =>
        next() < 0.8
          ? pick(EDGE_VALUES)
          : BigInt(Math.floor(next() * 2 ** 32)) << 16n,
    );
    calls.push({ nr, args });
  }
  return calls;
}

Deno.test("seccomp: random filters decide as their rules say", () => {
  const next = rng(0x5ecc);
  for (let round = 0; round < 60; round++) {
    const arch = ARCHES[round % 2]!;
    const filter = randomFilter(next, arch, 5 + Math.floor(next() * 80));
    check(filter, arch, randomCalls(next, arch, filter, 300));
  }
});

Deno.test("seccomp: far jumps go through trampolines", () => {
  // 300 conditional syscalls make the search tree's jumps far longer than 255.
  const arch = "x86_64";
  const names = Object.keys(SYSCALL_TABLES[arch]).slice(0, 300);
  const filter: SeccompFilter = {
    defaultAction: "kill-process",
    rules: names.map((name, i) => ({
      syscall: name,
      action: i % 2 ? "allow" : { errno: 1 + (i % 30) },
      args: [{ arg: i % 6, op: i % 3 ? "le" : "ne", value: BigInt(i) << 31n }],
    })),
  };
  const prog = check(filter, arch, randomCalls(rng(7), arch, filter, 3000));
  assert(prog.length > 2000, `expected a long program, got ${prog.length}`);
  assert(
    prog.some((ins) => ins.code === 0x05 && ins.k > 255),
    "no long ja was needed",
  );
});

Deno.test("seccomp: same-action neighbours merge into ranges", () => {
  const arch = "x86_64";
  const table = SYSCALL_TABLES[arch];
  // Allowing every syscall but one needs: header + 2 comparisons + returns.
  const all = Object.keys(table).filter((n) => n !== "keyctl");
  const prog = compile(
    { defaultAction: { errno: 1 }, rules: [{ syscall: all, action: "allow" }] },
    arch,
  );
  assert(
    prog.length <= 14,
    `expected a handful of instructions:\n${disassemble(prog)}`,
  );
  assertEquals(decide(prog, arch, { nr: table["keyctl"]! }), 0x50001);
  assertEquals(decide(prog, arch, { nr: table["read"]! }), 0x7fff0000);
});

Deno.test("seccomp: over 4096 instructions is refused", () => {
  const names = Object.keys(SYSCALL_TABLES.x86_64);
  const args: ArgCondition[] = [0, 1, 2, 3, 4, 5].map((arg) => ({
    arg,
    op: "gt",
    value: 5n,
  }));
  assertThrows(
    () =>
      compileSeccomp({
        defaultAction: "allow",
        rules: names.map((syscall) => ({ syscall, action: "trap", args })),
      }, { arch: "x86_64" }),
    RangeError,
    "at most 4096",
  );
});

Deno.test("seccomp: random filters decide as libseccomp's program does", async () => {
  const next = rng(2024);
  for (let round = 0; round < 16; round++) {
    const arch = ARCHES[round % 2]!;
    const filter = randomFilter(next, arch, 10 + Math.floor(next() * 60), true);
    const ours = compile(filter, arch);
    const theirs = await libseccompBpf(filter, arch);
    validate(theirs);
    for (const call of randomCalls(next, arch, filter, 400)) {
      const a = decide(ours, arch, call);
      const b = decide(theirs, arch, call);
      if (a !== b) {
        throw new Error(
          `${arch} nr ${call.nr} args ${
            call.args.map((x) => x.toString(16))
          }: ours ${actionName(a)}, libseccomp ${actionName(b)}; rules: ${
            JSON.stringify(
              filter.rules.filter((r) =>
                SYSCALL_TABLES[arch][r.syscall as string] === call.nr
              ),
              (_k, v) => typeof v === "bigint" ? `0x${v.toString(16)}` : v,
            )
          }`,
        );
      }
    }
  }
});
