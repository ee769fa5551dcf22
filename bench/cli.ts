/**
 * The CLI's start-up cost: `denobox run --rm /bin/true` on the default rootfs (host view)
 * against Deno's own start-up (`deno run` of an empty script), alternated in one run.
 * Target: the CLI costs at most 1.5 × Deno's start-up.
 *
 * Beside them runs the floor: the least a Deno program on the public API does for the same
 * container, a script importing only `denobox/sandbox/spawn` that runs /bin/true on the
 * default rootfs, bundled as the CLI is, with the CLI's V8 flags and caches (a compiled
 * seccomp filter, the host view's layout). What the CLI costs above the floor is the CLI's;
 * the floor is the engine's and Deno's.
 *
 *   tools/deno run -A bench/cli.ts [ROUNDS]
 */
import { join } from "node:path";
import { defaultHardening } from "denobox/sandbox";

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

/** Writes and bundles the floor script; returns its entry file. */
async function floorScript(): Promise<string> {
  const cache = join(root, "floor-cache");
  await Deno.mkdir(cache);
  const filter = join(cache, "filter.bpf");
  // the filter the CLI caches for a default container
  const h = defaultHardening({ capAdd: [], capDrop: [], seccomp: "default" });
  await Deno.writeFile(filter, h.seccomp as Uint8Array);
  const src = join(root, "floor.ts");
  await Deno.writeTextFile(
    src,
    `import { spawn } from "denobox/sandbox/spawn";
const seccomp = Deno.readFileSync(${JSON.stringify(filter)});
await using box = await spawn({ argv: ["/bin/true"], seccomp, cacheDir: ${
      JSON.stringify(cache)
    } });
const status = await box.status;
if (status.code !== 0) Deno.exit(1);
`,
  );
  const out = join(root, "floor");
  const b = await new Deno.Command(Deno.execPath(), {
    args: [
      "bundle",
      "--quiet",
      "--platform",
      "deno",
      "--code-splitting",
      "--no-lock",
      `--config=${join(repo, "deno.json")}`,
      "--outdir",
      out,
      src,
    ],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!b.success) {
    throw new Error(
      `Cannot bundle the floor script: ${new TextDecoder().decode(b.stderr)}`,
    );
  }
  // as the launcher does: a literal import() would load its chunk at start-up
  for await (const e of Deno.readDir(out)) {
    const f = join(out, e.name);
    const js = await Deno.readTextFile(f);
    await Deno.writeTextFile(
      f,
      js.replace(/import\("(\.\/[A-Za-z0-9_-]+\.js)"\)/g, 'import("$1" + "")'),
    );
  }
  return join(out, "floor.js");
}

const deno = Deno.execPath();
const peer = ["run", "-A", "--no-check", "--quiet", "--no-lock", empty];
const ours = ["--root", root, "run", "--rm", "/bin/true"];
const floor = [
  "run",
  "-A",
  "--no-check",
  "--quiet",
  "--no-lock",
  // the flags the launcher gives a `run`
  "--v8-flags=--no-lazy,--min-semi-space-size=4",
  "--no-config",
  await floorScript(),
];
try {
  // warm all (module cache, code cache, the CLI's and the floor's caches)
  for (let i = 0; i < 3; i++) {
    await time(deno, peer);
    await time(denobox, ours);
    await time(deno, floor);
  }
  const a: number[] = [], b: number[] = [], c: number[] = [];
  for (let i = 0; i < rounds; i++) {
    a.push(await time(deno, peer));
    b.push(await time(denobox, ours));
    c.push(await time(deno, floor));
  }
  const ma = median(a), mb = median(b), mc = median(c);
  const line = (what: string, ms: number) =>
    console.log(
      `${what.padEnd(33)}median ${ms.toFixed(1)} ms  (${rounds} runs)`,
    );
  line("deno run (empty script)", ma);
  line("denobox run --rm /bin/true", mb);
  line("floor: spawn() of /bin/true", mc);
  console.log(
    `ratio denobox / deno             ${
      (mb / ma).toFixed(2)
    }x  (target <= 1.50x)`,
  );
  console.log(`ratio floor / deno               ${(mc / ma).toFixed(2)}x`);
  console.log(`ratio denobox / floor            ${(mb / mc).toFixed(2)}x`);
} finally {
  await Deno.remove(root, { recursive: true });
}
