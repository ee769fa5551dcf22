/**
 * Answers "does this kernel have /proc/NAME?" without throwing. The first exception a Deno
 * process throws costs over a millisecond, and spawn asks about several /proc entries a kernel
 * may lack (sysrq-trigger, kcore, sched_debug...). /proc's top level is read once.
 * @module
 */

let names: ReadonlySet<string> | null = null;

/** True when `path` is a top-level /proc entry that this kernel does not have. */
export function procEntryMissing(path: string): boolean {
  const m = /^\/proc\/([^/]+)$/.exec(path);
  if (m === null) return false;
  if (names === null) {
    try {
      names = new Set([...Deno.readDirSync("/proc")].map((e) => e.name));
    } catch {
      return false;
    }
  }
  return !names.has(m[1]!);
}
