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

/**
 * The prepared roots of process `pid`'s pools: the mount namespaces it holds by fd besides its
 * own (a `RootTemplate` is nothing else), and any host mount a grader root might have made
 * (there must be none).
 */
export function poolRoots(pid: number): string[] {
  const found = Deno.readTextFileSync("/proc/self/mountinfo").split("\n")
    .map((l) => l.split(" ")[4] ?? "")
    .filter((target) => target.startsWith("/run/denobox/grader"))
    .map((target) => `mount ${target}`);
  try {
    const own = Deno.readLinkSync(`/proc/${pid}/ns/mnt`);
    for (const e of Deno.readDirSync(`/proc/${pid}/fd`)) {
      try {
        const l = Deno.readLinkSync(`/proc/${pid}/fd/${e.name}`);
        if (l.startsWith("mnt:") && l !== own) found.push(`ns ${l}`);
      } catch { /* closed meanwhile */ }
    }
  } catch { /* the process is gone: so is every fd it held */ }
  return found;
}
