/**
 * The default hardening bundle: seccomp filter, capability masks, masked and read-only /proc
 * and /sys paths, no_new_privs. spawn() and exec() apply it when given no option; spread
 * `defaultHardening({ capAdd, capDrop, seccomp })` into their options to adjust it.
 * @module
 */
import { procEntryMissing } from "./_procfs.ts";
import {
  type CapabilityMasks,
  capabilityMasks,
  type CapabilityName,
  DEFAULT_CAPABILITIES,
  resolveCapabilities,
} from "./capabilities.ts";
import { compileProfile, compileSeccomp } from "./seccomp/mod.ts";
import type { SeccompArch, SeccompFilter } from "./seccomp/compile.ts";
import type { SeccompProfile } from "./seccomp/profile.ts";
import { DEFAULT_SECCOMP_PROFILE } from "./seccomp/default_profile.ts";

/**
 * Paths hidden inside the sandbox (spawn binds /dev/null over files and an empty read-only
 * tmpfs over directories; paths the kernel lacks are skipped). Each one either leaks the
 * host (other tenants' activity, hardware, kernel memory) or offers a kernel-wide knob:
 * - /proc/kcore: an image of kernel memory;
 * - /proc/keys, /proc/key-users: every keyring visible to the caller, with descriptions;
 * - /proc/timer_list, /proc/timer_stats, /proc/sched_debug: timers and tasks of the whole
 *   host (pids, command names, scheduling);
 * - /proc/latency_stats: kernel latency records of all tasks;
 * - /proc/interrupts: per-CPU interrupt counts, a known keystroke/network timing side channel;
 * - /proc/acpi, /proc/asound, /proc/scsi: host hardware, and /proc/scsi's writable
 *   add/remove-single-device;
 * - /sys/firmware: ACPI tables, EFI variables, DMI data of the host;
 * - /sys/devices/virtual/powercap: RAPL energy counters (the PLATYPUS power side channel).
 */
export const DEFAULT_MASKED_PATHS: readonly string[] = [
  "/proc/acpi",
  "/proc/asound",
  "/proc/interrupts",
  "/proc/kcore",
  "/proc/keys",
  "/proc/key-users",
  "/proc/latency_stats",
  "/proc/timer_list",
  "/proc/timer_stats",
  "/proc/sched_debug",
  "/proc/scsi",
  "/sys/firmware",
  "/sys/devices/virtual/powercap",
];

/**
 * Paths remounted read-only inside the sandbox: kernel-wide settings (/proc/sys), the magic
 * SysRq trigger, IRQ affinity (/proc/irq), bus and device knobs (/proc/bus) and filesystem
 * tunables (/proc/fs).
 */
export const DEFAULT_READONLY_PATHS: readonly string[] = [
  "/proc/bus",
  "/proc/fs",
  "/proc/irq",
  "/proc/sys",
  "/proc/sysrq-trigger",
];

/**
 * The device nodes a minimal /dev holds (bound from the host's, or created where mknod is
 * allowed): nothing that reaches hardware or the host's terminals. spawn adds /dev/pts,
 * /dev/ptmx, /dev/shm and the /dev/fd, stdin, stdout, stderr links.
 */
export const DEFAULT_DEVICES: readonly string[] = [
  "/dev/null",
  "/dev/zero",
  "/dev/full",
  "/dev/random",
  "/dev/urandom",
  "/dev/tty",
];

/** Options of `defaultHardening`. */
export interface HardeningOptions {
  /** Capabilities to add to `DEFAULT_CAPABILITIES` (`"ALL"` for all). */
  readonly capAdd?: readonly string[];
  /** Capabilities to drop (`"ALL"` for all). */
  readonly capDrop?: readonly string[];
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
export interface Hardening {
  /** The compiled filter; `false` (no filter: an explicit opt-out for spawn) with `seccomp: "unconfined"`. */
  seccomp: Uint8Array<ArrayBuffer> | false;
  /** The capability masks the command keeps. */
  capabilities: CapabilityMasks;
  /** Paths hidden inside the sandbox (`DEFAULT_MASKED_PATHS`). */
  maskedPaths: readonly string[];
  /** Paths remounted read-only inside, those of `DEFAULT_READONLY_PATHS` that exist here. */
  readonlyPaths: readonly string[];
  /** PR_SET_NO_NEW_PRIVS is always set: setuid binaries cannot regain what was dropped. */
  noNewPrivs: true;
}

const DEFAULT_FILTERS = new Map<string, Uint8Array<ArrayBuffer>>();
let readonlyHere: readonly string[] | null = null;

function exists(path: string): boolean {
  if (procEntryMissing(path)) return false;
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

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
  const capabilities = capabilityMasks({ base: caps });
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
  return {
    seccomp,
    capabilities,
    maskedPaths: DEFAULT_MASKED_PATHS,
    // The sandbox's /proc comes from this kernel: what is missing here is missing there too
    // (/proc/sysrq-trigger without CONFIG_MAGIC_SYSRQ), and a read-only remount needs a target.
    readonlyPaths: readonlyHere ??= DEFAULT_READONLY_PATHS.filter(exists),
    noNewPrivs: true,
  };
}
