import { driverOf } from "./_private.ts";
import type { Cgroup } from "./cgroup.ts";

/**
 * Moves process `pid` (with all its threads) into the group, in every hierarchy on v1. A child
 * that must not run a single instruction outside the group joins before exec instead:
 * `spawn({ cgroup })` from `denobox/sandbox`.
 *
 * @example
 * ```ts ignore
 * import { addProcess, Cgroup } from "denobox/cgroup";
 * await using cg = Cgroup.create();
 * const child = new Deno.Command("sleep", { args: ["5"] }).spawn();
 * addProcess(cg, child.pid);
 * ```
 */
export function addProcess(cg: Cgroup, pid: number): void {
  const driver = driverOf(cg);
  if (!Number.isSafeInteger(pid) || pid < 0) {
    throw new RangeError(`Invalid pid: ${pid} (0 means the calling process)`);
  }
  driver.addProcess(pid);
}

/**
 * The pids of the processes in the group and its sub-groups (on v1, in any of its
 * hierarchies), sorted.
 *
 * @example
 * ```ts ignore
 * import { Cgroup, processes } from "denobox/cgroup";
 * console.log(processes(Cgroup.open("box-1")));
 * ```
 */
export function processes(cg: Cgroup): number[] {
  return [...new Set(driverOf(cg).procs())].sort((a, b) => a - b);
}
