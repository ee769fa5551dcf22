/**
 * Start-to-exit latency and sequential throughput of `/bin/true` in a sandbox with user, pid,
 * mount, uts, ipc and net namespaces, pivot_root into the busybox rootfs with /proc and /dev,
 * side by side with bubblewrap (same isolation) and util-linux `unshare` (less: no rootfs, no
 * /dev, no user namespace). denobox runs with its defaults (seccomp filter, capability drop,
 * masked and read-only /proc paths); the last line prints what that hardening costs
 * (bench/hardening.ts). Run: `tools/deno run -A bench/spawn.ts [runs]`.
 * @module
 */
import { spawn } from "../sandbox/mod.ts";
import { ensureRootfs, hasCommand } from "../tests/_helpers.ts";
import { benchHardening } from "./hardening.ts";

const RUNS = Number(Deno.args[0] ?? 300);
const rootfs = await ensureRootfs();

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
};

async function measure(
  name: string,
  once: () => Promise<void>,
): Promise<{ name: string; median: number; perSec: number }> {
  for (let i = 0; i < 20; i++) await once();
  const times: number[] = [];
  const t0 = performance.now();
  for (let i = 0; i < RUNS; i++) {
    const t = performance.now();
    await once();
    times.push(performance.now() - t);
  }
  const total = performance.now() - t0;
  return { name, median: median(times), perSec: RUNS / (total / 1000) };
}

async function command(cmd: string, args: string[]): Promise<void> {
  const st = await new Deno.Command(cmd, {
    args,
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).output();
  if (!st.success) throw new Error(`${cmd} failed: ${st.code}`);
}

const results = [];
results.push(
  await measure("denobox", async () => {
    const box = await spawn({
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
        cgroup: false,
        time: false,
      },
    });
    if (!(await box.status).success) {
      throw new Error("denobox: /bin/true failed");
    }
  }),
);
if (hasCommand("bwrap")) {
  results.push(
    await measure(
      "bwrap",
      () =>
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
    ),
  );
}
if (hasCommand("unshare")) {
  results.push(
    await measure(
      "unshare",
      () =>
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
    ),
  );
}
const base = results[0]!;
console.log(
  `spawn bench: ${RUNS} sequential runs of /bin/true each (user,pid,mnt,uts,ipc,net; rootfs; /proc; /dev)`,
);
for (const r of results) {
  const ratio = r === base
    ? ""
    : `  denobox/${r.name} = ${(base.median / r.median).toFixed(2)}x`;
  console.log(
    `${r.name.padEnd(8)} median ${r.median.toFixed(3)} ms   ${
      r.perSec.toFixed(0)
    }/s${ratio}`,
  );
}
// denobox above runs with spawn's defaults, hardening included; what that part costs:
const h = await benchHardening({ iterations: Math.min(RUNS, 200), rootfs });
console.log(
  `default hardening (seccomp + caps + masked/read-only paths): +${
    (h.hardened - h.plain).toFixed(3)
  } ms per sandbox (off ${h.plain.toFixed(3)} ms, on ${
    h.hardened.toFixed(3)
  } ms, ${h.ratio.toFixed(2)}x; compiling the filter ${
    (h.compile * 1000).toFixed(1)
  } µs, cached)`,
);
