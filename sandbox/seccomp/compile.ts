import { ARCH, errnoNumber, SYSCALL_TABLES } from "denobox/libc";
import {
  Assembler,
  BPF_MAXINSNS,
  encodeFilter,
  type Label,
  Op,
  SeccompData,
} from "./_bpf.ts";

/** A CPU architecture the compiler has syscall tables for. */
export type SeccompArch = "x86_64" | "aarch64";

/**
 * What the kernel does with a system call:
 * - `"allow"`: run it;
 * - `{ errno }`: fail it with that errno (a number or a name such as `"EPERM"`), 0 to 4095;
 * - `"kill-process"` / `"kill-thread"`: end the process / thread with SIGSYS;
 * - `"trap"`: send SIGSYS to the thread;
 * - `"log"`: run it and log it (kernel audit log);
 * - `"user-notif"`: ask the supervisor holding the listener fd (the filter must be installed
 *   with SECCOMP_FILTER_FLAG_NEW_LISTENER; without a listener the call fails with ENOSYS);
 * - `{ trace }`: stop for a ptrace tracer with that 16-bit message (ENOSYS without a tracer).
 */
export type SeccompAction =
  | "allow"
  | "kill-process"
  | "kill-thread"
  | "trap"
  | "log"
  | "user-notif"
  | { readonly errno: number | string }
  | { readonly trace: number };

/** A comparison operator on one 64-bit syscall argument (unsigned, as the kernel sees it). */
export type ArgOperator = "eq" | "ne" | "lt" | "le" | "gt" | "ge" | "masked-eq";

/**
 * One condition on a syscall argument: `args[arg] <op> value`, or for `"masked-eq"`
 * `(args[arg] & mask) == value`. Values are unsigned 64-bit; negative numbers are taken in
 * two's complement (`-1` is `0xffffffffffffffff`). For `"masked-eq"`, bits of `value` outside
 * `mask` are ignored, as in libseccomp.
 */
export interface ArgCondition {
  /** Argument index, 0 to 5. */
  readonly arg: number;
  /** How the argument is compared with `value`. */
  readonly op: ArgOperator;
  /** The value compared with (for `"masked-eq"`, with the masked argument). */
  readonly value: number | bigint;
  /** The mask of `"masked-eq"` (required there, refused elsewhere). */
  readonly mask?: number | bigint;
}

/** One rule: the syscalls it names get `action` when all `args` conditions hold. */
export interface SeccompRule {
  /** Syscall name(s) from the architecture's table, or raw numbers. */
  readonly syscall: string | number | readonly (string | number)[];
  /** What the kernel does with a matching call. */
  readonly action: SeccompAction;
  /** Conditions that must all hold (AND); absent or empty: the rule always applies. */
  readonly args?: readonly ArgCondition[];
}

/**
 * A seccomp filter as data. For one syscall, its rules are tried in the order given and the
 * first whose conditions all hold decides; a syscall without a matching rule gets
 * `defaultAction`. (libseccomp differs in one corner: there an unconditional rule for a
 * syscall overrides its conditional rules wherever they stand; put conditional rules first.)
 */
export interface SeccompFilter {
  /** The action for calls no rule matches (an allowlist uses an errno or kill here). */
  readonly defaultAction: SeccompAction;
  /** The rules, tried in order for each syscall. */
  readonly rules: readonly SeccompRule[];
  /**
   * For calls from another ABI (32-bit x86 or x32 on x86_64, 32-bit arm on aarch64):
   * default `"kill-process"`. Compat ABIs are never allowed: their syscall numbers differ.
   */
  readonly badArchAction?: SeccompAction;
  /**
   * For syscall numbers above the highest one in the architecture's table (calls newer than
   * the table, which no rule can name): default `defaultAction`. `{ errno: "ENOSYS" }` lets
   * libc fall back to an older call, as it does on an older kernel.
   */
  readonly newerSyscallAction?: SeccompAction;
}

/** Options of `compileSeccomp`. */
export interface CompileOptions {
  /** Target architecture; default: this machine's. */
  readonly arch?: SeccompArch;
  /** Skip syscall names the architecture lacks (aarch64 has no `open`); default: RangeError. */
  readonly ignoreUnknown?: boolean;
}

