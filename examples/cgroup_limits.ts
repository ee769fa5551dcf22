/**
 * examples/cgroup_limits: a group with memory, CPU and task limits; a sandbox whose command
 * wants more memory than it may have runs inside it and is OOM-killed; the group's own counters
 * say so. Root (or a delegated cgroup v2).
 *
 *   tools/deno run -A examples/cgroup_limits.ts
 */
import {
  Cgroup,
  detectCgroups,
  processes,
  setCpuLimit,
  setMemoryLimit,
  setPidsLimit,
  stats,
} from "denobox/cgroup";
import { spawn } from "denobox/sandbox";

const layout = detectCgroups();
console.log(`cgroups: ${layout.mode} (new groups use v${layout.version})`);

await using cg = Cgroup.create();
setMemoryLimit(cg, "32m", { swap: 0 });
setCpuLimit(cg, { cpus: 0.5 });
setPidsLimit(cg, 32);
console.log(`group: ${cg.paths.join("\n       ")}`);

// spawn() puts the sandbox into the group before its first instruction; the payload keeps a
// 100 MiB "line" in memory (tail), three times the limit.
await using box = await spawn({
  argv: ["/bin/sh", "-c", "head -c 100M /dev/zero | tail -n 1 | wc -c"],
  cgroup: cg,
  stdout: "pipe",
});
const out = await box.output();
const s = stats(cg);
console.log(
  `payload: exit ${out.status.code}, output ${
    JSON.stringify(new TextDecoder().decode(out.stdout).trim())
  }`,
);
console.log(
  `memory: peak ${
    (s.memory.peak / 2 ** 20).toFixed(1)
  } MiB (${s.memory.peakSource}), ` +
    `OOM kills ${s.memory.oomKills}`,
);
console.log(
  `cpu: ${
    (s.cpu.usage / 1000).toFixed(1)
  } ms (user ${s.cpu.user} µs, system ${s.cpu.system} µs)`,
);
console.log(
  `pids: now ${s.pids.current}, peak ${s.pids.peak ?? "n/a"}; members left: ${
    processes(cg).length
  }`,
);
// `await using` destroys the group here: kill what is left, wait, remove the directories.
