/**
 * Shared test helpers: std-named asserts over node:assert, gates, the busybox rootfs, running
 * a script as an unprivileged user, and leak probes (fds, mounts).
 */
import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { fileURLToPath as fromFileUrl } from "node:url";

export { assert };

/** assertEquals(actual, expected, msg?) */
export function assertEquals<T>(
  actual: unknown,
  expected: T,
  msg?: string,
): void {
  assert.deepStrictEqual(actual, expected, msg);
}

/** assertNotEquals(actual, expected, msg?) */
export function assertNotEquals(
  actual: unknown,
  expected: unknown,
  msg?: string,
): void {
  assert.notDeepStrictEqual(actual, expected, msg);
}

/** assertMatch(text, re) */
export function assertMatch(actual: string, re: RegExp, msg?: string): void {
  assert.match(actual, re, msg);
}

// deno-lint-ignore no-explicit-any
type ErrorClass = new (...args: any[]) => Error;

/** assertThrows(fn, ErrorClass?, msgIncludes?) → the error */
export function assertThrows(
  fn: () => unknown,
  cls?: ErrorClass,
  includes?: string,
): Error {
  try {
    fn();
  } catch (e) {
    checkError(e, cls, includes);
    return e as Error;
  }
  throw new assert.AssertionError({ message: "Expected function to throw" });
}

/** assertRejects(fn, ErrorClass?, msgIncludes?) → the error */
export async function assertRejects(
  fn: () => Promise<unknown>,
  cls?: ErrorClass,
  includes?: string,
): Promise<Error> {
  try {
    await fn();
  } catch (e) {
    checkError(e, cls, includes);
    return e as Error;
  }
  throw new assert.AssertionError({ message: "Expected promise to reject" });
}

function checkError(e: unknown, cls?: ErrorClass, includes?: string): void {
  if (cls && !(e instanceof cls)) {
    throw new assert.AssertionError({
      message: `Expected ${cls.name}, got ${(e as Error)?.name}: ${
        (e as Error)?.message
      }`,
    });
  }
  if (
    includes !== undefined && !String((e as Error)?.message).includes(includes)
  ) {
    throw new assert.AssertionError({
      message: `Expected error message to include ${
        JSON.stringify(includes)
      }, got ${JSON.stringify((e as Error)?.message)}`,
    });
  }
}

/** Whether this process runs as root. */
export const IS_ROOT: boolean = Deno.uid() === 0;

/** The repository's root directory. */
export const REPO: string = dirname(dirname(fromFileUrl(import.meta.url)));

/**
 * `deno` arguments that run `script` with the repository's config, all permissions, no type
 * check and no progress output; the script's own arguments follow.
 */
export function denoRunArgs(script: string): string[] {
  return [
    "run",
    "-A",
    "--no-check",
    "--quiet",
    `--config=${join(REPO, "deno.json")}`,
    script,
  ];
}

/** Scratch space for test artefacts that outlive one test (gitignored). */
export const CACHE: string = join(REPO, ".cache");

/** Debian packages the tests use. */
export const TEST_PACKAGES: readonly string[] = [
  "busybox-static",
  "bubblewrap",
  "iproute2",
  "nftables",
  "binutils",
  "binutils-aarch64-linux-gnu",
  "gcc",
  "libc6-dev",
  "qemu-system-x86",
  "docker-registry",
  "skopeo",
  "umoci",
  "python3-seccomp",
  "tmux",
  "util-linux",
  "uidmap",
];

/** Whether a command is on PATH. */
export function hasCommand(name: string): boolean {
  for (const dir of (Deno.env.get("PATH") ?? "/usr/bin:/bin").split(":")) {
    try {
      Deno.statSync(join(dir, name));
      return true;
    } catch { /* next */ }
  }
  return false;
}

/**
 * Installs the Debian packages that are missing (apt-get, as root); returns those still
 * missing afterwards.
 */