/** SECCOMP_RET_* values (linux/seccomp.h). */
export const SeccompRet = {
  KILL_PROCESS: 0x80000000,
  KILL_THREAD: 0x00000000,
  TRAP: 0x00030000,
  ERRNO: 0x00050000,
  USER_NOTIF: 0x7fc00000,
  TRACE: 0x7ff00000,
  LOG: 0x7ffc0000,
  ALLOW: 0x7fff0000,
} as const;

/** AUDIT_ARCH_* values (linux/audit.h) of the supported architectures. */
export const AUDIT_ARCH: Readonly<Record<SeccompArch, number>> = {
  x86_64: 0xc000003e,
  aarch64: 0xc00000b7,
};

/** On x86_64, x32 syscalls carry this bit in their number (__X32_SYSCALL_BIT). */
const X32_SYSCALL_BIT = 0x40000000;
const MAX_ERRNO = 4095;
const U64 = (1n << 64n) - 1n;

/**
 * The 32-bit value a filter returns for `action` (SECCOMP_RET_* with its data).
 *
 * @example Errno and allow
 * ```ts
 * import { actionValue } from "denobox/sandbox";
 * console.log(actionValue({ errno: "EPERM" }).toString(16)); // 50001
 * console.log(actionValue("allow").toString(16)); // 7fff0000
 * ```
 */
export function actionValue(action: SeccompAction): number {
  if (typeof action === "string") {
    switch (action) {
      case "allow":
        return SeccompRet.ALLOW;
      case "kill-process":
        return SeccompRet.KILL_PROCESS;
      case "kill-thread":
        return SeccompRet.KILL_THREAD;
      case "trap":
        return SeccompRet.TRAP;
      case "log":
        return SeccompRet.LOG;
      case "user-notif":
        return SeccompRet.USER_NOTIF;
    }
  } else if (action && typeof action === "object") {
    if ("errno" in action) {
      const e = typeof action.errno === "string"
        ? errnoNumber(action.errno)
        : action.errno;
      if (!Number.isInteger(e) || e < 0 || e > MAX_ERRNO) {
        throw new RangeError(
          `Invalid seccomp action: errno must be 0 to 4095, got ${e}`,
        );
      }
      return (SeccompRet.ERRNO | e) >>> 0;
    }
    if ("trace" in action) {
      const d = action.trace;
      if (!Number.isInteger(d) || d < 0 || d > 0xffff) {
        throw new RangeError(
          `Invalid seccomp action: trace data must be 0 to 65535, got ${d}`,
        );
      }
      return (SeccompRet.TRACE | d) >>> 0;
    }
  }
  throw new TypeError(`Invalid seccomp action: ${JSON.stringify(action)}`);
}

interface Cond {
  arg: number;
  op: ArgOperator;
  value: bigint;
  mask: bigint;
}
interface Rule {
  action: number;
  conds: Cond[];
}
/** What one syscall number compiles to: a plain action, or rules to test on its arguments. */
type Leaf = { action: number } | {
  nr: number;
  rules: Rule[];
  fallback: number;
};

function u64(v: number | bigint, what: string): bigint {
  if (typeof v === "number") {
    if (!Number.isSafeInteger(v)) {
      throw new RangeError(
        `Invalid seccomp ${what}: ${v} is not a safe integer (use a bigint)`,
      );
    }
    v = BigInt(v);
  }
  if (typeof v !== "bigint") {
    throw new TypeError(`Invalid seccomp ${what}: ${String(v)}`);
  }
  if (v < -(1n << 63n) || v > U64) {
    throw new RangeError(
      `Invalid seccomp ${what}: ${v} does not fit in 64 bits`,
    );
  }
  return v & U64;
}

function condition(c: ArgCondition): Cond {
  if (!Number.isInteger(c.arg) || c.arg < 0 || c.arg > 5) {
    throw new RangeError(
      `Invalid seccomp condition: argument index must be 0 to 5, got ${c.arg}`,
    );
  }
  const ops: readonly ArgOperator[] = [
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "masked-eq",
  ];
  if (!ops.includes(c.op)) {
    throw new TypeError(
      `Invalid seccomp condition: unknown operator ${JSON.stringify(c.op)}`,
    );
  }
  if ((c.op === "masked-eq") !== (c.mask !== undefined)) {
    throw new TypeError(
      `Invalid seccomp condition: a mask goes with "masked-eq" and only there (op ${c.op})`,
    );
  }
  const mask = c.mask === undefined ? U64 : u64(c.mask, "argument mask");
  // As libseccomp does, value bits outside the mask are ignored (not "never equal").
  return {
    arg: c.arg,
    op: c.op,
    value: u64(c.value, "argument value") & mask,
    mask,
  };
}

