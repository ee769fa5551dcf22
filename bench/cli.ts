/**
 * The CLI's start-up cost: `denobox run --rm /bin/true` on the default rootfs (host view)
 * against Deno's own start-up (`deno run` of an empty script), alternated in one run.
 * Target: the CLI costs at most 1.5 × Deno's start-up.
 *
 *   tools/deno run -A bench/cli.ts [ROUNDS]
 */
import { join } from "node:path";

const repo = new URL("..", import.meta.url).pathname;
const rounds = Number(Deno.args[0] ?? 30);
const denobox = join(repo, "denobox");
const root = await Deno.makeTempDir({ prefix: "denobox-bench-" });
const empty = join(root, "empty.ts");
await Deno.writeTextFile(empty, "");

async function time(cmd: string, args: string[]): Promise<number> {
  const t0 = performance.now();
  const out = await new Deno.Command(cmd, {
    args,
    stdout: "null",
    stderr: "piped",
    stdin: "null",
  }).output();
  const ms = performance.now() - t0;
  if (!out.success) {
    throw new Error(
      `${cmd} ${args.join(" ")} failed (${out.code}): ${
        new TextDecoder().decode(out.stderr)
      }`,
    );
  }
  return ms;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
};

const deno = Deno.execPath();
const peer = ["run", "-A", "--no-check", "--quiet", "--no-lock", empty];
const ours = ["--root", root, "run", "--rm", "/bin/true"];
try {
  // warm both (module cache, code cache)
  for (let i = 0; i < 3; i++) {
    await time(deno, peer);
    await time(denobox, ours);
  }
  const a: number[] = [], b: number[] = [];
  for (let i = 0; i < rounds; i++) {
    a.push(await time(deno, peer));
    b.push(await time(denobox, ours));
  }
  const ma = median(a), mb = median(b);
  console.log(
    `deno run (empty script)          median ${
      ma.toFixed(1)
    } ms  (${rounds} runs)`,
  );
  console.log(
    `denobox run --rm /bin/true       median ${
      mb.toFixed(1)
    } ms  (${rounds} runs)`,
  );
  console.log(
    `ratio denobox / deno             ${
      (mb / ma).toFixed(2)
    }x  (target <= 1.50x)`,
  );
} finally {
  await Deno.remove(root, { recursive: true });
}
