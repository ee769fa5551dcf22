/**
 * The default hardening bundle: seccomp filter, capability masks, masked and read-only /proc
 * and /sys paths, no_new_privs. spawn() and exec() apply it when given no option; spread
 * `defaultHardening({ capAdd, capDrop, seccomp })` into their options to adjust it.
 * @module
 */
import {
  type CapabilityName,
  DEFAULT_CAPABILITIES,
  resolveCapabilities,
} from "./capabilities.ts";
import {
  type BaseHardening,
  baseHardening,
  type BaseHardeningOptions,
} from "./base_hardening.ts";
import { compileProfile, compileSeccomp } from "./seccomp/mod.ts";
import type { SeccompArch, SeccompFilter } from "./seccomp/compile.ts";
import type { SeccompProfile } from "./seccomp/profile.ts";
import { DEFAULT_SECCOMP_PROFILE } from "./seccomp/default_profile.ts";

export * from "./base_hardening.ts";

/** Options of `defaultHardening`. */
export interface HardeningOptions extends BaseHardeningOptions {
  /**
   * `"default"` (denobox's profile, resolved against the final capabilities), `"unconfined"`
   * (no filter), a Docker-format profile, or a `SeccompFilter`.
   */
  readonly seccomp?: "default" | "unconfined" | SeccompProfile | SeccompFilter;
  /** Target architecture of the filter; default: this machine's. */
  readonly arch?: SeccompArch;
  /** Kernel release the profile's `minKernel` tests use; default: the running kernel. */
  readonly kernel?: string;
}

/** The hardening part of spawn's options. */
export interface Hardening extends BaseHardening {
  /** The compiled filter; `false` (no filter: an explicit opt-out for spawn) with `seccomp: "unconfined"`. */
  seccomp: Uint8Array<ArrayBuffer> | false;
}

const DEFAULT_FILTERS = new Map<string, Uint8Array<ArrayBuffer>>();
function isFilter(x: SeccompProfile | SeccompFilter): x is SeccompFilter {
  return Array.isArray((x as SeccompFilter).rules);
}

/**
 * denobox's default confinement as spawn options: the default seccomp profile compiled for
 * the capabilities the sandbox will hold (so `capAdd: ["SYS_ADMIN"]` also lets `mount` through
 * the filter, as in Docker), `DEFAULT_CAPABILITIES` adjusted by `capAdd`/`capDrop`, the masked
 * and read-only paths (those this kernel has), and no_new_privs. Syscalls newer than the syscall table get ENOSYS, so
 * libc falls back to older calls. Bad names are TypeErrors before anything is compiled.
 *
 * @example Spawn with the defaults plus CAP_NET_RAW
 * ```ts ignore
 * import { defaultHardening, spawn } from "denobox/sandbox";
 * await using box = await spawn({
 *   argv: ["/bin/ping", "-c1", "127.0.0.1"],
 *   rootfs: "/srv/rootfs",
 *   ...defaultHardening({ capAdd: ["NET_RAW"] }),
 * });
 * console.log(await box.status);
 * ```
 * @example Just the pieces
 * ```ts
 * import { defaultHardening } from "denobox/sandbox";
 * const h = defaultHardening();
 * console.log((h.seccomp as Uint8Array).length / 8, h.capabilities.effective.toString(16), h.maskedPaths);
 * ```
 */
export function defaultHardening(options: HardeningOptions = {}): Hardening {
  const caps: CapabilityName[] = resolveCapabilities({
    base: DEFAULT_CAPABILITIES,
    ...(options.capAdd ? { capAdd: options.capAdd } : {}),
    ...(options.capDrop ? { capDrop: options.capDrop } : {}),
  });
  const choice = options.seccomp ?? "default";
  let seccomp: Uint8Array<ArrayBuffer> | false;
  if (choice === "unconfined") {
    seccomp = false;
  } else if (
    choice === "default" || (typeof choice === "object" && !isFilter(choice))
  ) {
    const profile = choice === "default" ? DEFAULT_SECCOMP_PROFILE : choice;
    const compile = () =>
      compileProfile(profile, {
        caps,
        ...(options.arch ? { arch: options.arch } : {}),
        ...(options.kernel ? { kernel: options.kernel } : {}),
        ...(choice === "default"
          ? { newerSyscallAction: { errno: "ENOSYS" } }
          : {}),
      });
    if (choice === "default") {
      // The built-in profile is constant: compile it once per arch, kernel and capability set.
      const key = `${options.arch ?? ""}|${options.kernel ?? ""}|${
        caps.join(",")
      }`;
      let cached = DEFAULT_FILTERS.get(key);
      if (!cached) DEFAULT_FILTERS.set(key, cached = compile());
      seccomp = cached.slice();
    } else {
      seccomp = compile();
    }
  } else if (typeof choice === "object") {
    seccomp = compileSeccomp(
      choice,
      options.arch ? { arch: options.arch } : {},
    );
  } else {
    throw new TypeError(
      `Invalid seccomp option: ${
        JSON.stringify(choice)
      } (expected "default", "unconfined" or a profile)`,
    );
  }
  return { seccomp, ...baseHardening(options) };
}
