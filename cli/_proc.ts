/**
 * What /proc says about a process, apart from the container operations in `_ops.ts` so that
 * the foreground `run` path loads it without them (and without the image code they import).
 * @module
 */

/** The start time of process `pid` (clock ticks since boot), or null when it is gone. */
export function processStartTime(pid: number): number | null {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses; starttime is field 22
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const t = Number(fields[19]);
    return Number.isFinite(t) ? t : null;
  } catch {
    return null;
  }
}
