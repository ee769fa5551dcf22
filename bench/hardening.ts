/**
 * bench/hardening: what the default hardening (seccomp filter + capability drop + masked and
 * read-only /proc paths) costs per sandbox. Spawns the same `/bin/true` in the busybox test
 * rootfs with spawn's defaults (hardened) and with every protection explicitly switched off,
 * interleaved in one run, and prints medians and the ratio; also the cost of compiling the
 * filter alone.
 *
 *   tools/deno run -A bench/hardening.ts [iterations]
 */
import { spawn, type SpawnOptions } from "denobox/sandbox";
import { defaultHardening } from "../sandbox/hardening.ts";
import { ensureRootfs } from "../tests/_helpers.ts";

/** Median of a list of numbers. */
function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** One measured spawn-to-reap, in ms. */
async function once(options: SpawnOptions): Promise<number> {
  const t0 = performance.now();
  await using box = await spawn(options);
  const st = await box.status;
  if (!st.success) throw new Error(`sandbox failed: ${JSON.stringify(st)}`);
  return performance.now() - t0;
}

/** Medians (ms) of spawning with and without the default hardening, side by side. */
export async function benchHardening(
  options: { iterations?: number; rootfs?: string } = {},
): Promise<
  { plain: number; hardened: number; compile: number; ratio: number }
> {
  const n = options.iterations ?? 200;
  const rootfs = options.rootfs ?? await ensureRootfs();
  const base: SpawnOptions = {
    argv: ["/bin/true"],
    rootfs,
    readOnly: true,
    stdout: "null",
    stderr: "null",
  };
  // spawn's defaults are the hardening: switch each part off explicitly for the baseline
  const unhardened: SpawnOptions = {
    ...base,
    seccomp: false,
    capabilities: "all",
    maskedPaths: [],
    readonlyPaths: [],
  };
  const compileTimes: number[] = [];
  const plain: number[] = [];
  const hardened: number[] = [];
  // warm up both paths
  for (let i = 0; i < 10; i++) {
    await once(unhardened);
    await once(base);
  }
  for (let i = 0; i < n; i++) {
    const c0 = performance.now();
    const h = defaultHardening();
    compileTimes.push(performance.now() - c0);
    // alternate the order so drift hits both equally
    if (i % 2) {
      plain.push(await once(unhardened));
      hardened.push(await once({ ...base, ...h }));
    } else {
      hardened.push(await once(base));
      plain.push(await once(unhardened));
    }
  }
  const p = median(plain), h = median(hardened);
  return { plain: p, hardened: h, compile: median(compileTimes), ratio: h / p };
}

if (import.meta.main) {
  const n = Number(Deno.args[0] ?? 200);
  const r = await benchHardening({ iterations: n });
  console.log(`spawn + reap /bin/true, ${n} runs each, interleaved (median):`);
  console.log(
    `  hardening switched off (explicit opt-outs)   ${r.plain.toFixed(3)} ms`,
  );
  console.log(
    `  spawn defaults (= defaultHardening())        ${
      r.hardened.toFixed(3)
    } ms`,
  );
  console.log(
    `  ratio hardened/plain ${r.ratio.toFixed(2)}x, +${
      (r.hardened - r.plain).toFixed(3)
    } ms per sandbox`,
  );
  console.log(
    `  defaultHardening() itself (compile filter + masks) ${
      (r.compile * 1000).toFixed(1)
    } µs`,
  );
}
