/**
 * Checks `GradeOptions` and fills in the defaults, before anything touches the kernel: a bad
 * option is a `TypeError` or `RangeError` naming it.
 * @module
 */
import { getrlimit } from "denobox/libc";
import type { DirBinding, GradeOptions, OutputTarget, Size } from "./types.ts";

/** The defaults `grade()` applies. */
export const DEFAULTS = {
  memoryLimit: 256 * 1024 * 1024,
  processLimit: 64,
  outputLimit: 64 * 1024 * 1024,
  openFilesLimit: 256,
  workDir: "/box",
  workDirSize: 64 * 1024 * 1024,
  path: "/usr/local/bin:/usr/bin:/bin",
  wallWithoutCpuLimit: 10,
} as const;

/** A file to copy in, checked. */
export interface PlannedFile {
  path: string;
  data: Uint8Array | null;
  source: string | null;
  mode: number;
}

/** Options after checking, every default filled in. */
export interface GradePlan {
  argv: string[];
  env: Record<string, string>;
  cwd: string;
  rootfs: string | null;
  timeLimit: number | null;
  wallTimeLimit: number;
  extraTime: number;
  memoryLimit: number;
  processLimit: number;
  outputLimit: number;
  fileSizeLimit: number;
  openFilesLimit: number;
  stackLimit: number;
  workDir: string;
  workDirSize: number;
  files: PlannedFile[];
  copyOut: string[];
  stdin: { data: Uint8Array } | { path: string };
  stdout: OutputTarget;
  stderr: OutputTarget;
  dirs: DirBinding[];
  seccomp: Uint8Array | false | null;
  signal: AbortSignal | null;
}

const UNITS: Readonly<Record<string, number>> = {
  "": 1,
  b: 1,
  k: 2 ** 10,
  m: 2 ** 20,
  g: 2 ** 30,
  t: 2 ** 40,
};

/**
 * A byte count from a number or a string with an optional binary suffix (`k`, `m`, `g`, `t`,
 * optionally followed by `b`/`ib`): `"64m"` is 67108864. Anything else is a `RangeError`.
 */
export function parseSize(value: Size, what = "size"): number {
  let n: number;
  if (typeof value === "number") {
    n = value;
  } else if (typeof value === "string") {
    const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$/i.exec(value);
    if (!m) {
      throw new RangeError(
        `Invalid ${what}: expected bytes or a number with k/m/g/t: ${
          JSON.stringify(value)
        }`,
      );
    }
    n = Math.round(Number(m[1]) * UNITS[m[2]!.toLowerCase()]!);
  } else {
    throw new TypeError(`Invalid ${what}: expected a number or a string`);
  }
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new RangeError(`Invalid ${what}: ${value}`);
  }
  return n;
}

function seconds(v: unknown, what: string, allowZero = false): number {
  if (typeof v !== "number" || !Number.isFinite(v)) {
    throw new RangeError(
      `Invalid ${what}: expected a finite number of seconds, got ${v}`,
    );
  }
  if (allowZero ? v < 0 : v <= 0) {
    throw new RangeError(
      `Invalid ${what}: must be ${
        allowZero ? "0 or more" : "positive"
      }, got ${v}`,
    );
  }
  return v;
}

function integer(v: unknown, what: string, min: number, max: number): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
    throw new RangeError(
      `Invalid ${what}: expected an integer from ${min} to ${max}, got ${v}`,
    );
  }
  return v;
}

function noNul(s: unknown, what: string): string {
  if (typeof s !== "string") {
    throw new TypeError(`Invalid ${what}: expected a string`);
  }
  if (s.includes("\0")) {
    throw new TypeError(`Invalid ${what}: contains a NUL byte`);
  }
  return s;
}

/** An absolute, normalized box path: no `.`/`..` segments, no doubled or trailing slash. */
function boxPath(p: unknown, what: string): string {
  const s = noNul(p, what);
  if (!s.startsWith("/")) {
    throw new RangeError(`Invalid ${what}: must be absolute: ${s}`);
  }
  if (s === "/") return s;
  const parts = s.slice(1).split("/");
  if (parts.some((x) => x === "" || x === "." || x === "..")) {
    throw new RangeError(
      `Invalid ${what}: must be normalized (no "", "." or ".." segments): ${s}`,
    );
  }
  return s;
}

