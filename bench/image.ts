/**
 * Layer unpack speed: `applyLayer` against GNU `tar -x` on the same generated ~100 MB layer
 * (5,000 small files in 50 directories plus six 10 MB files, mildly compressible), gzip
 * and uncompressed, side by side in one run. Prints medians and the ratio (target ≤ 1.5×).
 *
 *   tools/deno run -A bench/image.ts [--runs N]
 *
 * The layer is generated in a temp directory and removed afterwards.
 */
import { join } from "node:path";
import { applyLayer } from "../image/apply.ts";
import { fileChunks } from "../image/_stream.ts";

const runs = Number(Deno.args[Deno.args.indexOf("--runs") + 1] ?? 5) || 5;
const work = await Deno.makeTempDir({ prefix: "denobox-bench-image-" });

function rand(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32;
}

async function generate(dir: string): Promise<number> {
  const r = rand(42);
  const words = Array.from({ length: 512 }, () => {
    const w = new Uint8Array(8);
    for (let i = 0; i < 8; i++) w[i] = 97 + Math.floor(r() * 16);
    return w;
  });
  const blob = (n: number) => {
    const out = new Uint8Array(n);
    for (let off = 0; off < n; off += 16) {
      out.set(
        words[Math.floor(r() * words.length)]!.subarray(
          0,
          Math.min(8, n - off),
        ),
        off,
      );
      for (let i = off + 8; i < Math.min(off + 16, n); i++) {
        out[i] = Math.floor(r() * 256);
      }
    }
    return out;
  };
  let total = 0;
  for (let d = 0; d < 50; d++) {
    await Deno.mkdir(join(dir, `d${d}`), { recursive: true });
    for (let f = 0; f < 100; f++) {
      const n = 100 + Math.floor(r() * 20000);
      await Deno.writeFile(join(dir, `d${d}`, `f${f}`), blob(n));
      total += n;
    }
  }
  for (let i = 0; i < 6; i++) {
    await Deno.writeFile(join(dir, `big${i}`), blob(10 << 20));
    total += 10 << 20;
  }
  return total;
}

async function sh(cmd: string, args: string[]): Promise<void> {
  const out = await new Deno.Command(cmd, { args, stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`${cmd} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

// Alternates the two contenders run by run, so machine load hits both alike.
async function timePair(
  fns: [(dir: string) => Promise<void>, (dir: string) => Promise<void>],
): Promise<[number[], number[]]> {
  const times: [number[], number[]] = [[], []];
  for (let i = 0; i < runs; i++) {
    for (const k of [0, 1] as const) {
      const dir = join(work, `out-${i}-${k}`);
      await Deno.mkdir(dir);
      await sh("sync", []);
      const t = performance.now();
      await fns[k](dir);
      times[k].push(performance.now() - t);
      await Deno.remove(dir, { recursive: true });
    }
  }
  return times;
}

try {
  const src = join(work, "src");
  const bytes = await generate(src);
  const tarFile = join(work, "layer.tar");
  await sh("tar", ["-C", src, "-cf", tarFile, "."]);
  await sh("gzip", ["-k", "-6", tarFile]);
  await Deno.remove(src, { recursive: true });
  const gz = `${tarFile}.gz`;
  console.log(
    `layer: ${(bytes / 1e6).toFixed(0)} MB of files, tar ${
      ((await Deno.stat(tarFile)).size / 1e6).toFixed(0)
    } MB, gzip ${
      ((await Deno.stat(gz)).size / 1e6).toFixed(0)
    } MB; ${runs} runs each, alternating`,
  );
  for (
    const [label, file, tarArgs] of [
      ["gzip", gz, ["-xzf"]],
      ["uncompressed", tarFile, ["-xf"]],
    ] as const
  ) {
    const [ours, theirs] = await timePair([
      async (dir) => {
        await applyLayer(dir, fileChunks(file));
      },
      async (dir) => {
        await sh("tar", ["-C", dir, ...tarArgs, file]);
      },
    ]);
    const a = median(ours), b = median(theirs);
    console.log(
      `${label.padEnd(13)} applyLayer ${a.toFixed(0).padStart(5)} ms   tar ${
        b.toFixed(0).padStart(5)
      } ms   ratio ${(a / b).toFixed(2)}x ${
        a / b <= 1.5 ? "(within 1.5x)" : "(OVER 1.5x)"
      }`,
    );
  }
} finally {
  await Deno.remove(work, { recursive: true });
}