/** Syscall number → its rules, in the order given, with validated conditions. */
function collect(
  filter: SeccompFilter,
  table: Readonly<Record<string, number>>,
  options: CompileOptions,
  arch: SeccompArch,
): Map<number, Rule[]> {
  const byNr = new Map<number, Rule[]>();
  for (const rule of filter.rules) {
    const action = actionValue(rule.action);
    const conds = (rule.args ?? []).map(condition);
    const names =
      typeof rule.syscall === "string" || typeof rule.syscall === "number"
        ? [rule.syscall]
        : rule.syscall;
    for (const name of names) {
      let nr: number | undefined;
      if (typeof name === "number") {
        if (!Number.isInteger(name) || name < 0 || name >= X32_SYSCALL_BIT) {
          throw new RangeError(
            `Invalid seccomp rule: syscall number ${name} is out of range`,
          );
        }
        nr = name;
      } else {
        nr = Object.hasOwn(table, name) ? table[name] : undefined;
        if (nr === undefined) {
          if (options.ignoreUnknown) continue;
          throw new RangeError(
            `Invalid seccomp rule: unknown syscall on ${arch}: ${name}`,
          );
        }
      }
      const list = byNr.get(nr) ?? [];
      list.push({ action, conds });
      byNr.set(nr, list);
    }
  }
  return byNr;
}

/** Drops what can never decide: everything after an unconditional rule. */
function leafOf(nr: number, rules: Rule[], fallback: number): Leaf {
  const live: Rule[] = [];
  for (const r of rules) {
    live.push(r);
    if (r.conds.length === 0) break;
  }
  // Trailing rules that give the fallback anyway change nothing.
  while (live.length > 0 && live[live.length - 1]!.action === fallback) {
    live.pop();
  }
  const last = live[live.length - 1];
  if (last === undefined) return { action: fallback };
  if (live.length === 1 && last.conds.length === 0) {
    return { action: last.action };
  }
  return { nr, rules: live, fallback };
}

interface Segment {
  lo: number;
  leaf: Leaf;
}

/**
 * Compiles a filter into a classic BPF program (`struct sock_filter[]`, 8 bytes per
 * instruction), ready for seccomp(SECCOMP_SET_MODE_FILTER). The program checks the
 * architecture (other ABIs, x32 included, get `badArchAction`), then finds the syscall number
 * by binary search over ranges of numbers that share one outcome, then tests arguments for the
 * few syscalls whose rules have conditions. Throws TypeError/RangeError for bad rules.
 *
 * @example Allow everything but keyctl
 * ```ts
 * import { compileSeccomp } from "denobox/sandbox";
 * const bpf = compileSeccomp({
 *   defaultAction: "allow",
 *   rules: [
 *     { syscall: ["keyctl", "add_key"], action: { errno: "EPERM" } },
 *     { syscall: "socket", action: { errno: "EAFNOSUPPORT" }, args: [{ arg: 0, op: "eq", value: 40 }] },
 *   ],
 * }, { arch: "x86_64" });
 * console.log(bpf.length / 8, "instructions");
 * ```
 */
