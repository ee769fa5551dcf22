/**
 * Pure, root-free tests of the cgroup file formats, sizes and layout detection (fixtures are
 * texts as the kernel prints them).
 */
import { parseSize } from "denobox/cgroup";
import {
  checkCpuList,
  parseBlkioBytes,
  parseCgroupMounts,
  parseKeyed,
  parseNestedKeyed,
  parseProcCgroup,
  parseUsageAll,
  parseV1Limit,
  sumIoStat,
  weightToShares,
} from "../../cgroup/_parse.ts";
import { classifyCgroups, dirOf } from "../../cgroup/_layout.ts";
import { assertEquals, assertThrows } from "../_helpers.ts";

Deno.test("parseSize reads numbers and k/m/g/t sizes, binary and case-insensitive", () => {
  assertEquals(parseSize(4096), 4096);
  assertEquals(parseSize("4096"), 4096);
  assertEquals(parseSize("64m"), 64 * 1024 * 1024);
  assertEquals(parseSize("64M"), 64 * 1024 * 1024);
  assertEquals(parseSize("256MiB"), 256 * 1024 * 1024);
  assertEquals(parseSize("1.5G"), 1610612736);
  assertEquals(parseSize("2k"), 2048);
  assertEquals(parseSize("1t"), 1024 ** 4);
  assertEquals(parseSize("1.3k"), 1331);
  assertEquals(parseSize("0"), 0);
});

Deno.test("parseSize rejects bad sizes with a RangeError naming the value", () => {
  for (
    const bad of [
      "",
      "m",
      "-1",
      "1.5.2G",
      "12q",
      " 64m",
      "64 m",
      "1e3",
      "0x10",
      "max",
    ]
  ) {
    assertThrows(() => parseSize(bad), RangeError, JSON.stringify(bad));
  }
  for (const bad of [-1, 1.5, NaN, Infinity, 2 ** 60]) {
    assertThrows(() => parseSize(bad), RangeError, String(bad));
  }
  assertThrows(() => parseSize("9999999t"), RangeError, "too large");
});

Deno.test("parseKeyed reads memory.stat, cpu.stat, memory.events and memory.oom_control", () => {
  const cpu = parseKeyed(
    "usage_usec 123456\nuser_usec 100000\nsystem_usec 23456\nnr_periods 10\nnr_throttled 4\nthrottled_usec 9000\n",
  );
  assertEquals(cpu.get("usage_usec"), 123456);
  assertEquals(cpu.get("system_usec"), 23456);
  const events = parseKeyed(
    "low 0\nhigh 0\nmax 17\noom 2\noom_kill 1\noom_group_kill 0\n",
  );
  assertEquals([events.get("oom"), events.get("oom_kill")], [2, 1]);
  const oom = parseKeyed("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n");
  assertEquals(oom.get("oom_kill"), 3);
  const stat = parseKeyed(
    "anon 1048576\nfile 0\nkernel_stack 16384\npgfault 321\n",
  );
  assertEquals(stat.get("anon"), 1048576);
  assertEquals(parseKeyed("max max\n").get("max"), Infinity);
});

Deno.test("io.stat and v1 blkio service bytes are summed over devices", () => {
  const ioStat =
    "254:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n" +
    "8:16 rbytes=100 wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n";
  assertEquals(sumIoStat(ioStat, "rbytes"), 4196);
  assertEquals(sumIoStat(ioStat, "wbytes"), 8192);
  assertEquals(
    parseNestedKeyed("254:0 rbps=max wbps=1048576 riops=max wiops=max\n").get(
      "254:0",
    )
      ?.get("wbps"),
    1048576,
  );
  const blkio =
    "254:0 Read 2097152\n254:0 Write 1048576\n254:0 Sync 3145728\n" +
    "254:0 Async 0\n254:0 Discard 0\n254:0 Total 3145728\n8:0 Read 10\n8:0 Write 20\nTotal 3145758\n";
  assertEquals(parseBlkioBytes(blkio), { read: 2097162, write: 1048596 });
  assertEquals(parseBlkioBytes("Total 0\n"), { read: 0, write: 0 });
  // cpuacct.usage_all: a header, then user and system ns per CPU.
  assertEquals(
    parseUsageAll(
      "cpu user system\n0 1483409874720 1165853119645\n1 1536005284839 1181693874432\n",
    ),
    {
      user: 1483409874720 + 1536005284839,
      system: 1165853119645 + 1181693874432,
    },
  );
  assertEquals(parseUsageAll("cpu user system\n"), { user: 0, system: 0 });
  assertThrows(() => parseUsageAll("cpu user system\n0 12 x\n"), SyntaxError);
});

