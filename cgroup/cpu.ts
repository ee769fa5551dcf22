import type { Driver } from "./_driver.ts";
import { checkCpuList } from "./_parse.ts";
import { driverOf } from "./_private.ts";
import type { Cgroup } from "./cgroup.ts";

/** A CPU bandwidth limit: a share of cores, or a raw CFS quota per period (µs). */
export type CpuLimit = { cpus: number } | {
  quota: number | "max";
  period: number;
};

const DEFAULT_PERIOD = 100_000;

/** Validates a CPU limit; returns what applies it. */
export function cpuPlan(limit: CpuLimit): (d: Driver) => void {
  if (typeof limit !== "object" || limit === null) {
    throw new TypeError(
      "Invalid CPU limit: expected { cpus } or { quota, period }",
    );
  }
  let quota: number, period: number;
  if ("cpus" in limit) {
    const c = limit.cpus;
    if (typeof c !== "number" || Number.isNaN(c) || c <= 0) {
      throw new RangeError(
        `Invalid CPU limit: cpus ${c} (expected a number > 0, or Infinity)`,
      );
    }
    period = DEFAULT_PERIOD;
    quota = c === Infinity ? Infinity : Math.round(c * period);
    if (quota < 1000) {
      throw new RangeError(
        `Invalid CPU limit: cpus ${c} (the kernel's minimum is 0.01)`,
      );
    }
  } else {
    period = limit.period;
    quota = limit.quota === "max" ? Infinity : limit.quota;
    if (!Number.isInteger(period) || period < 1000 || period > 1_000_000) {
      throw new RangeError(
        `Invalid CPU period: ${period} (expected 1000 to 1000000 µs)`,
      );
    }
    if (quota !== Infinity && (!Number.isInteger(quota) || quota < 1000)) {
      throw new RangeError(
        `Invalid CPU quota: ${limit.quota} (expected >= 1000 µs, or "max")`,
      );
    }
  }
  return (d) => d.setCpuMax(quota, period);
}

/**
 * Limits the group's CPU bandwidth (v2 cpu.max; v1 cpu.cfs_quota_us / cpu.cfs_period_us):
 * `{ cpus: 0.5 }` is half a core (50 ms per 100 ms period), `{ cpus: 2 }` two cores,
 * `{ cpus: Infinity }` or `{ quota: "max", period }` no limit.
 *
 * @example Half a core
 * ```ts ignore
 * import { Cgroup, setCpuLimit } from "denobox/cgroup";
 * await using cg = Cgroup.create();
 * setCpuLimit(cg, { cpus: 0.5 });
 * ```
 */
export function setCpuLimit(cg: Cgroup, limit: CpuLimit): void {
  const driver = driverOf(cg);
  cpuPlan(limit)(driver);
}

/** Validates a CPU weight; returns what applies it. */
export function cpuWeightPlan(weight: number): (d: Driver) => void {
  if (!Number.isInteger(weight) || weight < 1 || weight > 10000) {
    throw new RangeError(
      `Invalid CPU weight: ${weight} (expected an integer from 1 to 10000)`,
    );
  }
  return (d) => d.setCpuWeight(weight);
}

/**
 * Sets the group's CPU weight, its share under contention: 1 to 10000, default 100 (v2
 * cpu.weight; v1 cpu.shares, scaled so 100 is 1024).
 *
 * @example Half the default share
 * ```ts ignore
 * import { Cgroup, setCpuWeight } from "denobox/cgroup";
 * await using cg = Cgroup.create();
 * setCpuWeight(cg, 50);
 * ```
 */
export function setCpuWeight(cg: Cgroup, weight: number): void {
  const driver = driverOf(cg);
  cpuWeightPlan(weight)(driver);
}

/** Validates a cpuset; returns what applies it. */
export function cpusetPlan(
  set: { cpus?: string; mems?: string },
): (d: Driver) => void {
  const cpus = set.cpus === undefined
    ? undefined
    : checkCpuList(set.cpus, "cpuset cpus");
  const mems = set.mems === undefined
    ? undefined
    : checkCpuList(set.mems, "cpuset mems");
  return (d) => d.setCpuset(cpus, mems);
}

/**
 * Pins the group to CPUs and memory nodes (cpuset.cpus / cpuset.mems), as lists like `"0-3,8"`.
 * CPUs the machine lacks are the kernel's `EINVAL`.
 *
 * @example Only CPU 0
 * ```ts ignore
 * import { Cgroup, setCpuset } from "denobox/cgroup";
 * await using cg = Cgroup.create();
 * setCpuset(cg, { cpus: "0" });
 * ```
 */
export function setCpuset(
  cg: Cgroup,
  set: { cpus?: string; mems?: string },
): void {
  const driver = driverOf(cg);
  cpusetPlan(set)(driver);
}
