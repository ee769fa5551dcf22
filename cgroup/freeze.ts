import type { Driver } from "./_driver.ts";
import { sleep } from "./_fs.ts";
import { driverOf } from "./_private.ts";
import type { Cgroup } from "./cgroup.ts";

/** Waits until a freeze or thaw has completed, up to `ms`; returns whether it did. */
export async function waitFreeze(
  d: Driver,
  frozen: boolean,
  ms: number,
): Promise<boolean> {
  const end = performance.now() + ms;
  for (
    let delay = 1;
    !d.freezeSettled(frozen);
    delay = Math.min(delay * 2, 20)
  ) {
    if (performance.now() >= end) return false;
    await sleep(delay);
  }
  return true;
}

async function setFrozen(
  cg: Cgroup,
  frozen: boolean,
  timeout: number,
): Promise<void> {
  const driver = driverOf(cg);
  if (!(timeout >= 0)) throw new RangeError(`Invalid timeout: ${timeout}`);
  driver.requestFreeze(frozen);
  if (!(await waitFreeze(driver, frozen, timeout))) {
    throw new Error(
      `Cannot ${frozen ? "freeze" : "thaw"} cgroup ${
        driver.paths[0]
      }: not settled after ${timeout} ms`,
    );
  }
}

/**
 * Freezes every process of the group (v2 cgroup.freeze, v1 freezer.state) and resolves once
 * all are stopped. Frozen processes use no CPU and cannot fork; `thaw` resumes them.
 *
 * @example Pause a sandbox
 * ```ts ignore
 * import { Cgroup, freeze, thaw } from "denobox/cgroup";
 * const cg = Cgroup.open("box-1");
 * await freeze(cg);
 * await thaw(cg);
 * ```
 */
export async function freeze(
  cg: Cgroup,
  options: { timeout?: number } = {},
): Promise<void> {
  await setFrozen(cg, true, options.timeout ?? 10_000);
}

/**
 * Resumes a frozen group and resolves once it runs again.
 *
 * @example
 * ```ts ignore
 * import { Cgroup, thaw } from "denobox/cgroup";
 * await thaw(Cgroup.open("box-1"));
 * ```
 */
export async function thaw(
  cg: Cgroup,
  options: { timeout?: number } = {},
): Promise<void> {
  await setFrozen(cg, false, options.timeout ?? 10_000);
}
