import { ARCH, kernelRelease } from "denobox/libc";
import {
  type ArgCondition,
  type ArgOperator,
  type CompileOptions,
  compileSeccomp,
  type SeccompAction,
  type SeccompArch,
  type SeccompFilter,
  type SeccompRule,
} from "./compile.ts";

/** Actions as Docker/OCI profiles name them (`SCMP_ACT_KILL` is kill-thread, as in libseccomp). */
export type OciSeccompAction =
  | "SCMP_ACT_KILL"
  | "SCMP_ACT_KILL_PROCESS"
  | "SCMP_ACT_KILL_THREAD"
  | "SCMP_ACT_TRAP"
  | "SCMP_ACT_ERRNO"
  | "SCMP_ACT_TRACE"
  | "SCMP_ACT_ALLOW"
  | "SCMP_ACT_LOG"
  | "SCMP_ACT_NOTIFY";

/** Comparison operators as Docker/OCI profiles name them. */
export type OciSeccompOperator =
  | "SCMP_CMP_NE"
  | "SCMP_CMP_LT"
  | "SCMP_CMP_LE"
  | "SCMP_CMP_EQ"
  | "SCMP_CMP_GE"
  | "SCMP_CMP_GT"
  | "SCMP_CMP_MASKED_EQ";

/** An argument test: `args[index] <op> value`; for MASKED_EQ `(args[index] & value) == valueTwo`. */
export interface SeccompArgFilter {
  /** Argument index, 0 to 5. */
  readonly index: number;
  /** The value compared with; for MASKED_EQ, the mask. */
  readonly value: number | bigint;
  /** For MASKED_EQ, the value the masked argument must equal (default 0). */
  readonly valueTwo?: number | bigint;
  /** The comparison. */
  readonly op: OciSeccompOperator;
}

/** When a rule group applies: every listed cap present, the arch listed, the kernel new enough. */
export interface SeccompRuleFilter {
  /** Capabilities (`"CAP_SYS_ADMIN"`), compared with `ResolveOptions.caps`. */
  readonly caps?: readonly string[];
  /** Architectures as Docker names them (`"amd64"`, `"arm64"`...). */
  readonly arches?: readonly string[];
  /** `"<kernel>.<major>"`, e.g. `"4.8"`. */
  readonly minKernel?: string;
}

/** One group of Docker's `syscalls[]`. */
export interface SeccompSyscallRule {
  /** The syscalls the group covers; names the architecture lacks are skipped. */
  readonly names?: readonly string[];
  /** The older single-name form. */
  readonly name?: string;
  /** What the kernel does with a matching call. */
  readonly action: OciSeccompAction;
  /** Conditions that must all hold; absent, null or empty: the group always applies. */
  readonly args?: readonly SeccompArgFilter[] | null;
  /** The errno of `SCMP_ACT_ERRNO` (default EPERM). */
  readonly errnoRet?: number;
  /** Free text for readers of the profile; ignored. */
  readonly comment?: string;
  /** Applies only when all of this holds. */
  readonly includes?: SeccompRuleFilter;
  /** Skipped when any cap listed is present, the arch is listed, or the kernel is this new. */
  readonly excludes?: SeccompRuleFilter;
}

/** Docker's / OCI's seccomp profile (the shape of moby's `default.json`). */
export interface SeccompProfile {
  /** The action for calls no group matches. */
  readonly defaultAction: OciSeccompAction;
  /** The errno of an `SCMP_ACT_ERRNO` default action (default EPERM). */
  readonly defaultErrnoRet?: number;
  /** Architectures the profile was written for; accepted for compatibility, not used. */
  readonly architectures?: readonly string[];
  /** Docker's native architectures and their compat ones; compat ABIs always get `badArchAction`. */
  readonly archMap?: readonly {
    readonly architecture: string;
    readonly subArchitectures?: readonly string[] | null;
  }[];
  /** The rule groups, in order. */
  readonly syscalls?: readonly SeccompSyscallRule[] | null;
  /** seccomp(2) flags (`SECCOMP_FILTER_FLAG_LOG`...); accepted for compatibility, not used. */
  readonly flags?: readonly string[];
  /** OCI's user-notification agent socket; accepted for compatibility, not used. */
  readonly listenerPath?: string;
  /** Opaque data for that agent; accepted for compatibility, not used. */
  readonly listenerMetadata?: string;
}

