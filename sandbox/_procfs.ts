/**
 * Answers "does this kernel have /proc/NAME?" without throwing. The first exception a Deno
 * process throws costs over a millisecond, and spawn asks about several /proc entries a kernel
 * may lack (sysrq-trigger, kcore, sched_debug...). One statx(2) each, never an exception;
 * reading the whole of /proc instead grows with the number of processes (0.45 ms here).
 * @module
 */
import { At, statxat } from "denobox/libc";

/** True when `path` is a top-level /proc entry that this kernel does not have. */
export function procEntryMissing(path: string): boolean {
  if (!/^\/proc\/[^/]+$/.test(path)) return false;
  try {
    return statxat(At.AT_FDCWD, path) === null;
  } catch {
    return false;
  }
}