export async function ensurePackages(
  pkgs: readonly string[],
): Promise<string[]> {
  const missing: string[] = [];
  for (const p of pkgs) {
    const st = await runCommand("dpkg-query", ["-W", "-f=${Status}", p])
      .catch(() => null);
    if (!st || !st.stdout.includes("install ok installed")) {
      missing.push(p);
    }
  }
  if (missing.length === 0) return [];
  if (!IS_ROOT || !hasCommand("apt-get")) return missing;
  console.error(`tests/setup: apt-get install ${missing.join(" ")}`);
  const env = { DEBIAN_FRONTEND: "noninteractive" };
  const lock = ["-o", "DPkg::Lock::Timeout=300"];
  await new Deno.Command("apt-get", { args: [...lock, "update", "-qq"], env })
    .output();
  const out = await new Deno.Command("apt-get", {
    args: [
      ...lock,
      "install",
      "-y",
      "-qq",
      "--no-install-recommends",
      ...missing,
    ],
    env,
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (!out.success) return missing;
  return [];
}

/**
 * The busybox test rootfs (bin/busybox with applet links; empty proc, sys, dev, tmp, etc with
 * root and nobody), built once under .cache/ and shared by every test. World-readable so
 * rootless tests can use it.
 */
export async function ensureRootfs(): Promise<string> {
  const dir = join(CACHE, "rootfs", "busybox");
  const stamp = join(dir, ".complete");
  try {
    await Deno.stat(stamp);
    return dir;
  } catch { /* build it */ }
  const busybox = "/bin/busybox";
  await Deno.stat(busybox).catch(() => {
    throw new Error(
      "Cannot build the test rootfs: /bin/busybox is missing (apt-get install busybox-static)",
    );
  });
  const tmp = `${dir}.tmp-${Deno.pid}`;
  await Deno.remove(tmp, { recursive: true }).catch(() => {});
  for (const d of ["bin", "etc", "proc", "sys", "dev", "tmp", "root", "mnt"]) {
    await Deno.mkdir(join(tmp, d), { recursive: true });
  }
  await Deno.chmod(join(tmp, "tmp"), 0o1777);
  await Deno.copyFile(busybox, join(tmp, "bin", "busybox"));
  await Deno.chmod(join(tmp, "bin", "busybox"), 0o755);
  const list = (await runCommand(busybox, ["--list"])).stdout;
  for (const applet of list.split("\n").filter(Boolean)) {
    if (applet === "busybox") continue;
    await Deno.symlink("busybox", join(tmp, "bin", applet));
  }
  await Deno.writeTextFile(
    join(tmp, "etc", "passwd"),
    "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
  );
  await Deno.writeTextFile(
    join(tmp, "etc", "group"),
    "root:x:0:\nnogroup:x:65534:\n",
  );
  await Deno.writeTextFile(join(tmp, ".complete"), "");
  for (let d = CACHE; d !== dirname(dir); d = join(d, "rootfs")) {
    await Deno.chmod(d, 0o755).catch(() => {});
  }
  await Deno.mkdir(dirname(dir), { recursive: true, mode: 0o755 });
  try {
    await Deno.rename(tmp, dir);
  } catch (e) {
    // another test process won the race
    await Deno.remove(tmp, { recursive: true });
    await Deno.stat(stamp).catch(() => {
      throw e;
    });
  }
  await Deno.chmod(CACHE, 0o755);
  await Deno.chmod(dirname(dir), 0o755);
  return dir;
}

/** The uid/gid of the unprivileged user that rootless tests run as. */
export const NOBODY = { uid: 65534, gid: 65534 } as const;

/** Result of a command (or of a script run as another user): exit code and decoded output. */
export interface ScriptResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Options of `runCommand()`. */
export interface RunCommandOptions {
  /** Written to the command's stdin, which is then closed (default: stdin is /dev/null). */
  stdin?: string;
  /** Environment variables, added to this process's unless `clearEnv`. */
  env?: Record<string, string>;
  /** Start from an empty environment. */
  clearEnv?: boolean;
  /** Working directory. */
  cwd?: string;
}

/** Runs `cmd` with `args` to its end; returns its exit code and its stdout and stderr as text. */
export async function runCommand(
  cmd: string,
  args: string[],
  options: RunCommandOptions = {},
): Promise<ScriptResult> {
  const child = new Deno.Command(cmd, {
    args,
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    ...(options.env ? { env: options.env } : {}),
    ...(options.clearEnv ? { clearEnv: true } : {}),
    ...(options.cwd ? { cwd: options.cwd } : {}),
  }).spawn();
  if (options.stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(options.stdin));
    await w.close();
  }
  const out = await child.output();
  const dec = new TextDecoder();
  return {
    code: out.code,
    stdout: dec.decode(out.stdout),
    stderr: dec.decode(out.stderr),
  };
}

/** Whether anything is at `path`, a dangling symlink included (lstat; any error means no). */
export function exists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Runs a TypeScript file (path, or inline code written to a temp file) with `deno run -A` as
 * the unprivileged user `nobody` (setpriv, no supplementary groups). Root only.
 */
export async function runAsNobody(
  script: string | URL,
  options: { args?: string[]; code?: boolean; env?: Record<string, string> } =
    {},
): Promise<ScriptResult> {
  if (!IS_ROOT) {
    throw new Error("runAsNobody needs root (it switches user with setpriv)");
  }
  let file = script instanceof URL ? fromFileUrl(script) : script;
  let tmpDir: string | undefined;
  if (options.code) {
    tmpDir = await Deno.makeTempDir({
      dir: join(REPO, "tests"),
      prefix: ".nobody-",
    });
    await Deno.chmod(tmpDir, 0o755);
    file = join(tmpDir, "script.ts");
    await Deno.writeTextFile(file, script as string);
    await Deno.chmod(file, 0o644);
  }
  const denoDir = "/tmp/denobox-nobody-deno";
  await Deno.mkdir(denoDir, { recursive: true });
  await Deno.chown(denoDir, NOBODY.uid, NOBODY.gid);
  try {
    return await runCommand(
      "setpriv",
      [
        `--reuid=${NOBODY.uid}`,
        `--regid=${NOBODY.gid}`,
        "--clear-groups",
        "--inh-caps=-all",
        Deno.execPath(),
        ...denoRunArgs(file),
        ...(options.args ?? []),
      ],
      {
        cwd: "/",
        env: {
          HOME: "/tmp",
          DENO_DIR: denoDir,
          NO_COLOR: "1",
          ...options.env,
        },
        clearEnv: true,
      },
    );
  } finally {
    if (tmpDir) await Deno.remove(tmpDir, { recursive: true });
  }
}

/** The fd numbers open in this process, but for program memories and the listing's own fd. */
export function openFds(): number[] {
  return [...Deno.readDirSync("/proc/self/fd")].filter((e) => {
    try {
      return !isProgramMemory(Deno.readLinkSync(`/proc/self/fd/${e.name}`));
    } catch {
      // closed meanwhile: the listing's own directory fd (its number moves with the count
      // of program memories kept); a leaked fd stays open and is counted
      return false;
    }
  }).map((e) => Number(e.name)).sort((a, b) => a - b);
}

/**
 * Whether an fd target is a syscall program's memory. spawn() keeps a bounded number of them
 * for reuse (a process-wide cache, like its epoll set), so fd checks leave them out;
 * `programMemories()` counts them (tests/sandbox/program_memory_test.ts bounds it).
 */
export function isProgramMemory(target: string): boolean {
  return target.startsWith("/memfd:denobox-program");
}

/** How many syscall program memories (memfds) this process holds. */
export function programMemories(): number {
  return [...fdTargets().values()].filter(isProgramMemory).length;
}

/**
 * What each open fd of this process points to (`pipe:[123]`, a path), by number. Deno's own
 * threads open and close fds at any time, so leak checks should compare these targets for the
 * objects a test made, not raw fd numbers.
 */
export function fdTargets(): Map<number, string> {
  const out = new Map<number, string>();
  for (const e of Deno.readDirSync("/proc/self/fd")) {
    try {
      out.set(Number(e.name), Deno.readLinkSync(`/proc/self/fd/${e.name}`));
    } catch { /* closed meanwhile */ }
  }
  return out;
}

/** Mount points (from /proc/self/mountinfo) at or below `prefix`. */
export function mountsUnder(prefix: string): string[] {
  return Deno.readTextFileSync("/proc/self/mountinfo").split("\n").filter(
    Boolean,
  )
    .map((l) => l.split(" ")[4]!.replace(/\\040/g, " "))
    .filter((m) =>
      m === prefix || m.startsWith(prefix.endsWith("/") ? prefix : prefix + "/")
    );
}

/** Child pids of this process (from /proc/self/task/<tid>/children). */
export function childPids(): number[] {
  const out: number[] = [];
  for (const t of Deno.readDirSync("/proc/self/task")) {
    const txt = Deno.readTextFileSync(`/proc/self/task/${t.name}/children`)
      .trim();
    if (txt) out.push(...txt.split(/\s+/).map(Number));
  }
  return out;
}