Deno.test("v1 limits: PAGE_COUNTER_MAX reads as Infinity", () => {
  assertEquals(parseV1Limit("9223372036854771712\n"), Infinity);
  assertEquals(parseV1Limit("67108864\n"), 67108864);
});

Deno.test("cpu lists and weights", () => {
  assertEquals(checkCpuList("0-3,8", "cpus"), "0-3,8");
  for (const bad of ["", "a", "1-", "3-1", "0,,1", " 0"]) {
    assertThrows(
      () => checkCpuList(bad, "cpuset cpus"),
      RangeError,
      "cpuset cpus",
    );
  }
  assertEquals(weightToShares(100), 1024);
  assertEquals(weightToShares(1), 10);
  assertEquals(weightToShares(10000), 102400);
});

// This machine: v1 controllers, a controller-less v2 mount, a supervisor's memory group.
const HYBRID_MOUNTINFO =
  `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`;
const HYBRID_CGROUP = `9:name=systemd:/
8:pids:/
6:freezer:/
4:memory:/process_api/814df5125ceb6292ab89b29844ed4ca9
3:cpuset:/
2:cpuacct:/
1:cpu:/
0::/
`;

Deno.test("detection: a hybrid machine drives v1 and sees its own memory group", () => {
  const l = classifyCgroups(HYBRID_MOUNTINFO, HYBRID_CGROUP);
  assertEquals([l.mode, l.version], ["hybrid", 1]);
  assertEquals(l.v2?.mount.mountPoint, "/sys/fs/cgroup/unified");
  const memory = l.v1.find((h) => h.mount.controllers.includes("memory"))!;
  assertEquals(memory.own, "/process_api/814df5125ceb6292ab89b29844ed4ca9");
  assertEquals(
    memory.ownDir,
    "/sys/fs/cgroup/memory/process_api/814df5125ceb6292ab89b29844ed4ca9",
  );
  assertEquals(
    l.v1.find((h) => h.mount.name === "systemd")?.mount.controllers,
    [],
  );
  assertEquals(l.v1.filter((h) => h.mount.controllers.length > 0).length, 6);
});

Deno.test("detection: pure v2 with a systemd user scope", () => {
  const l = classifyCgroups(
    "35 24 0:30 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n",
    "0::/user.slice/user-1000.slice/user@1000.service/app.slice/run-r1.scope\n",
  );
  assertEquals([l.mode, l.version, l.v1.length], ["v2", 2, 0]);
  assertEquals(
    l.v2!.ownDir,
    "/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service/app.slice/run-r1.scope",
  );
});

Deno.test("detection: legacy v1 with combined hierarchies, read-only and bind-mounted roots", () => {
  const mi =
    `25 18 0:22 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
28 25 0:25 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:11 - cgroup cgroup rw,cpu,cpuacct
29 25 0:26 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid shared:12 - cgroup cgroup rw,net_cls,net_prio
30 25 0:27 /docker/abc /sys/fs/cgroup/memory ro,nosuid shared:13 - cgroup cgroup rw,memory
31 25 0:28 / /sys/fs/cgroup/pids rw,nosuid shared:14 - cgroup cgroup rw,pids
`;
  const pc =
    "5:pids:/docker/abc\n4:memory:/docker/abc\n3:net_cls,net_prio:/\n2:cpu,cpuacct:/\n";
  const l = classifyCgroups(mi, pc);
  assertEquals([l.mode, l.version, l.v2], ["v1", 1, null]);
  const cpu = l.v1.find((h) => h.mount.controllers.includes("cpu"))!;
  assertEquals(cpu.mount.controllers, ["cpu", "cpuacct"]);
  assertEquals(cpu.mount.mountPoint, "/sys/fs/cgroup/cpu,cpuacct");
  const memory = l.v1.find((h) => h.mount.controllers.includes("memory"))!;
  assertEquals([memory.mount.root, memory.mount.readOnly], [
    "/docker/abc",
    true,
  ]);
  // The mount shows /docker/abc at its top: our group is its root directory.
  assertEquals(memory.ownDir, "/sys/fs/cgroup/memory");
  assertEquals(dirOf(memory.mount, "/elsewhere"), null);
  assertEquals(parseCgroupMounts(mi).length, 4);
});

Deno.test("detection: no cgroup filesystem is an error that says what to mount", () => {
  assertThrows(() => classifyCgroups("", "0::/\n"), Error, "mount -t cgroup2");
});

Deno.test("parseProcCgroup keeps colons inside paths", () => {
  assertEquals(parseProcCgroup("0::/a:b\n4:memory:/x\n"), [
    { id: 0, controllers: [], path: "/a:b" },
    { id: 4, controllers: ["memory"], path: "/x" },
  ]);
});
