/**
 * Linux capabilities by name: numbers, Docker's default set, `capAdd`/`capDrop` (with "ALL"),
 * and the bit masks spawn applies as the child's last steps (bounding set drop, capset,
 * ambient cleared).
 * @module
 */

/** Capability numbers (linux/capability.h), 0 to CAP_CHECKPOINT_RESTORE = 40. */
export const CAPABILITIES = {
  CAP_CHOWN: 0,
  CAP_DAC_OVERRIDE: 1,
  CAP_DAC_READ_SEARCH: 2,
  CAP_FOWNER: 3,
  CAP_FSETID: 4,
  CAP_KILL: 5,
  CAP_SETGID: 6,
  CAP_SETUID: 7,
  CAP_SETPCAP: 8,
  CAP_LINUX_IMMUTABLE: 9,
  CAP_NET_BIND_SERVICE: 10,
  CAP_NET_BROADCAST: 11,
  CAP_NET_ADMIN: 12,
  CAP_NET_RAW: 13,
  CAP_IPC_LOCK: 14,
  CAP_IPC_OWNER: 15,
  CAP_SYS_MODULE: 16,
  CAP_SYS_RAWIO: 17,
  CAP_SYS_CHROOT: 18,
  CAP_SYS_PTRACE: 19,
  CAP_SYS_PACCT: 20,
  CAP_SYS_ADMIN: 21,
  CAP_SYS_BOOT: 22,
  CAP_SYS_NICE: 23,
  CAP_SYS_RESOURCE: 24,
  CAP_SYS_TIME: 25,
  CAP_SYS_TTY_CONFIG: 26,
  CAP_MKNOD: 27,
  CAP_LEASE: 28,
  CAP_AUDIT_WRITE: 29,
  CAP_AUDIT_CONTROL: 30,
  CAP_SETFCAP: 31,
  CAP_MAC_OVERRIDE: 32,
  CAP_MAC_ADMIN: 33,
  CAP_SYSLOG: 34,
  CAP_WAKE_ALARM: 35,
  CAP_BLOCK_SUSPEND: 36,
  CAP_AUDIT_READ: 37,
  CAP_PERFMON: 38,
  CAP_BPF: 39,
  CAP_CHECKPOINT_RESTORE: 40,
} as const;

/** A capability's kernel name. */
export type CapabilityName = keyof typeof CAPABILITIES;

/** The capability masks spawn takes: bit N set = capability N kept. */
export interface CapabilityMasks {
  /** The bounding set: the most the command (and anything it execs) can ever gain. */
  bounding: bigint;
  /** The capabilities the kernel checks for the command's calls. */
  effective: bigint;
  /** The capabilities the command may make effective. */
  permitted: bigint;
  /** The capabilities that may be kept across execve. */
  inheritable: bigint;
}

/**
 * Docker's default capability set (moby's oci/caps defaults): what a container gets
 * without `--cap-add`/`--cap-drop`.
 */
export const DOCKER_DEFAULT_CAPABILITIES: readonly CapabilityName[] = [
  "CAP_CHOWN",
  "CAP_DAC_OVERRIDE",
  "CAP_FSETID",
  "CAP_FOWNER",
  "CAP_MKNOD",
  "CAP_NET_RAW",
  "CAP_SETGID",
  "CAP_SETUID",
  "CAP_SETFCAP",
  "CAP_SETPCAP",
  "CAP_NET_BIND_SERVICE",
  "CAP_SYS_CHROOT",
  "CAP_KILL",
  "CAP_AUDIT_WRITE",
];

/**
 * denobox's default: Docker's set without CAP_NET_RAW and CAP_MKNOD (as Podman does).
 * NET_RAW gives raw and packet sockets (spoofing on a shared bridge, AF_PACKET kernel bugs;
 * ping works without it through ICMP datagram sockets); MKNOD gives device nodes, which
 * Docker fences with a devices cgroup that denobox does not assume. Add them back with
 * `capAdd`, or start from `DOCKER_DEFAULT_CAPABILITIES`.
 */
export const DEFAULT_CAPABILITIES: readonly CapabilityName[] =
  DOCKER_DEFAULT_CAPABILITIES
    .filter((c) => c !== "CAP_NET_RAW" && c !== "CAP_MKNOD");

const BY_NUMBER: readonly CapabilityName[] = Object.entries(CAPABILITIES)
  .sort((a, b) => a[1] - b[1]).map(([name]) => name as CapabilityName);

/**
 * The kernel name of a capability given as `"CAP_SYS_ADMIN"`, `"SYS_ADMIN"` or
 * `"sys_admin"` (Docker accepts all three); TypeError when there is no such capability.
 *
 * @example Normalise a name
 * ```ts
 * import { capabilityName } from "denobox/sandbox";
 * console.log(capabilityName("net_admin")); // CAP_NET_ADMIN
 * ```
 */
export function capabilityName(name: string | number): CapabilityName {
  if (typeof name === "number") {
    const n = BY_NUMBER[name];
    if (n === undefined) {
      throw new RangeError(`Unknown capability number: ${name}`);
    }
    return n;
  }
  const up = String(name).trim().toUpperCase();
  const full = up.startsWith("CAP_") ? up : `CAP_${up}`;
  if (!Object.hasOwn(CAPABILITIES, full)) {
    throw new TypeError(`Unknown capability: ${JSON.stringify(name)}`);
  }
  return full as CapabilityName;
}