/** What a profile is resolved against. */
export interface ResolveOptions {
  /** Target architecture; default: this machine's. */
  readonly arch?: SeccompArch;
  /** The capabilities the sandbox will have (`"CAP_SYS_ADMIN"` or `"SYS_ADMIN"`); default none. */
  readonly caps?: readonly string[];
  /** Kernel release for `minKernel` (`"6.1.0-18-amd64"`); default: the running kernel. */
  readonly kernel?: string;
}

const EPERM = 1;

const ARCH_NAMES: Readonly<Record<SeccompArch, readonly string[]>> = {
  x86_64: ["amd64", "x86_64", "scmp_arch_x86_64"],
  aarch64: ["arm64", "aarch64", "scmp_arch_aarch64"],
};

const OPERATORS: Readonly<Record<OciSeccompOperator, ArgOperator>> = {
  SCMP_CMP_NE: "ne",
  SCMP_CMP_LT: "lt",
  SCMP_CMP_LE: "le",
  SCMP_CMP_EQ: "eq",
  SCMP_CMP_GE: "ge",
  SCMP_CMP_GT: "gt",
  SCMP_CMP_MASKED_EQ: "masked-eq",
};

function capName(c: string): string {
  const up = c.trim().toUpperCase();
  return up.startsWith("CAP_") ? up : `CAP_${up}`;
}

function kernelVersion(s: string): [number, number] {
  const m = /^(\d+)\.(\d+)/.exec(s.trim());
  if (!m) {
    throw new RangeError(
      `Invalid kernel version: ${
        JSON.stringify(s)
      } (expected "<kernel>.<major>")`,
    );
  }
  return [Number(m[1]), Number(m[2])];
}

function atLeast(kernel: [number, number], min: [number, number]): boolean {
  return kernel[0] !== min[0] ? kernel[0] > min[0] : kernel[1] >= min[1];
}

function ociAction(
  action: OciSeccompAction,
  errnoRet: number | undefined,
): SeccompAction {
  switch (action) {
    case "SCMP_ACT_KILL":
    case "SCMP_ACT_KILL_THREAD":
      return "kill-thread";
    case "SCMP_ACT_KILL_PROCESS":
      return "kill-process";
    case "SCMP_ACT_TRAP":
      return "trap";
    case "SCMP_ACT_ERRNO":
      return { errno: errnoRet ?? EPERM };
    case "SCMP_ACT_TRACE":
      return { trace: errnoRet ?? EPERM };
    case "SCMP_ACT_ALLOW":
      return "allow";
    case "SCMP_ACT_LOG":
      return "log";
    case "SCMP_ACT_NOTIFY":
      return "user-notif";
  }
  throw new TypeError(
    `Invalid seccomp profile: unknown action ${JSON.stringify(action)}`,
  );
}

function ociArg(a: SeccompArgFilter): ArgCondition {
  const op = OPERATORS[a.op];
  if (op === undefined) {
    throw new TypeError(
      `Invalid seccomp profile: unknown operator ${JSON.stringify(a.op)}`,
    );
  }
  if (op === "masked-eq") {
    return { arg: a.index, op, mask: a.value, value: a.valueTwo ?? 0 };
  }
  return { arg: a.index, op, value: a.value };
}

/**
 * Resolves a Docker-format profile into a flat `SeccompFilter` for one architecture, set of
 * capabilities and kernel: rule groups whose `includes` do not hold, or whose `excludes` do,
 * are dropped, as Docker does. Pure; no syscall. Compat sub-architectures (x86, x32, arm) in
 * `archMap` are not compiled: their calls always get the filter's `badArchAction`.
 *
 * @example CAP_SYS_ADMIN decides which clone rule applies
 * ```ts
 * import { resolveProfile } from "denobox/sandbox";
 * const f = resolveProfile({
 *   defaultAction: "SCMP_ACT_ERRNO",
 *   syscalls: [
 *     { names: ["mount"], action: "SCMP_ACT_ALLOW", includes: { caps: ["CAP_SYS_ADMIN"] } },
 *     { names: ["read", "write"], action: "SCMP_ACT_ALLOW" },
 *   ],
 * }, { arch: "x86_64", caps: [] });
 * console.log(f.rules.length); // 1
 * ```
 */
