/**
 * bench/cgroup: what a cgroup costs per sandbox (create + memory/cpu/pids limits + join one
 * process + destroy, which kills it, waits until the group is empty and removes it), printed
 * next to the cost of spawning /bin/true with `spawn()` from denobox/sandbox, and the whole
 * thing together (a sandbox in a fresh limited group), in one run. Root, or a delegated
 * cgroup v2.
 *
 *   tools/deno run -A bench/cgroup.ts [iterations]
 */
import {
  addProcess,
  Cgroup,
  setCpuLimit,
  setMemoryLimit,
  setPidsLimit,
} from "denobox/cgroup";
import { spawn } from "denobox/sandbox";

const N = Number(Deno.args[0] ?? 40);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

async function time(fn: () => Promise<void>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

const spawnLabel = "spawn({argv:[/bin/true]})";
async function spawnTrue(cgroup?: Cgroup): Promise<void> {
  await using box = await spawn(
    cgroup ? { argv: ["/bin/true"], cgroup } : { argv: ["/bin/true"] },
  );
  await box.status;
}

const emptyCost: number[] = [],
  fullCost: number[] = [],
  spawnCost: number[] = [],
  togetherCost: number[] = [];
let version = 0;
for (let i = 0; i < N + 3; i++) {
  // A process to join, started outside the timed part (as spawn() would have it).
  const sleeper = new Deno.Command("/bin/sleep", {
    args: ["60"],
    stdout: "null",
  }).spawn();
  const full = await time(async () => {
    const cg = Cgroup.create();
    version = cg.version;
    setMemoryLimit(cg, "256m");
    setCpuLimit(cg, { cpus: 1 });
    setPidsLimit(cg, 128);
    addProcess(cg, sleeper.pid);
    await cg.destroy();
  });
  await sleeper.status;
  const empty = await time(async () => {
    const cg = Cgroup.create();
    setMemoryLimit(cg, "256m");
    setCpuLimit(cg, { cpus: 1 });
    setPidsLimit(cg, 128);
    await cg.destroy();
  });
  const sp = await time(() => spawnTrue());
  const together = await time(async () => {
    const cg = Cgroup.create();
    setMemoryLimit(cg, "256m");
    setCpuLimit(cg, { cpus: 1 });
    setPidsLimit(cg, 128);
    await spawnTrue(cg);
    await cg.destroy();
  });
  if (i >= 3) { // warm-up rounds dropped
    fullCost.push(full);
    emptyCost.push(empty);
    spawnCost.push(sp);
    togetherCost.push(together);
  }
}

const f = median(fullCost), e = median(emptyCost), s = median(spawnCost);
const tg = median(togetherCost);
console.log(`cgroup v${version}, ${N} iterations, medians:`);
console.log(
  `  create + 3 limits + join + destroy (kill, wait, rmdir): ${
    f.toFixed(3)
  } ms`,
);
console.log(
  `  create + 3 limits + destroy (empty group):               ${
    e.toFixed(3)
  } ms`,
);
console.log(
  `  ${spawnLabel}:${" ".repeat(Math.max(1, 55 - spawnLabel.length))}${
    s.toFixed(3)
  } ms`,
);
console.log(
  `  create + 3 limits + spawn({cgroup}) /bin/true + destroy:  ${
    tg.toFixed(3)
  } ms`,
);
console.log(
  `  ratio cgroup lifecycle / spawn: ${(f / s).toFixed(2)}x; ` +
    `sandbox in a group / bare sandbox: ${(tg / s).toFixed(2)}x`,
);