export function compileSeccomp(
  filter: SeccompFilter,
  options: CompileOptions = {},
): Uint8Array<ArrayBuffer> {
  const arch = options.arch ?? ARCH;
  const table = SYSCALL_TABLES[arch];
  if (table === undefined) {
    throw new RangeError(
      `Invalid seccomp architecture: ${arch} (x86_64 or aarch64)`,
    );
  }
  if (!filter || !Array.isArray(filter.rules)) {
    throw new TypeError("Invalid seccomp filter: rules must be an array");
  }
  const defaultAction = actionValue(filter.defaultAction);
  const badArch = actionValue(filter.badArchAction ?? "kill-process");
  const newer = filter.newerSyscallAction === undefined
    ? defaultAction
    : actionValue(filter.newerSyscallAction);
  const byNr = collect(filter, table, options, arch);
  const maxKnown = Math.max(...Object.values(table), ...byNr.keys());

  // Partition [0, 2^32) into segments with one outcome each; neighbours with the same plain
  // action merge, which is what keeps allowlists short.
  const points = [...byNr.keys()].sort((a, b) => a - b);
  const segments: Segment[] = [];
  const push = (lo: number, leaf: Leaf) => {
    // A later segment starting at the same number replaces the (empty) earlier one.
    if (segments[segments.length - 1]?.lo === lo) segments.pop();
    const prev = segments[segments.length - 1];
    if (
      prev && "action" in prev.leaf && "action" in leaf &&
      prev.leaf.action === leaf.action
    ) {
      return;
    }
    segments.push({ lo, leaf });
  };
  push(0, { action: defaultAction });
  for (const nr of points) {
    push(nr, leafOf(nr, byNr.get(nr)!, defaultAction));
    if (nr + 1 <= maxKnown) push(nr + 1, { action: defaultAction });
  }
  push(maxKnown + 1, { action: newer });

  const asm = new Assembler();
  const returns = new Map<number, Label>();
  const ret = (value: number): Label => {
    let l = returns.get(value);
    if (l === undefined) returns.set(value, l = asm.label());
    return l;
  };

  // Architecture check, then the syscall number stays in A for the search.
  const tree = asm.label();
  asm.load(SeccompData.arch);
  const archOk = asm.label();
  asm.jump(Op.JEQ, AUDIT_ARCH[arch], archOk, ret(badArch));
  asm.place(archOk);
  if (arch === "x86_64" || segments.length > 1) asm.load(SeccompData.nr);
  if (arch === "x86_64") {
    // x32 calls are numbered from bit 30 up; -1 (a tracer skipping a call) is not one of them.
    const x32 = asm.label();
    asm.jump(Op.JGE, X32_SYSCALL_BIT, x32, tree);
    asm.place(x32);
    asm.jump(Op.JEQ, 0xffffffff, tree, ret(badArch));
  }
  asm.place(tree);
  emitSearch(asm, segments, ret);
  for (const [value, label] of returns) {
    asm.place(label);
    asm.ret(value);
  }
  const insns = asm.assemble();
  if (insns.length > BPF_MAXINSNS) {
    throw new RangeError(
      `Cannot compile seccomp filter: ${insns.length} instructions, the kernel takes at most ${BPF_MAXINSNS}`,
    );
  }
  return encodeFilter(insns);
}

/** Binary search over segments (A holds the syscall number). */
function emitSearch(
  asm: Assembler,
  segments: readonly Segment[],
  ret: (value: number) => Label,
): void {
  // Leaves with argument tests are emitted after the tree, each once.
  const pending: { label: Label; leaf: Extract<Leaf, { rules: Rule[] }> }[] =
    [];
  const target = (seg: Segment): Label => {
    if ("action" in seg.leaf) return ret(seg.leaf.action);
    const label = asm.label();
    pending.push({ label, leaf: seg.leaf });
    return label;
  };
  // Depth-first: each node's "below" half follows it directly, its "at or above" half after.
  const node = (from: number, to: number, here: Label | null): void => {
    if (here !== null) asm.place(here);
    const mid = (from + to + 1) >> 1;
    const lowOne = mid - 1 === from;
    const highOne = to === mid;
    const lowLabel = lowOne ? target(segments[from]!) : asm.label();
    const highLabel = highOne ? target(segments[mid]!) : asm.label();
    asm.jump(Op.JGE, segments[mid]!.lo, highLabel, lowLabel);
    if (!lowOne) node(from, mid - 1, lowLabel);
    if (!highOne) node(mid, to, highLabel);
  };
  const first = segments[0]!;
  if (segments.length === 1 && "action" in first.leaf) {
    asm.ret(first.leaf.action);
  } else if (segments.length === 1) {
    asm.ja(target(first));
  } else {
    node(0, segments.length - 1, null);
  }
  for (const { label, leaf } of pending) {
    asm.place(label);
    emitArgRules(asm, leaf.rules, leaf.fallback, ret);
  }
}

