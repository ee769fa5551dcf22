import type { Driver } from "./_driver.ts";
import { driverOf } from "./_private.ts";
import { parseLimit } from "./size.ts";
import type { Cgroup } from "./cgroup.ts";

/** Options of `setMemoryLimit`. */
export interface MemoryLimitOptions {
  /**
   * Swap the group may use on top of its memory limit (v2 memory.swap.max; v1 sets
   * memory.memsw.limit_in_bytes to memory + swap). `0` forbids swap. Omitted: unchanged.
   */
  swap?: number | string;
  /**
   * Throttle point below the limit (v2 memory.high; v1 has no equivalent and gets
   * memory.soft_limit_in_bytes, a reclaim target under pressure).
   */
  high?: number | string;
}

/**
 * Validates the arguments; returns what applies them (nothing is written before), to a group
 * just made (`fresh`: its limits are known without reading them) or to any group.
 */
export function memoryPlan(
  bytes: number | string,
  options: MemoryLimitOptions = {},
): (d: Driver, fresh?: boolean) => void {
  const max = parseLimit(bytes, "memory limit");
  const swap = options.swap === undefined
    ? undefined
    : parseLimit(options.swap, "swap limit");
  const high = options.high === undefined
    ? undefined
    : parseLimit(options.high, "memory.high");
  return (d, fresh = false) => d.setMemory(max, swap, high, fresh);
}

/**
 * Sets the group's memory limit (v2 memory.max, v1 memory.limit_in_bytes): past it the kernel
 * reclaims, then OOM-kills inside the group. `bytes` is a number, a size such as `"256M"`, or
 * `"max"` / `Infinity` for no limit. Bad values are a `RangeError` before anything is written.
 *
 * @throws {RangeError} for a bad size.
 * @throws {SyscallError} when the kernel refuses the value.
 * @example Limit memory, forbid swap
 * ```ts ignore
 * import { Cgroup, setMemoryLimit } from "denobox/cgroup";
 * await using cg = Cgroup.create();
 * setMemoryLimit(cg, "256M", { swap: 0 });
 * ```
 */
export function setMemoryLimit(
  cg: Cgroup,
  bytes: number | string,
  options: MemoryLimitOptions = {},
): void {
  const driver = driverOf(cg);
  memoryPlan(bytes, options)(driver);
}
