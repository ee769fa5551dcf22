/**
 * Full grader cycles per second of /bin/true (prepare, limits, spawn, wait, figures, cleanup):
 * `denobox grade --batch` side by side with isolate's init + run + cleanup, and with
 * bubblewrap plus a cgroup made by a shell script.
 *
 * isolate is used when it is built (outside the repository) at $ISOLATE or
 * /tmp/isolate-src/isolate, with a config naming its box root. isolate 2.x needs cgroup v2 for
 * `--cg`; on a cgroup v1 machine it runs without `--cg` (then it limits nothing by cgroup and
 * measures time from rusage), which this bench says in its output.
 *
 *   deno run -A bench/grade.ts [--runs N] [--rounds R]
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { denoRunArgs, REPO } from "../tests/_helpers.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { runs: { type: "string" }, rounds: { type: "string" } },
});
const RUNS = Number(values.runs ?? 200);
const ROUNDS = Number(values.rounds ?? 3);
const ISOLATE = Deno.env.get("ISOLATE") ?? "/tmp/isolate-src/isolate";

const median = (xs: number[]) =>
  [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function exists(p: string): Promise<boolean> {
  return await Deno.stat(p).then(() => true, () => false);
}

/** Rate of the denobox batch interface: jobs written at once, time until the last result. */
async function denoboxRate(
  parallel: number,
): Promise<{ rate: number; startup: number; notOk: number }> {
  const t0 = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      ...denoRunArgs(join(REPO, "cli", "main.ts")),
      "grade",
      "--batch",
      `--parallel=${parallel}`,
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const writer = child.stdin.getWriter();
  const enc = new TextEncoder();
  let buf = "";
  const readLines = async (n: number) => {
    const lines: string[] = [];
    while (lines.length < n) {
      const i = buf.indexOf("\n");
      if (i >= 0) {
        lines.push(buf.slice(0, i));
        buf = buf.slice(i + 1);
        continue;
      }
      const { value, done } = await reader.read();
      if (done) {
        throw new Error(
          `denobox grade --batch ended after ${lines.length} results`,
        );
      }
      buf += value;
    }
    return lines;
  };
  // Warm-up job: start-up (Deno, module loading, the pool's first cgroup) is paid here.
  await writer.write(
    enc.encode(JSON.stringify({ argv: ["/bin/true"] }) + "\n"),
  );
  await readLines(1);
  const startup = performance.now() - t0;
  const job = enc.encode(
    JSON.stringify({ argv: ["/bin/true"], timeLimit: 1, memoryLimit: "64m" }) +
      "\n",
  );
  const t1 = performance.now();
  // all jobs in one write, as a judge piping a file of jobs would (a write per job would
  // measure this process's writes on the same CPUs as much as the batch)
  const all = new Uint8Array(job.length * RUNS);
  for (let i = 0; i < RUNS; i++) all.set(job, i * job.length);
  const writing = (async () => {
    await writer.write(all);
    await writer.close();
  })();
  const lines = await readLines(RUNS);
  const secs = (performance.now() - t1) / 1000;
  await writing;
  reader.releaseLock();
  await child.stdout.cancel().catch(() => {});
  await child.status;
  const notOk = lines.filter((l) => JSON.parse(l).status !== "OK").length;
  return { rate: RUNS / secs, startup, notOk };
}

/** Rate of a shell loop running `cycle BOX` RUNS times, `parallel` loops at once. */
async function shellRate(script: string, parallel: number): Promise<number> {
  const per = Math.ceil(RUNS / parallel);
  const t0 = performance.now();
  const outs = await Promise.all(
    Array.from({ length: parallel }, (_, p) =>
      new Deno.Command("/bin/sh", {
        args: [
          "-c",
          `${script}\ni=0; while [ $i -lt ${per} ]; do cycle ${
            p + 1
          } || exit 1; i=$((i+1)); done`,
        ],
        stdout: "null",
        stderr: "piped",
      }).output()),
  );
  const secs = (performance.now() - t0) / 1000;
  for (const o of outs) {
    if (!o.success) {
      throw new Error(new TextDecoder().decode(o.stderr).slice(0, 500));
    }
  }
  return (per * parallel) / secs;
}

const ISOLATE_CYCLE = `
cycle() {
  ${ISOLATE} --box-id=$1 --init >/dev/null &&
  ${ISOLATE} --box-id=$1 --silent --mem=65536 --time=1 --processes=64 --run -- /bin/true &&
  ${ISOLATE} --box-id=$1 --cleanup
}`;