export function resolveProfile(
  profile: SeccompProfile,
  options: ResolveOptions = {},
): SeccompFilter {
  if (!profile || typeof profile !== "object") {
    throw new TypeError("Invalid seccomp profile: expected an object");
  }
  const arch = options.arch ?? ARCH;
  const archNames = ARCH_NAMES[arch];
  if (archNames === undefined) {
    throw new RangeError(
      `Invalid seccomp architecture: ${arch} (x86_64 or aarch64)`,
    );
  }
  const caps = new Set((options.caps ?? []).map(capName));
  // uname(2) when /proc cannot tell (Deno.osRelease() reads /proc/sys)
  const kernel = kernelVersion(
    options.kernel ?? (Deno.osRelease() || kernelRelease()),
  );
  const archMatches = (list: readonly string[]) =>
    list.some((a) => archNames.includes(a.toLowerCase()));

  const rules: SeccompRule[] = [];
  for (const [i, group] of (profile.syscalls ?? []).entries()) {
    const names = group.names ?? (group.name === undefined ? [] : [group.name]);
    if (!Array.isArray(names) || names.some((n) => typeof n !== "string")) {
      throw new TypeError(
        `Invalid seccomp profile: syscalls[${i}].names must be strings`,
      );
    }
    const inc = group.includes ?? {};
    const exc = group.excludes ?? {};
    if (inc.arches?.length && !archMatches(inc.arches)) continue;
    if (inc.caps?.length && !inc.caps.every((c) => caps.has(capName(c)))) {
      continue;
    }
    if (inc.minKernel && !atLeast(kernel, kernelVersion(inc.minKernel))) {
      continue;
    }
    if (exc.arches?.length && archMatches(exc.arches)) continue;
    if (exc.caps?.length && exc.caps.some((c) => caps.has(capName(c)))) {
      continue;
    }
    if (exc.minKernel && atLeast(kernel, kernelVersion(exc.minKernel))) {
      continue;
    }
    if (names.length === 0) continue;
    const args = (group.args ?? []).map(ociArg);
    rules.push({
      syscall: names,
      action: ociAction(group.action, group.errnoRet),
      ...(args.length > 0 ? { args } : {}),
    });
  }
  return {
    defaultAction: ociAction(profile.defaultAction, profile.defaultErrnoRet),
    rules,
  };
}

/** Options of `compileProfile`. */
export interface CompileProfileOptions extends ResolveOptions {
  /** Overrides the filter's action for other ABIs (default kill-process). */
  readonly badArchAction?: SeccompAction;
  /** Action for syscall numbers newer than the table (default: the profile's default action). */
  readonly newerSyscallAction?: SeccompAction;
}

/**
 * Resolves a Docker-format profile (see `resolveProfile`) and compiles it to BPF. Syscall
 * names the architecture lacks are skipped, as Docker skips them.
 *
 * @example Compile a small allowlist
 * ```ts
 * import { compileProfile } from "denobox/sandbox";
 * const bpf = compileProfile({
 *   defaultAction: "SCMP_ACT_ERRNO",
 *   defaultErrnoRet: 1,
 *   syscalls: [{ names: ["read", "write", "exit_group"], action: "SCMP_ACT_ALLOW" }],
 * }, { arch: "aarch64" });
 * console.log(bpf.length / 8);
 * ```
 */
export function compileProfile(
  profile: SeccompProfile,
  options: CompileProfileOptions = {},
): Uint8Array<ArrayBuffer> {
  const filter = resolveProfile(profile, options);
  const compileOptions: CompileOptions = {
    ignoreUnknown: true,
    ...(options.arch ? { arch: options.arch } : {}),
  };
  return compileSeccomp({
    ...filter,
    ...(options.badArchAction ? { badArchAction: options.badArchAction } : {}),
    ...(options.newerSyscallAction
      ? { newerSyscallAction: options.newerSyscallAction }
      : {}),
  }, compileOptions);
}
