import type { Driver } from "./_driver.ts";
import { driverOf } from "./_private.ts";
import type { Cgroup } from "./cgroup.ts";

/** Validates a pids limit; returns what applies it. */
export function pidsPlan(max: number | "max"): (d: Driver) => void {
  const n = max === "max" ? Infinity : max;
  if (n !== Infinity && (!Number.isSafeInteger(n) || n < 0)) {
    throw new RangeError(
      `Invalid pids limit: ${max} (expected an integer >= 0, or "max")`,
    );
  }
  return (d) => d.setPidsMax(n);
}

/**
 * Caps the number of tasks (processes and threads) in the group (pids.max): past it fork()
 * and clone() fail with EAGAIN, which stops a fork bomb. `"max"` / `Infinity`: no limit.
 *
 * @example At most 64 tasks
 * ```ts ignore
 * import { Cgroup, setPidsLimit } from "denobox/cgroup";
 * await using cg = Cgroup.create();
 * setPidsLimit(cg, 64);
 * ```
 */
export function setPidsLimit(cg: Cgroup, max: number | "max"): void {
  const driver = driverOf(cg);
  pidsPlan(max)(driver);
}