// bubblewrap with a cgroup v1 group (memory, pids, cpuacct) made, joined, read and removed per
// run by the shell: what a hand-made grader on bwrap does.
const BWRAP_CYCLE = `
cycle() {
  g=denobox-bench-bwrap-$$-$1
  for c in memory pids cpuacct; do mkdir /sys/fs/cgroup/$c/$g || return 1; done
  echo 67108864 > /sys/fs/cgroup/memory/$g/memory.limit_in_bytes
  echo 64 > /sys/fs/cgroup/pids/$g/pids.max
  sh -c "for c in memory pids cpuacct; do echo \\$\\$ > /sys/fs/cgroup/\\$c/$g/cgroup.procs; done
    exec bwrap --unshare-all --die-with-parent --ro-bind / / --tmpfs /tmp --proc /proc --dev /dev --chdir /tmp -- /bin/true" || return 1
  cat /sys/fs/cgroup/cpuacct/$g/cpuacct.usage /sys/fs/cgroup/memory/$g/memory.max_usage_in_bytes >/dev/null
  for c in memory pids cpuacct; do
    n=0; until rmdir /sys/fs/cgroup/$c/$g 2>/dev/null; do n=$((n+1)); [ $n -gt 200 ] && return 1; sleep 0.005; done
  done
}`;

const cgroupV2Memory = await Deno.readTextFile(
  "/sys/fs/cgroup/cgroup.controllers",
)
  .then((t) => t.split(/\s+/).includes("memory"))
  .catch(() => false);
const haveIsolate = await exists(ISOLATE);
const haveBwrap = await exists("/usr/bin/bwrap");

console.log(
  `${RUNS} runs of /bin/true per round, median of ${ROUNDS} rounds, ${navigator.hardwareConcurrency} CPUs`,
);
if (haveIsolate) {
  console.log(
    `isolate: ${ISOLATE} ${
      cgroupV2Memory
        ? ""
        : "WITHOUT --cg (this machine's memory controller is cgroup v1; isolate 2.x needs v2)"
    }`,
  );
} else {console.log(
    `isolate: not found at ${ISOLATE} (build it from ioi/isolate, outside the repo)`,
  );}

// The batch interface's pool runs as many jobs as there are CPUs by default; 1 shows the cost
// of one cycle alone. isolate's shell loops run at the same parallelism, side by side.
const CPUS = navigator.hardwareConcurrency;
const best = { denobox: 0, isolate: 0 };
for (const parallel of [...new Set([1, CPUS])]) {
  const d: number[] = [], iso: number[] = [], bw: number[] = [];
  let startup = 0, notOk = 0;
  for (let r = 0; r < ROUNDS; r++) {
    const res = await denoboxRate(parallel);
    d.push(res.rate);
    startup = res.startup;
    notOk += res.notOk;
    if (haveIsolate) iso.push(await shellRate(ISOLATE_CYCLE, parallel));
    if (haveBwrap) bw.push(await shellRate(BWRAP_CYCLE, parallel));
  }
  const dm = median(d);
  best.denobox = Math.max(best.denobox, dm);
  console.log(`\nparallel ${parallel}:`);
  console.log(
    `  denobox grade --batch   ${dm.toFixed(1).padStart(7)} runs/s  (start-up ${
      startup.toFixed(0)
    } ms, paid once${notOk ? `; ${notOk} not OK!` : ""})`,
  );
  if (iso.length) {
    const im = median(iso);
    best.isolate = Math.max(best.isolate, im);
    console.log(
      `  isolate init+run+clean  ${
        im.toFixed(1).padStart(7)
      } runs/s  -> denobox ${(dm / im).toFixed(2)}x`,
    );
  }
  if (bw.length) {
    const bm = median(bw);
    console.log(
      `  bwrap + cgroup script   ${
        bm.toFixed(1).padStart(7)
      } runs/s  -> denobox ${(dm / bm).toFixed(2)}x`,
    );
  }
}

if (best.isolate > 0) {
  const ratio = best.denobox / best.isolate;
  console.log(
    `\nbest of each: denobox ${best.denobox.toFixed(1)} vs isolate ${
      best.isolate.toFixed(1)
    } runs/s -> ${ratio.toFixed(2)}x (target 2x: ${
      ratio >= 2 ? "met" : "not met"
    })`,
  );
}