/** A relative path inside the work directory: no `..`, no leading `/`. */
function workPath(p: unknown, what: string): string {
  const s = noNul(p, what);
  const parts = s.split("/");
  if (s === "" || parts.some((x) => x === "" || x === "." || x === "..")) {
    throw new RangeError(
      `Invalid ${what}: must be a relative path inside the work directory without "." or "..": ${
        JSON.stringify(s)
      }`,
    );
  }
  return s;
}

function outputTarget(v: unknown, what: string): OutputTarget {
  if (v === undefined) return "capture";
  if (v === "capture" || v === "discard") return v;
  if (typeof v === "object" && v !== null && "path" in v) {
    return { path: noNul((v as { path: unknown }).path, `${what} path`) };
  }
  throw new TypeError(
    `Invalid ${what}: expected "capture", "discard" or { path }`,
  );
}

const encoder = new TextEncoder();

/**
 * Checks `options` and returns the plan with every default filled in. Throws `TypeError` for a
 * value of the wrong kind and `RangeError` for one out of range, before any syscall that
 * changes anything (it reads this process's rlimits).
 */
export function planGrade(options: GradeOptions): GradePlan {
  if (typeof options !== "object" || options === null) {
    throw new TypeError("Invalid grade options: expected an object");
  }
  const { argv } = options;
  if (!Array.isArray(argv) || argv.length === 0) {
    throw new TypeError("Invalid argv: expected a non-empty array of strings");
  }
  argv.forEach((a, i) => noNul(a, `argv[${i}]`));
  if (argv[0] === "") throw new RangeError("Invalid argv[0]: empty command");

  const workDir = boxPath(options.workDir ?? DEFAULTS.workDir, "workDir");
  if (workDir === "/") {
    throw new RangeError("Invalid workDir: cannot be the root directory");
  }

  const env: Record<string, string> = {};
  if (options.env !== undefined) {
    if (typeof options.env !== "object" || options.env === null) {
      throw new TypeError("Invalid env: expected an object of strings");
    }
    for (const [k, v] of Object.entries(options.env)) {
      if (k === "" || k.includes("=")) {
        throw new RangeError(`Invalid env name: ${JSON.stringify(k)}`);
      }
      env[noNul(k, "env name")] = noNul(v, `env ${k}`);
    }
  } else {
    Object.assign(env, { PATH: DEFAULTS.path, HOME: workDir, LANG: "C.UTF-8" });
  }

  const timeLimit = options.timeLimit === undefined
    ? null
    : seconds(options.timeLimit, "timeLimit");
  const wallTimeLimit = options.wallTimeLimit === undefined
    ? (timeLimit === null ? DEFAULTS.wallWithoutCpuLimit : 2 * timeLimit + 1)
    : seconds(options.wallTimeLimit, "wallTimeLimit");
  const extraTime = options.extraTime === undefined
    ? 0
    : seconds(options.extraTime, "extraTime", true);

  const memoryLimit = options.memoryLimit === undefined
    ? DEFAULTS.memoryLimit
    : parseSize(options.memoryLimit, "memoryLimit");
  if (memoryLimit < 2 ** 20) {
    throw new RangeError(
      `Invalid memoryLimit: must be at least 1 MiB, got ${memoryLimit} bytes`,
    );
  }
  const processLimit = options.processLimit === undefined
    ? DEFAULTS.processLimit
    : integer(options.processLimit, "processLimit", 1, 4194304);
  const outputLimit = options.outputLimit === undefined
    ? DEFAULTS.outputLimit
    : parseSize(options.outputLimit, "outputLimit");
  const workDirSize = options.workDirSize === undefined
    ? DEFAULTS.workDirSize
    : parseSize(options.workDirSize, "workDirSize");
  if (workDirSize < 4096) {
    throw new RangeError(`Invalid workDirSize: must be at least 4096 bytes`);
  }
  const fileSizeLimit = options.fileSizeLimit === undefined
    ? workDirSize
    : parseSize(options.fileSizeLimit, "fileSizeLimit");

  const nofileHard = getrlimit("nofile").hard;
  const openFilesLimit = options.openFilesLimit === undefined
    ? Math.min(DEFAULTS.openFilesLimit, nofileHard)
    : integer(options.openFilesLimit, "openFilesLimit", 1, 1 << 30);
  if (openFilesLimit > nofileHard) {
    throw new RangeError(
      `Invalid openFilesLimit: ${openFilesLimit} is above this process's hard limit ${nofileHard}`,
    );
  }
  const stackHard = getrlimit("stack").hard;
  let stackLimit: number;
  if (options.stackLimit === undefined) {
    stackLimit = Math.min(memoryLimit, stackHard);
  } else {
    stackLimit = parseSize(options.stackLimit, "stackLimit");
    if (stackLimit > stackHard) {
      throw new RangeError(
        `Invalid stackLimit: ${stackLimit} is above this process's hard limit ${stackHard}`,
      );
    }
  }

  const cwd = options.cwd === undefined ? workDir : boxPath(options.cwd, "cwd");
  const rootfs = options.rootfs === undefined
    ? null
    : noNul(options.rootfs, "rootfs");
  if (rootfs !== null && !rootfs.startsWith("/")) {
    throw new RangeError(
      `Invalid rootfs: must be an absolute host path: ${rootfs}`,
    );
  }

  const files: PlannedFile[] = [];
  const seen = new Set<string>();
  for (const [i, f] of (options.files ?? []).entries()) {
    if (typeof f !== "object" || f === null) {
      throw new TypeError(`Invalid files[${i}]: expected an object`);
    }
    const path = workPath(f.path, `files[${i}].path`);
    if (seen.has(path)) {
      throw new RangeError(`Invalid files[${i}].path: given twice: ${path}`);
    }
    seen.add(path);
    if ((f.data === undefined) === (f.source === undefined)) {
      throw new TypeError(
        `Invalid files[${i}]: give exactly one of data and source`,
      );
    }
    let data: Uint8Array | null = null;
    if (typeof f.data === "string") data = encoder.encode(f.data);
    else if (f.data instanceof Uint8Array) data = f.data;
    else if (f.data !== undefined) {
      throw new TypeError(
        `Invalid files[${i}].data: expected bytes or a string`,
      );
    }
    const source = f.source === undefined
      ? null
      : noNul(f.source, `files[${i}].source`);
    const mode = f.mode === undefined
      ? 0o644
      : integer(f.mode, `files[${i}].mode`, 0, 0o777);
    files.push({ path, data, source, mode });
  }
  const copyOut = (options.copyOut ?? []).map((p, i) =>
    workPath(p, `copyOut[${i}]`)
  );

  let stdin: GradePlan["stdin"];
  const s = options.stdin;
  if (s === undefined) stdin = { data: new Uint8Array(0) };
  else if (typeof s === "string") stdin = { data: encoder.encode(s) };
  else if (s instanceof Uint8Array) stdin = { data: s };
  else if (typeof s === "object" && s !== null && "path" in s) {
    stdin = { path: noNul(s.path, "stdin path") };
  } else {throw new TypeError(
      "Invalid stdin: expected bytes, a string or { path }",
    );}

  const dirs: DirBinding[] = [];
  for (const [i, d] of (options.dirs ?? []).entries()) {
    if (typeof d !== "object" || d === null) {
      throw new TypeError(`Invalid dirs[${i}]: expected an object`);
    }
    const inside = boxPath(d.inside, `dirs[${i}].inside`);
    if (
      inside === "/" || inside === workDir || workDir.startsWith(inside + "/")
    ) {
      throw new RangeError(
        `Invalid dirs[${i}].inside: would hide the work directory: ${inside}`,
      );
    }
    const outside = noNul(d.outside, `dirs[${i}].outside`);
    if (!outside.startsWith("/")) {
      throw new RangeError(
        `Invalid dirs[${i}].outside: must be absolute: ${outside}`,
      );
    }
    dirs.push({ inside, outside, rw: d.rw === true });
  }

  let seccomp: Uint8Array | false | null = null;
  if (options.seccomp === false) seccomp = false;
  else if (options.seccomp instanceof Uint8Array) {
    if (
      options.seccomp.length === 0 || options.seccomp.length % 8 !== 0 ||
      options.seccomp.length > 4096 * 8
    ) {
      throw new RangeError(
        "Invalid seccomp: expected 1 to 4096 BPF instructions of 8 bytes",
      );
    }
    seccomp = options.seccomp;
  } else if (options.seccomp !== undefined) {
    throw new TypeError("Invalid seccomp: expected bytes or false");
  }

  return {
    argv: [...argv],
    env,
    cwd,
    rootfs,
    timeLimit,
    wallTimeLimit,
    extraTime,
    memoryLimit,
    processLimit,
    outputLimit,
    fileSizeLimit,
    openFilesLimit,
    stackLimit,
    workDir,
    workDirSize,
    files,
    copyOut,
    stdin,
    stdout: outputTarget(options.stdout, "stdout"),
    stderr: outputTarget(options.stderr, "stderr"),
    dirs,
    seccomp,
    signal: options.signal ?? null,
  };
}
