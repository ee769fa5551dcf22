import { Cgroup, counters } from "denobox/cgroup";
import { assert, assertEquals, assertThrows, IS_ROOT } from "../_helpers.ts";
import { runInGroup, TAG } from "../cgroup/_helpers.ts";
import { CpuClock, SlotCpuGroup } from "../../grader/_cpuclock.ts";

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

Deno.test({
  name:
    `[root] ${TAG} SlotCpuGroup: a v1 slot's CPU group, zeroed between runs, never reused once spoiled`,
  ignore: !IS_ROOT,
  async fn() {
    await using parent = Cgroup.create(undefined, {
      controllers: ["memory", "cpuacct"],
    });
    if (parent.version !== 1) {
      // v2 has one directory for every controller: no separate CPU group to keep
      assertThrows(() => new SlotCpuGroup(parent, "slot-0"), TypeError);
      return;
    }
    const slot = new SlotCpuGroup(parent, "slot-0");
    try {
      const run = await runInGroup(slot.group, [
        "/bin/sh",
        "-c",
        "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done",
      ]);
      assertEquals((await run.status).code, 0);
      assert(slot.clock.read() > 0.001);
      assert(counters(slot.group, ["cpu.usage"])["cpu.usage"] > 1000);
      slot.reset();
      assertEquals(slot.clock.read(), 0);
      // the user/system halves are zeroed with the total
      const st = counters(slot.group, ["cpu.user", "cpu.system", "cpu.usage"]);
      assertEquals(st, { "cpu.user": 0, "cpu.system": 0, "cpu.usage": 0 });
      slot.spoil();
      assert(slot.spoiled);
      assertThrows(() => slot.reset(), Error, "spoiled");
    } finally {
      await slot[Symbol.asyncDispose]();
    }
    assertThrows(() => Cgroup.open(slot.group.paths[0]!));
  },
});
