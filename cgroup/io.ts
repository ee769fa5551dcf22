import type { IoLimits } from "./_driver.ts";
import { toSyscallError } from "./_fs.ts";
import { driverOf } from "./_private.ts";
import { parseLimit } from "./size.ts";
import type { Cgroup } from "./cgroup.ts";

/** Limits of `setIoLimit`: bytes per second (numbers or sizes like `"10m"`) and I/Os per second. */
export interface IoLimitOptions {
  /** Read bytes per second (`"10m"` = 10 MiB/s); `"max"` or `Infinity` removes the limit. */
  rbps?: number | string;
  /** Write bytes per second (`"10m"` = 10 MiB/s); `"max"` or `Infinity` removes the limit. */
  wbps?: number | string;
  /** Read operations per second; `"max"` or `Infinity` removes the limit. */
  riops?: number | "max";
  /** Write operations per second; `"max"` or `Infinity` removes the limit. */
  wiops?: number | "max";
}

/**
 * The `MAJ:MIN` of a block device given as `"8:0"` or a path such as `"/dev/vda"`.
 * A path that is not a block device is a `TypeError`.
 */
export function deviceNumber(device: string): string {
  if (typeof device !== "string" || device === "") {
    throw new TypeError(`Invalid block device: ${JSON.stringify(device)}`);
  }
  if (/^\d+:\d+$/.test(device)) return device;
  if (!device.startsWith("/")) {
    throw new TypeError(
      `Invalid block device: ${
        JSON.stringify(device)
      } (expected "MAJ:MIN" or a /dev path)`,
    );
  }
  let st: Deno.FileInfo;
  try {
    st = Deno.statSync(device);
  } catch (e) {
    throw toSyscallError(e, "stat", device);
  }
  if (!st.isBlockDevice || st.rdev === null) {
    throw new TypeError(
      `Invalid block device: ${device} is not a block device`,
    );
  }
  // glibc's dev_t encoding (gnu_dev_major / gnu_dev_minor).
  const rdev = st.rdev, hi = Math.floor(rdev / 2 ** 32), lo = rdev >>> 0;
  const major = ((lo >>> 8) & 0xfff) | ((hi & 0xfffff000) >>> 0);
  const minor = (lo & 0xff) | ((lo >>> 12) & 0xfff00);
  return `${major}:${minor}`;
}

function iops(v: number | "max", what: string): number {
  if (v === "max" || v === Infinity) return Infinity;
  if (!Number.isSafeInteger(v) || v <= 0) {
    throw new RangeError(
      `Invalid ${what}: ${v} (expected an integer > 0, or "max")`,
    );
  }
  return v;
}

function bps(v: number | string, what: string): number {
  const n = parseLimit(v, what);
  if (n === 0) {
    throw new RangeError(`Invalid ${what}: ${v} (expected > 0, or "max")`);
  }
  return n;
}

/**
 * Throttles the group's I/O on one block device (v2 io.max; v1 blkio.throttle.*_device).
 * Only the limits given change; `"max"` / `Infinity` removes one.
 *
 * @example 10 MiB/s of writes on /dev/vda
 * ```ts ignore
 * import { Cgroup, setIoLimit } from "denobox/cgroup";
 * await using cg = Cgroup.create();
 * setIoLimit(cg, "/dev/vda", { wbps: "10m", wiops: 1000 });
 * ```
 */
export function setIoLimit(
  cg: Cgroup,
  device: string,
  limits: IoLimitOptions,
): void {
  const driver = driverOf(cg);
  const out: IoLimits = {};
  if (limits.rbps !== undefined) out.rbps = bps(limits.rbps, "rbps");
  if (limits.wbps !== undefined) out.wbps = bps(limits.wbps, "wbps");
  if (limits.riops !== undefined) out.riops = iops(limits.riops, "riops");
  if (limits.wiops !== undefined) out.wiops = iops(limits.wiops, "wiops");
  if (Object.keys(out).length === 0) {
    throw new TypeError(
      "Invalid I/O limits: give at least one of rbps, wbps, riops, wiops",
    );
  }
  driver.setIoMax(deviceNumber(device), out);
}

/**
 * Sets the group's I/O weight, its share of disk time under contention (1 to 10000, default
 * 100; v2 io.weight or io.bfq.weight, v1 blkio.bfq.weight; BFQ accepts 1 to 1000). With
 * `device`, only for that device.
 *
 * @example
 * ```ts ignore
 * import { Cgroup, setIoWeight } from "denobox/cgroup";
 * await using cg = Cgroup.create();
 * setIoWeight(cg, 50);
 * ```
 */
export function setIoWeight(
  cg: Cgroup,
  weight: number,
  options: { device?: string } = {},
): void {
  const driver = driverOf(cg);
  if (!Number.isInteger(weight) || weight < 1 || weight > 10000) {
    throw new RangeError(
      `Invalid I/O weight: ${weight} (expected an integer from 1 to 10000)`,
    );
  }
  const dev = options.device === undefined
    ? undefined
    : deviceNumber(options.device);
  driver.setIoWeight(weight, dev);
}
