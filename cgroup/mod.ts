/**
 * Control groups on cgroup v1, v2 and hybrid machines, through one interface: create a group,
 * limit memory, CPU, tasks and I/O, freeze, kill, read its counters (all with `stats()`, or
 * a chosen few with `counters()`), destroy it.
 *
 * - Where groups go: on v1 under a `denobox` group at each hierarchy's root (never inside a
 *   group this process already belongs to); on v2 below the caller's own cgroup (delegation:
 *   its processes move into a `leaf` child so controllers can be enabled), which also works
 *   rootless inside a delegated cgroup such as a systemd user scope. `parent` overrides.
 * - Processes join before their first instruction with `spawn({ cgroup })` from
 *   `denobox/sandbox`, which takes a `Cgroup` (its `paths`).
 * - Sizes are numbers or strings such as `"64m"` and `"1.5G"`; bad values are a `RangeError`
 *   before anything is written; kernel refusals are a `SyscallError` naming the file and value.
 *
 * @example Run a sandbox in a limited group and read its peak memory
 * ```ts ignore
 * import { Cgroup, setMemoryLimit, setPidsLimit, stats } from "denobox/cgroup";
 * import { spawn } from "denobox/sandbox";
 * await using cg = Cgroup.create();
 * setMemoryLimit(cg, "256m", { swap: 0 });
 * setPidsLimit(cg, 64);
 * await using box = await spawn({ argv: ["/usr/bin/sort", "/usr/share/dict/words"], cgroup: cg });
 * await box.status;
 * console.log(stats(cg).memory.peak, stats(cg).cpu.usage);
 * ```
 * @module
 */
export {
  Cgroup,
  type CgroupCreateOptions,
  type CgroupLimits,
  type ControllerName,
} from "./cgroup.ts";
export {
  type CgroupHierarchy,
  type CgroupLayout,
  type CgroupMode,
  detectCgroups,
} from "./detect.ts";
export { type MemoryLimitOptions, setMemoryLimit } from "./memory.ts";
export { type CpuLimit, setCpuLimit, setCpuset, setCpuWeight } from "./cpu.ts";
export { setPidsLimit } from "./pids.ts";
export {
  deviceNumber,
  type IoLimitOptions,
  setIoLimit,
  setIoWeight,
} from "./io.ts";
export { freeze, thaw } from "./freeze.ts";
export { kill } from "./kill.ts";
export { addProcess, processes } from "./procs.ts";
export {
  type CgroupCounters,
  type CgroupStats,
  COUNTER_NAMES,
  type CounterName,
  counters,
  stats,
} from "./stats.ts";
export { parseSize } from "./size.ts";
