/**
 * Grader mode: run untrusted programs under strict limits and get exact verdicts and figures,
 * at a high rate.
 *
 * - `grade(options)`: one run; `GraderPool`: many at once.
 * - Verdicts `OK`, `RE`, `SG`, `TO` (cpu or wall), `ML` (only when the cgroup's OOM killer
 *   ran), `OL` (output cut at exactly the limit), `XX` (the grader failed, with the reason).
 * - `formatMeta(result)`: isolate's meta-file lines; `runBatch()`: the JSON-lines protocol of
 *   `denobox grade --batch`.
 *
 * @example Time limit
 * ```ts ignore
 * import { grade } from "denobox/grader";
 * const r = await grade({ argv: ["/bin/sh", "-c", "while :; do :; done"], timeLimit: 0.5 });
 * console.log(r.status, r.timeout, r.cpuTime); // TO cpu 0.5
 * ```
 * @module
 */
export * from "./types.ts";
export { grade } from "./grade.ts";
export { GraderPool, type GraderPoolOptions } from "./pool.ts";
export { formatMeta } from "./meta.ts";
export {
  type BatchOptions,
  type BatchSummary,
  jobFromJson,
  type Json,
  resultToJson,
  runBatch,
} from "./batch.ts";
