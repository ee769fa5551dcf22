/**
 * isolate-compatible meta files: a `GradeResult` as `key:value` lines, so a grader built on
 * isolate's `--meta` can switch to denobox by changing one path.
 * @module
 */
import { Signal } from "denobox/libc";
import type { GradeResult } from "./types.ts";

const ms = (s: number) => s.toFixed(3);

/**
 * The isolate meta file of a result, in isolate's key order: `time`, `time-wall`, `max-rss`,
 * `csw-voluntary`, `csw-forced`, `cg-mem` (KiB), `cg-oom-killed` (only when 1), `killed` (only
 * when 1), `exitcode` or `exitsig`, then `status` and `message` unless the run was OK. The
 * statuses are isolate's (`RE`, `SG`, `TO`, `XX`) plus `ML` and `OL`.
 *
 * @example A timed-out run
 * ```ts
 * import { formatMeta, type GradeResult } from "denobox/grader";
 * const r: GradeResult = {
 *   status: "TO", timeout: "wall", message: "Time limit exceeded (wall clock)",
 *   exitCode: null, signal: "SIGKILL", killed: true, cpuTime: 0.002, userTime: 0.001,
 *   sysTime: 0.001, wallTime: 1.001, memoryPeak: 409600, maxRss: 1024, oomKilled: false,
 *   outputTruncated: false, stdout: null, stderr: null, outputBytes: { stdout: 0, stderr: 0 },
 *   files: {}, voluntarySwitches: 2, involuntarySwitches: 0,
 * };
 * console.log(formatMeta(r).split("\n")[1]); // time-wall:1.001
 * ```
 */
export function formatMeta(result: GradeResult): string {
  const lines: string[] = [];
  const put = (k: string, v: string | number) => lines.push(`${k}:${v}`);
  if (result.status !== "XX" || result.wallTime > 0) {
    put("time", ms(result.cpuTime));
    put("time-wall", ms(result.wallTime));
    put("max-rss", result.maxRss);
    if (result.voluntarySwitches !== null) {
      put("csw-voluntary", result.voluntarySwitches);
    }
    if (result.involuntarySwitches !== null) {
      put("csw-forced", result.involuntarySwitches);
    }
    put("cg-mem", Math.ceil(result.memoryPeak / 1024));
    if (result.oomKilled) put("cg-oom-killed", 1);
    if (result.killed) put("killed", 1);
    if (result.exitCode !== null) put("exitcode", result.exitCode);
    else if (result.signal !== null) put("exitsig", Signal[result.signal]);
  }
  if (result.status !== "OK") {
    put("status", result.status);
    put("message", result.message.replace(/\n/g, " "));
  }
  return lines.join("\n") + "\n";
}
