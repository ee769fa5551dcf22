/** Builds the C fixtures of the grader tests once (gcc), into .cache/grader-fixtures. */
import { join } from "node:path";
import { CACHE, REPO } from "../_helpers.ts";

const SRC = join(REPO, "tests", "grader", "fixtures");
const OUT = join(CACHE, "grader-fixtures");

/** The path of fixture `name` (fixtures/<name>.c), compiled if missing or older than its source. */
export async function fixture(name: string): Promise<string> {
  const src = join(SRC, `${name}.c`);
  const bin = join(OUT, name);
  const srcTime = (await Deno.stat(src)).mtime!.getTime();
  const binTime = await Deno.stat(bin).then((s) => s.mtime!.getTime()).catch(
    () => 0,
  );
  if (binTime >= srcTime) return bin;
  await Deno.mkdir(OUT, { recursive: true });
  const tmp = `${bin}.${Deno.pid}`;
  const out = await new Deno.Command("gcc", {
    args: ["-O1", "-pthread", "-o", tmp, src],
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(
      `gcc ${name}.c failed: ${new TextDecoder().decode(out.stderr)}`,
    );
  }
  await Deno.rename(tmp, bin);
  return bin;
}

/** Cgroup directories of grader pools of process `pid`, in any hierarchy (v1 or v2). */
export function poolGroups(pid: number): string[] {
  const found: string[] = [];
  const walk = (dir: string, depth: number) => {
    let entries: Deno.DirEntry[];
    try {
      entries = [...Deno.readDirSync(dir)];
    } catch {
      return;
    }
    for (const e of entries) {
      if (!e.isDirectory) continue;
      if (e.name.startsWith(`grader-${pid}-`)) found.push(`${dir}/${e.name}`);
      else if (depth > 0) walk(`${dir}/${e.name}`, depth - 1);
    }
  };
  walk("/sys/fs/cgroup", 4);
  return found;
}

/** Host pids whose command line is exactly `argv`. */
export function pidsRunning(argv: readonly string[]): number[] {
  const want = argv.join("\0") + "\0";
  const pids: number[] = [];
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      if (Deno.readTextFileSync(`/proc/${e.name}/cmdline`) === want) {
        pids.push(Number(e.name));
      }
    } catch { /* gone */ }
  }
  return pids;
}

/** Prepared roots of grader pools of process `pid`: their directories and mounts on the host. */
export function poolRoots(pid: number): string[] {
  const prefix = `/run/denobox/grader/grader-${pid}-`;
  const found = Deno.readTextFileSync("/proc/self/mountinfo").split("\n")
    .map((l) => l.split(" ")[4] ?? "")
    .filter((target) => target.startsWith(prefix))
    .map((target) => `mount ${target}`);
  try {
    for (const e of Deno.readDirSync("/run/denobox/grader")) {
      if (e.name.startsWith(`grader-${pid}-`)) found.push(`dir ${e.name}`);
    }
  } catch { /* never made */ }
  return found;
}
