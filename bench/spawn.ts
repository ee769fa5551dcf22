/**
 * Start-to-exit latency and sequential throughput of `/bin/true` in the busybox rootfs
 * (read-only) with user, pid, mount, uts, ipc, net and cgroup namespaces, a fresh /proc and a
 * minimal /dev, side by side in one run with:
 * - bubblewrap `--unshare-all --ro-bind ROOTFS / --proc /proc --dev /dev` (the same namespaces;
 *   as root it keeps every capability and has no seccomp filter and no masked paths);
 * - util-linux `unshare --fork --pid --mount --uts --ipc --net --mount-proc` (less: no user
 *   namespace, no rootfs, no /dev).
 *
 * Two denobox rows:
 * - "denobox": the same isolation as bwrap, so spawn's default hardening is switched off
 *   explicitly (no seccomp filter, every capability kept, no masked or read-only paths). The
 *   ratios the issue targets (≤ 0.7 × bwrap, ≤ 1.3 × unshare) are taken on this row.
 * - "denobox+h": spawn's defaults (seccomp filter, capability drop, masked and read-only /proc
 *   paths), with what that hardening adds to the row above.
 *
 * All four run interleaved (one of each per round, order rotating) so drift hits them alike;
 * the run repeats that `passes` times and keeps each side's best median.
 *
 *   tools/deno run -A bench/spawn.ts [runs per pass = 300] [passes = 3]
 * @module
 */
import { spawn, type SpawnOptions } from "../sandbox/mod.ts";
import { ensureRootfs, hasCommand } from "../tests/_helpers.ts";

const RUNS = Number(Deno.args[0] ?? 300);
const PASSES = Number(Deno.args[1] ?? 3);
const rootfs = await ensureRootfs();

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
};

async function command(cmd: string, args: string[]): Promise<void> {
  const st = await new Deno.Command(cmd, {
    args,
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).output();
  if (!st.success) throw new Error(`${cmd} failed: ${st.code}`);
}

async function denobox(options: SpawnOptions): Promise<void> {
  const box = await spawn(options);
  const st = await box.status;
  if (!st.success) throw new Error(`denobox: /bin/true failed: ${st.code}`);
}

const isolation: SpawnOptions = {
  argv: ["/bin/true"],
  rootfs,
  readOnly: true,
  namespaces: {
    user: true,
    pid: true,
    mnt: true,
    uts: true,
    ipc: true,
    net: true,
    cgroup: true,
    time: false,
  },
};
const sides: { name: string; once: () => Promise<void> }[] = [
  {
    name: "denobox",
    once: () =>
      denobox({
        ...isolation,
        seccomp: false,
        capabilities: "all",
        maskedPaths: [],
        readonlyPaths: [],
      }),
  },
  { name: "denobox+h", once: () => denobox(isolation) },
];
if (hasCommand("bwrap")) {
  sides.push({
    name: "bwrap",
    once: () =>
      command("bwrap", [
        "--unshare-all",
        "--ro-bind",
        rootfs,
        "/",
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "/bin/true",
      ]),
  });
}
if (hasCommand("unshare")) {
  sides.push({
    name: "unshare",
    once: () =>
      command("unshare", [
        "--fork",
        "--pid",
        "--mount",
        "--uts",
        "--ipc",
        "--net",
        "--mount-proc",
        "/bin/true",
      ]),
  });
}

const best = new Map<string, { median: number; perSec: number }>();
for (let pass = 0; pass < PASSES; pass++) {
  for (let i = 0; i < 10; i++) for (const s of sides) await s.once();
  const times = new Map(sides.map((s) => [s.name, [] as number[]]));
  for (let i = 0; i < RUNS; i++) {
    for (let k = 0; k < sides.length; k++) {
      const s = sides[(i + k) % sides.length]!;
      const t = performance.now();
      await s.once();
      times.get(s.name)!.push(performance.now() - t);
    }
  }
  for (const [name, xs] of times) {
    const m = median(xs);
    const sum = xs.reduce((a, b) => a + b, 0);
    const prev = best.get(name);
    if (!prev || m < prev.median) {
      best.set(name, { median: m, perSec: xs.length / (sum / 1000) });
    }
  }
}

console.log(
  `spawn bench: /bin/true, ${RUNS} interleaved runs per side, best median of ${PASSES} passes`,
);
console.log(
  "  namespaces user,pid,mnt,uts,ipc,net,cgroup; read-only busybox rootfs; /proc; /dev",
);
const ref = best.get("denobox")!;
for (const s of sides) {
  const r = best.get(s.name)!;
  let note = "";
  if (s.name === "denobox") note = "  (bwrap's isolation: hardening off)";
  else if (s.name === "denobox+h") {
    note = `  (default hardening: +${(r.median - ref.median).toFixed(3)} ms, ${
      (r.median / ref.median).toFixed(2)
    }x)`;
  } else note = `  denobox/${s.name} = ${(ref.median / r.median).toFixed(2)}x`;
  console.log(
    `${s.name.padEnd(10)} median ${r.median.toFixed(3)} ms  ${
      r.perSec.toFixed(0).padStart(4)
    }/s${note}`,
  );
}
const bw = best.get("bwrap");
if (bw) {
  const h = best.get("denobox+h")!;
  console.log(
    `hardened default vs bwrap: denobox+h/bwrap = ${
      (h.median / bw.median).toFixed(2)
    }x`,
  );
}
