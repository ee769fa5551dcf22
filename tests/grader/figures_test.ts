/**
 * The grader's figures against the machine's cgroup driver: small enough to run inside the
 * cgroup v2 VM too (tests/cgroup/v2vm_test.ts), with shell programs only (no compiled
 * fixture), so each driver proves ML, CPU time and memory figures for real.
 */
import { assert, assertEquals, IS_ROOT } from "../_helpers.ts";
import { TAG } from "../cgroup/_helpers.ts";
import { type GradeResult, GraderPool } from "denobox/grader";

const explain = (r: GradeResult) =>
  JSON.stringify({ ...r, stdout: null, stderr: null });
const sh = (script: string) => ["/bin/sh", "-c", script];

Deno.test({
  name:
    `[root] ${TAG} grade: OK, ML and CPU time come from the run's own cgroup, run after run`,
  ignore: !IS_ROOT,
  async fn() {
    // concurrency 1: the runs follow each other in one slot
    await using pool = new GraderPool({ concurrency: 1 });
    const busy = await pool.grade({
      timeLimit: 30,
      argv: sh("i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done"),
    });
    assertEquals(busy.status, "OK", explain(busy));
    assert(busy.cpuTime > 0.05, explain(busy));
    assert(busy.userTime + busy.sysTime <= busy.cpuTime + 0.001, explain(busy));

    // a shell holding 64 MB of text in a 32 MiB box: the OOM killer ends it
    const hog = await pool.grade({
      memoryLimit: "32m",
      timeLimit: 30,
      argv: sh("x=$(head -c 64000000 /dev/zero | tr '\\0' a); echo ${#x}"),
    });
    assertEquals([hog.status, hog.oomKilled], ["ML", true], explain(hog));
    assert(hog.memoryPeak >= 28 * 2 ** 20, explain(hog));
    assert(hog.memoryPeak <= 34 * 2 ** 20, explain(hog));

    // the next run of the slot starts from nothing: no CPU, memory or OOM of the ones before
    const quiet = await pool.grade({ argv: ["/bin/true"], timeLimit: 30 });
    assertEquals(
      [quiet.status, quiet.oomKilled],
      ["OK", false],
      explain(quiet),
    );
    assert(quiet.cpuTime < busy.cpuTime / 2, explain(quiet));
    assert(quiet.memoryPeak < 16 * 2 ** 20, explain(quiet));
  },
});
