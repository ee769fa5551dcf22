/**
 * Child of delegation_test.ts, started inside a cgroup v2 group D (as root or as uid 65534):
 * creates two groups in the default parent, limits one, runs a process in it, and prints what
 * happened as JSON. Exits 0 also when creation fails (the error is part of the JSON).
 */
import { Cgroup, setMemoryLimit, setPidsLimit, stats } from "denobox/cgroup";

const ownBefore = Deno.readTextFileSync("/proc/self/cgroup").trim();
try {
  const a = Cgroup.create();
  const b = Cgroup.create();
  setMemoryLimit(a, "64m");
  setPidsLimit(a, 10);
  const join = a.paths.map((p) => `echo $$ > ${p}/cgroup.procs`).join(" && ");
  const out = await new Deno.Command("/bin/sh", {
    args: ["-c", `${join} && exec cat /proc/self/cgroup`],
    stdout: "piped",
  }).output();
  const pids = stats(a).pids;
  const result = {
    ok: true,
    ownBefore,
    ownAfter: Deno.readTextFileSync("/proc/self/cgroup").trim(),
    paths: [a.paths, b.paths],
    memoryMax: Deno.readTextFileSync(`${a.paths[0]}/memory.max`).trim(),
    childCgroup: new TextDecoder().decode(out.stdout).trim(),
    pidsPeak: pids.peak,
  };
  await a.destroy();
  await b.destroy();
  console.log(JSON.stringify(result));
} catch (e) {
  const err = e as Error & { code?: string };
  console.log(
    JSON.stringify({
      ok: false,
      ownBefore,
      name: err.name,
      code: err.code,
      message: err.message,
    }),
  );
}