/**
 * The number of a capability (`"CAP_SYS_ADMIN"` → 21).
 *
 * @example Look up a number
 * ```ts
 * import { capabilityNumber } from "denobox/sandbox";
 * console.log(capabilityNumber("SYS_ADMIN")); // 21
 * ```
 */
export function capabilityNumber(name: string): number {
  return CAPABILITIES[capabilityName(name)];
}

/**
 * The highest capability the running kernel knows (/proc/sys/kernel/cap_last_cap), or the
 * highest this module knows when the file cannot be read.
 *
 * @example Ask the running kernel
 * ```ts
 * import { lastCapability } from "denobox/sandbox";
 * console.log(lastCapability()); // 40 on Linux 5.9 and later
 * ```
 */
export function lastCapability(): number {
  if (lastCap !== null) return lastCap;
  try {
    const n = Number(
      Deno.readTextFileSync("/proc/sys/kernel/cap_last_cap").trim(),
    );
    if (Number.isInteger(n) && n >= 0) return lastCap = n;
  } catch { /* not Linux procfs: fall back */ }
  return lastCap = BY_NUMBER.length - 1;
}
// The kernel's value cannot change while we run.
let lastCap: number | null = null;

/** Options of `resolveCapabilities` / `capabilityMasks`. */
export interface CapabilityOptions {
  /** The starting set; default `DEFAULT_CAPABILITIES`. */
  readonly base?: readonly string[];
  /** Capabilities to add; `"ALL"` adds every capability (minus `capDrop`). */
  readonly capAdd?: readonly string[];
  /** Capabilities to drop; `"ALL"` starts from nothing (plus `capAdd`). */
  readonly capDrop?: readonly string[];
}

function names(
  list: readonly string[] | undefined,
  what: string,
): (CapabilityName | "ALL")[] {
  if (list === undefined) return [];
  if (!Array.isArray(list)) {
    throw new TypeError(`Invalid ${what}: expected an array of names`);
  }
  return list.map((n) =>
    String(n).trim().toUpperCase() === "ALL" ? "ALL" : capabilityName(n)
  );
}

/**
 * The capability set after `capAdd`/`capDrop`, with Docker's rules: `capAdd: ["ALL"]` gives
 * every capability except those dropped; `capDrop: ["ALL"]` gives exactly `capAdd`;
 * otherwise the base set minus `capDrop`, plus `capAdd` (an add beats a drop of the same
 * name). Sorted by number. TypeError for unknown names, before anything else happens.
 *
 * @example Drop everything but two
 * ```ts
 * import { resolveCapabilities } from "denobox/sandbox";
 * console.log(resolveCapabilities({ capDrop: ["ALL"], capAdd: ["chown", "CAP_KILL"] }));
 * // ["CAP_CHOWN", "CAP_KILL"]
 * ```
 */
export function resolveCapabilities(
  options: CapabilityOptions = {},
): CapabilityName[] {
  const base = names(options.base ?? DEFAULT_CAPABILITIES, "base capabilities")
    .filter((n): n is CapabilityName => n !== "ALL");
  const add = names(options.capAdd, "capAdd");
  const drop = names(options.capDrop, "capDrop");
  let set: Set<CapabilityName>;
  if (add.includes("ALL")) {
    set = new Set(BY_NUMBER.filter((n) => !drop.includes(n)));
  } else if (drop.includes("ALL")) {
    set = new Set(add as CapabilityName[]);
  } else {
    set = new Set(base.filter((n) => !drop.includes(n)));
    for (const n of add as CapabilityName[]) set.add(n);
  }
  return [...set].sort((a, b) => CAPABILITIES[a] - CAPABILITIES[b]);
}

/**
 * The masks spawn applies: bounding = effective = permitted = the resolved set, inheritable
 * empty (as Docker since CVE-2022-24769), limited to the capabilities the running kernel
 * knows (`lastCapability()`), since a bounding-set drop of an unknown one fails.
 *
 * @example Docker's default set
 * ```ts
 * import { capabilityMasks, DOCKER_DEFAULT_CAPABILITIES } from "denobox/sandbox";
 * const caps = capabilityMasks({ base: DOCKER_DEFAULT_CAPABILITIES });
 * console.log(caps.effective.toString(16)); // a80425fb
 * ```
 */
export function capabilityMasks(
  options: CapabilityOptions & { readonly lastCap?: number } = {},
): CapabilityMasks {
  const last = options.lastCap ?? lastCapability();
  // The default set's names are this module's own: nothing to normalise (spawn asks for it
  // in every fresh process). The mask is built in two 32-bit halves, one BigInt at the end.
  const set = options.base === undefined && options.capAdd === undefined &&
      options.capDrop === undefined
    ? DEFAULT_CAPABILITIES
    : resolveCapabilities(options);
  let low = 0, high = 0;
  for (const n of set) {
    const bit = CAPABILITIES[n];
    if (bit > last) continue;
    if (bit < 32) low |= 1 << bit;
    else high |= 1 << (bit - 32);
  }
  const mask = (BigInt(high >>> 0) << 32n) | BigInt(low >>> 0);
  return { bounding: mask, effective: mask, permitted: mask, inheritable: 0n };
}
