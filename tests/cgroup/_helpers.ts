/**
 * Helpers of the cgroup tests: the static C payload, the version label for test names, and
 * running a payload inside a group from its first instruction.
 */
import { join } from "node:path";
import { CACHE, REPO } from "../_helpers.ts";
import { type Cgroup, detectCgroups, processes } from "denobox/cgroup";
import { spawn } from "denobox/sandbox";

/** The cgroup version this machine's groups use. */
export const VERSION: 1 | 2 = (() => {
  try {
    return detectCgroups().version;
  } catch {
    return 2;
  }
})();

/** The tag of a test name: `[cgroup v1]` or `[cgroup v2]`. */
export const TAG = `[cgroup v${VERSION}]`;

/** Whether this runs inside the v2 VM lane (tests/v2vm/run-in-v2vm.sh sets V2VM=1). */
export const IN_V2VM: boolean = Deno.env.get("V2VM") === "1";

const SOURCE = join(REPO, "tests", "cgroup", "cghelper.c");

/** Builds the static C payload (once; again when the source is newer) and returns its path. */
export async function ensureCgHelper(): Promise<string> {
  const out = join(CACHE, "cgroup", "cghelper");
  const src = await Deno.stat(SOURCE);
  try {
    const bin = await Deno.stat(out);
    if (bin.mtime! >= src.mtime!) return out;
  } catch { /* build it */ }
  if (IN_V2VM) {
    throw new Error(
      `${out} is missing: build it on the host first (ensureCgHelper)`,
    );
  }
  await Deno.mkdir(join(CACHE, "cgroup"), { recursive: true });
  const tmp = `${out}.${Deno.pid}.tmp`;
  const r = await new Deno.Command("gcc", {
    args: ["-static", "-O1", "-Wall", "-o", tmp, SOURCE],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!r.success) {
    throw new Error(
      `Cannot build ${SOURCE}: ${new TextDecoder().decode(r.stderr)}`,
    );
  }
  await Deno.chmod(tmp, 0o755);
  await Deno.rename(tmp, out);
  return out;
}

/** A payload running in a group. */
export interface GroupChild {
  pid: number;
  status: Promise<{ code: number | null; signal: string | null }>;
  /** All of stdout, once the process has exited. */
  stdout: Promise<string>;
  kill(): void;
}

/**
 * Runs `argv` inside `cg` from its first instruction with `spawn({ cgroup })`: the sandbox's
 * child joins every directory of the group before it execs. It sees the host's files (no
 * mount namespace: payloads write to temp files and devices) and is PID 1 of its own pid
 * namespace (no init), so the group holds exactly the payload's processes.
 */
export async function runInGroup(
  cg: Cgroup,
  argv: readonly string[],
  options: { stdout?: "piped" | "null"; cgroupNamespace?: boolean } = {},
): Promise<GroupChild> {
  const sb = await spawn({
    argv,
    cgroup: cg,
    namespaces: {
      mnt: false,
      pid: false,
      cgroup: options.cgroupNamespace ?? false,
    },
    env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin" },
    stdin: "null",
    stdout: options.stdout === "null" ? "null" : "pipe",
    stderr: "inherit",
  });
  const dec = new TextDecoder();
  const stdout = sb.stdout === null
    ? Promise.resolve("")
    : new Response(sb.stdout).arrayBuffer().then((b) => dec.decode(b));
  const status = sb.status.then(async (s) => {
    await stdout;
    await sb[Symbol.asyncDispose]();
    return { code: s.code, signal: s.signal };
  });
  return {
    pid: sb.pid,
    status,
    stdout,
    kill: () => {
      try {
        sb.kill("SIGKILL");
      } catch { /* already gone */ }
    },
  };
}

/** Waits until `cond()` holds (polling), up to `ms`; throws naming `what` otherwise. */
export async function waitFor(
  cond: () => boolean,
  what: string,
  ms = 10_000,
): Promise<void> {
  const end = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > end) {
      throw new Error(`Timed out waiting for ${what}`);
    }
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Whether any directory of `cg` still exists. */
export function anyDirLeft(paths: readonly string[]): string[] {
  return paths.filter((p) => {
    try {
      Deno.statSync(p);
      return true;
    } catch {
      return false;
    }
  });
}

/** Number of processes in the group. */
export function memberCount(cg: Cgroup): number {
  return processes(cg).length;
}
