/**
 * The seccomp-free part of the default hardening: capability masks, masked and read-only
 * paths, the minimal device list. Nothing here loads the seccomp compiler or Docker's default
 * profile, so a caller that already holds a compiled filter (a cache) starts without them.
 * @module
 */
import { procEntryMissing } from "./_procfs.ts";
import {
  type CapabilityMasks,
  capabilityMasks,
  DEFAULT_CAPABILITIES,
  resolveCapabilities,
} from "./capabilities.ts";

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

/** Options of `baseHardening` (and of `defaultHardening`, which adds the seccomp ones). */
export interface BaseHardeningOptions {
  /** Capabilities to add to `DEFAULT_CAPABILITIES` (`"ALL"` for all). */
  readonly capAdd?: readonly string[];
  /** Capabilities to drop (`"ALL"` for all). */
  readonly capDrop?: readonly string[];
}

/** `defaultHardening()` without its seccomp filter. */
export interface BaseHardening {
  /** The capability masks the command keeps. */
  capabilities: CapabilityMasks;
  /** Paths hidden inside the sandbox (`DEFAULT_MASKED_PATHS`). */
  maskedPaths: readonly string[];
  /** Paths remounted read-only inside, those of `DEFAULT_READONLY_PATHS` that exist here. */
  readonlyPaths: readonly string[];
  /** PR_SET_NO_NEW_PRIVS is always set: setuid binaries cannot regain what was dropped. */
  noNewPrivs: true;
}

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

/**
 * Everything `defaultHardening()` returns except the seccomp filter: `DEFAULT_CAPABILITIES`
 * adjusted by `capAdd`/`capDrop`, the masked and read-only paths (those this kernel has) and
 * no_new_privs. For callers that bring their own compiled filter (for example one cached on
 * disk): it never loads the seccomp compiler. Bad capability names are TypeErrors.
 *
 * @example Capabilities and paths, with a filter compiled elsewhere
 * ```ts
 * import { baseHardening } from "denobox/sandbox";
 * const h = baseHardening({ capDrop: ["NET_RAW"] });
 * console.log(h.capabilities.bounding.toString(16), h.maskedPaths.length, h.readonlyPaths);
 * ```
 */
export function baseHardening(
  options: BaseHardeningOptions = {},
): BaseHardening {
  const caps = resolveCapabilities({
    base: DEFAULT_CAPABILITIES,
    ...(options.capAdd ? { capAdd: options.capAdd } : {}),
    ...(options.capDrop ? { capDrop: options.capDrop } : {}),
  });
  return {
    capabilities: capabilityMasks({ base: caps }),
    maskedPaths: DEFAULT_MASKED_PATHS,
    // The sandbox's /proc comes from this kernel: what is missing here is missing there too
    // (/proc/sysrq-trigger without CONFIG_MAGIC_SYSRQ), and a read-only remount needs a target.
    readonlyPaths: readonlyHere ??= DEFAULT_READONLY_PATHS.filter(exists),
    noNewPrivs: true,
  };
}
