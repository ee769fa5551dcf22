import { Cgroup, counters } from "denobox/cgroup";
import { assert, assertEquals, IS_ROOT } from "../_helpers.ts";
import { runInGroup, TAG } from "../cgroup/_helpers.ts";
import { CpuClock } from "../../grader/_cpuclock.ts";

Deno.test({
  name:
    `[root] ${TAG} CpuClock reads the group's CPU time from one open counter file`,
  ignore: !IS_ROOT,
  async fn() {
    const controllers = ["memory", "cpuacct"] as const;
    await using cg = Cgroup.create(undefined, { controllers });
    using clock = new CpuClock(cg);
    assertEquals(clock.read(), 0);
    const run = await runInGroup(cg, [
      "/bin/sh",
      "-c",
      "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done",
    ]);
    assertEquals((await run.status).code, 0);
    const cpu = clock.read();
    assert(cpu > 0.001, `cpu ${cpu}`);
    // The same counter as counters() reads (in whole µs), re-read from offset 0 each time.
    const usage = counters(cg, ["cpu.usage"])["cpu.usage"];
    assert(Math.abs(cpu * 1e6 - usage) < 1, `${cpu} s, ${usage} µs`);
    assertEquals(clock.read(), cpu);
  },
});