const lo32 = (v: bigint) => Number(v & 0xffffffffn);
const hi32 = (v: bigint) => Number(v >> 32n);
const argLo = (i: number) => SeccompData.args + i * 8; // little endian: low word first
const argHi = (i: number) => SeccompData.args + i * 8 + 4;

/** First-match over `rules`; none matching gives `fallback`. */
function emitArgRules(
  asm: Assembler,
  rules: readonly Rule[],
  fallback: number,
  ret: (value: number) => Label,
): void {
  let i = 0;
  while (i < rules.length) {
    const rule = rules[i]!;
    // Consecutive rules `arg == v` on one argument with one action become one set test.
    const set: bigint[] = [];
    for (let j = i; j < rules.length; j++) {
      const r = rules[j]!;
      const c = r.conds[0];
      if (
        r.conds.length !== 1 || c!.op !== "eq" || r.action !== rule.action ||
        c!.arg !== rule.conds[0]?.arg ||
        hi32(c!.value) !== hi32(rule.conds[0]!.value)
      ) break;
      set.push(c!.value);
    }
    const isLast = (n: number) => i + n >= rules.length;
    if (set.length > 1) {
      const next = isLast(set.length) ? ret(fallback) : asm.label();
      const arg = rule.conds[0]!.arg;
      const lowWord = asm.label();
      asm.load(argHi(arg));
      asm.jump(Op.JEQ, hi32(set[0]!), lowWord, next);
      asm.place(lowWord);
      asm.load(argLo(arg));
      set.forEach((v, n) => {
        const miss = n === set.length - 1 ? next : asm.label();
        asm.jump(Op.JEQ, lo32(v), ret(rule.action), miss);
        if (n < set.length - 1) asm.place(miss);
      });
      i += set.length;
      if (!isLast(0)) asm.place(next);
      continue;
    }
    const next = isLast(1) ? ret(fallback) : asm.label();
    if (rule.conds.length === 0) {
      asm.ja(ret(rule.action));
      return;
    }
    rule.conds.forEach((c, n) => {
      const pass = n === rule.conds.length - 1 ? ret(rule.action) : asm.label();
      emitCondition(asm, c, pass, next);
      if (n < rule.conds.length - 1) asm.place(pass);
    });
    i += 1;
    if (!isLast(0)) asm.place(next);
  }
}

/** One 64-bit comparison as two 32-bit ones: the high words decide unless they are equal. */
function emitCondition(
  asm: Assembler,
  c: Cond,
  pass: Label,
  fail: Label,
): void {
  const hi = hi32(c.value);
  const lo = lo32(c.value);
  const lowWord = asm.label();
  switch (c.op) {
    case "eq":
    case "ne": {
      const [t, f] = c.op === "eq" ? [pass, fail] : [fail, pass];
      asm.load(argHi(c.arg));
      asm.jump(Op.JEQ, hi, lowWord, f);
      asm.place(lowWord);
      asm.load(argLo(c.arg));
      asm.jump(Op.JEQ, lo, t, f);
      return;
    }
    case "masked-eq": {
      const mhi = hi32(c.mask);
      const mlo = lo32(c.mask);
      // A zero half of the mask makes that half's test always true: skip it.
      if (mhi !== 0) {
        asm.load(argHi(c.arg));
        if (mhi !== 0xffffffff) asm.and(mhi);
        asm.jump(Op.JEQ, hi, lowWord, fail);
      }
      asm.place(lowWord);
      if (mlo === 0) {
        asm.ja(pass);
        return;
      }
      asm.load(argLo(c.arg));
      if (mlo !== 0xffffffff) asm.and(mlo);
      asm.jump(Op.JEQ, lo, pass, fail);
      return;
    }
    default: {
      // gt/ge hold when the high word is above, fail when below; lt/le are their negations.
      const positive = c.op === "gt" || c.op === "ge";
      const [t, f] = positive ? [pass, fail] : [fail, pass];
      const eqHigh = asm.label();
      asm.load(argHi(c.arg));
      asm.jump(Op.JGT, hi, t, eqHigh);
      asm.place(eqHigh);
      asm.jump(Op.JEQ, hi, lowWord, f);
      asm.place(lowWord);
      asm.load(argLo(c.arg));
      asm.jump(c.op === "gt" || c.op === "le" ? Op.JGT : Op.JGE, lo, t, f);
    }
  }
}
