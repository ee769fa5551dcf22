/**
 * Test support: a direct (non-BPF) evaluation of a `SeccompFilter`, the semantics the compiler
 * promises, plus a libseccomp driver (tests/seccomp/_libseccomp.py through Debian's
 * python3-seccomp) and a seeded random generator.
 */
import { SYSCALL_TABLES } from "denobox/libc";
import {
  actionValue,
  type ArgCondition,
  AUDIT_ARCH,
  type SeccompArch,
  type SeccompFilter,
} from "../../sandbox/seccomp/mod.ts";
import { decode, type Insn, run } from "./_bpf_interp.ts";

const U64 = (1n << 64n) - 1n;
const big = (v: number | bigint) => BigInt.asUintN(64, BigInt(v));

function holds(c: ArgCondition, args: readonly bigint[]): boolean {
  const a = BigInt.asUintN(64, args[c.arg] ?? 0n);
  const v = big(c.value);
  switch (c.op) {
    case "eq":
      return a === v;
    case "ne":
      return a !== v;
    case "lt":
      return a < v;
    case "le":
      return a <= v;
    case "gt":
      return a > v;
    case "ge":
      return a >= v;
    case "masked-eq":
      return (a & big(c.mask ?? U64)) === (v & big(c.mask ?? U64));
  }
}

/** What the filter means for one call (first matching rule, else the default). */
export function expected(
  filter: SeccompFilter,
  arch: SeccompArch,
  call: { nr: number; arch?: number; args?: readonly bigint[] },
): number {
  const badArch = actionValue(filter.badArchAction ?? "kill-process");
  if ((call.arch ?? AUDIT_ARCH[arch]) !== AUDIT_ARCH[arch]) return badArch;
  const nr = call.nr >>> 0;
  if (arch === "x86_64" && nr >= 0x40000000 && nr !== 0xffffffff) {
    return badArch;
  }
  const table = SYSCALL_TABLES[arch];
  const numbered = filter.rules.flatMap((r) =>
    (Array.isArray(r.syscall) ? r.syscall : [r.syscall]).filter((n) =>
      typeof n === "number"
    )
  ) as number[];
  const max = Math.max(...Object.values(table), ...numbered);
  for (const rule of filter.rules) {
    const names = Array.isArray(rule.syscall) ? rule.syscall : [rule.syscall];
    const nrs = names.map((n) =>
      typeof n === "number" ? n : table[n as string]
    );
    if (!nrs.includes(nr)) continue;
    if ((rule.args ?? []).every((c) => holds(c, call.args ?? []))) {
      return actionValue(rule.action);
    }
  }
  if (nr > max && filter.newerSyscallAction !== undefined) {
    return actionValue(filter.newerSyscallAction);
  }
  return actionValue(filter.defaultAction);
}

/** Runs a compiled program on one call. */
export function decide(
  prog: readonly Insn[],
  arch: SeccompArch,
  call: { nr: number; arch?: number; args?: readonly bigint[] },
): number {
  return run(prog, {
    nr: call.nr,
    arch: call.arch ?? AUDIT_ARCH[arch],
    ...(call.args ? { args: call.args } : {}),
  });
}

/** Compiles `filter` with libseccomp; returns its BPF program. */
export async function libseccompBpf(
  filter: SeccompFilter,
  arch: SeccompArch,
): Promise<Insn[]> {
  const rules = filter.rules.flatMap((r) => {
    const names = Array.isArray(r.syscall) ? r.syscall : [r.syscall];
    return names
      .filter((n) =>
        typeof n === "number" ||
        Object.hasOwn(SYSCALL_TABLES[arch], n as string)
      )
      .map((n) => ({
        syscall: n,
        action: actionValue(r.action),
        args: (r.args ?? []).map((c) =>
          c.op === "masked-eq"
            ? {
              arg: c.arg,
              op: c.op,
              a: big(c.mask!).toString(),
              b: big(c.value).toString(),
            }
            : { arg: c.arg, op: c.op, a: big(c.value).toString() }
        ),
      }));
  });
  const spec = {
    arch,
    default: actionValue(filter.defaultAction),
    badArch: actionValue(filter.badArchAction ?? "kill-process"),
    rules,
  };
  const child = new Deno.Command("/usr/bin/python3", {
    args: [new URL("./_libseccomp.py", import.meta.url).pathname],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(JSON.stringify(spec)));
  await w.close();
  const out = await child.output();
  if (!out.success) {
    throw new Error(
      `libseccomp (python3-seccomp) failed: ${
        new TextDecoder().decode(out.stderr)
      }`,
    );
  }
  return decode(out.stdout);
}

/** A small deterministic PRNG (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** 64-bit values that sit on the edges of the two-halves comparison. */
export const EDGE_VALUES: readonly bigint[] = [
  0n,
  1n,
  40n,
  0x7fffffffn,
  0x80000000n,
  0xfffffffen,
  0xffffffffn,
  0x100000000n,
  0x100000001n,
  0x100000028n,
  0x1ffffffffn,
  0x7fffffffffffffffn,
  0x8000000000000000n,
  0xffffffff00000000n,
  0xfffffffffffffffen,
  U64,
];
