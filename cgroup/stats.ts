import { driverOf } from "./_private.ts";
import type { Cgroup } from "./cgroup.ts";

/** Resource use of a group and its sub-groups, read from the cgroup's own counters. */
export interface CgroupStats {
  /** CPU time in µs (v2 cpu.stat; v1 cpuacct.usage*). */
  cpu: { usage: number; user: number; system: number };
  /** Memory use and OOM counts (memory controller). */
  memory: {
    /** Bytes charged now (v2 memory.current; v1 memory.usage_in_bytes). */
    current: number;
    /**
     * Highest `current` so far: v2 memory.peak (Linux 5.19+), v1 memory.max_usage_in_bytes.
     * On older v2 kernels it is the highest `current` that `stats()` has sampled on this handle
     * (`peakSource: "sampled"`), a lower bound. Never `ru_maxrss`, which counts the parent's
     * RSS at fork.
     */
    peak: number;
    /** Where `peak` came from. */
    peakSource: "kernel" | "sampled";
    /** Swap in use, bytes; null without swap accounting. */
    swap: number | null;
    /** Times the group hit its limit with reclaim failing (v2 memory.events `oom`; v1: = oomKills). */
    oomEvents: number;
    /** Processes the OOM killer killed in the group (memory.events `oom_kill`; v1 memory.oom_control). */
    oomKills: number;
  };
  /** Tasks now, and the most at once (pids.peak; null on kernels without it). */
  pids: { current: number; peak: number | null };
  /**
   * Bytes read from and written to block devices (v2 io.stat; v1 blkio service bytes, which
   * current kernels count only on devices where the group has a throttle rule: `setIoLimit`).
   */
  io: { readBytes: number; writeBytes: number };
}

/**
 * Reads the group's counters. A controller the group lacks reads as 0 (or null where the
 * field allows it).
 *
 * @example Did the OOM killer strike?
 * ```ts ignore
 * import { Cgroup, stats } from "denobox/cgroup";
 * const s = stats(Cgroup.open("box-1"));
 * console.log(s.memory.peak, s.memory.oomKills, s.cpu.usage);
 * ```
 */
export function stats(cg: Cgroup): CgroupStats {
  return driverOf(cg).stats();
}
