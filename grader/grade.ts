/**
 * `grade()`: one submission, start to finish.
 * @module
 */
import { GraderPool } from "./pool.ts";
import type { GradeOptions, GradeResult } from "./types.ts";

/**
 * Runs one program under grader limits and returns its verdict and figures.
 *
 * The program runs in a fresh sandbox: new mount, pid, ipc, uts and cgroup namespaces, an
 * empty network namespace (no network: the default filter allows AF_UNIX sockets only, so a
 * pool can let the runs of a slot share one), a read-only root (the host's, or `rootfs`), a fresh size-limited
 * tmpfs as its work directory (`/box`) and `/tmp`, no capabilities, no_new_privs, an
 * unprivileged uid, and its own cgroup for memory, processes and CPU accounting. CPU time is
 * the whole cgroup's (every process and thread), polled more often as the limit nears and
 * backed by RLIMIT_CPU; output is cut at exactly `outputLimit` bytes. When the first process
 * ends, every process it left behind is killed. Afterwards nothing of the run remains (no
 * process, cgroup, mount or directory); that is checked, and a failed check is `XX`.
 *
 * Bad options reject with a `TypeError` or `RangeError` before anything runs. Needs root (or
 * a delegated cgroup v2 subtree). For many runs, use a `GraderPool`: it reuses the pool's
 * cgroup and one empty network namespace per slot.
 *
 * @example Grade a program
 * ```ts ignore
 * import { grade } from "denobox/grader";
 * const r = await grade({
 *   argv: ["/usr/bin/python3", "sol.py"],
 *   files: [{ path: "sol.py", data: "print(sum(map(int, input().split())))" }],
 *   stdin: "2 3\n",
 *   timeLimit: 1,
 *   memoryLimit: "256m",
 * });
 * console.log(r.status, new TextDecoder().decode(r.stdout!)); // OK 5
 * ```
 */
export async function grade(options: GradeOptions): Promise<GradeResult> {
  await using pool = new GraderPool({ concurrency: 1 });
  return await pool.grade(options);
}
