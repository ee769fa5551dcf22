/**
 * `denobox grade`: run one program under grader limits with isolate-style flags, or many as
 * JSON lines with `--batch`.
 *
 * Exit status: 0 when the program ended OK, 1 when it did not (RE, SG, TO, ML, OL), 2 when
 * denobox itself failed (XX, bad flags).
 * @module
 */
import { parseArgs } from "node:util";
import { resolve } from "node:path";
import {
  formatMeta,
  type GradeOptions,
  type GradeResult,
  GraderPool,
  jobFromJson,
  type Json,
  resultToJson,
  runBatch,
} from "denobox/grader";

const HELP = `Usage:  denobox grade [OPTIONS] -- COMMAND [ARG...]
        denobox grade --batch [--parallel N] < jobs.jsonl

Runs COMMAND in a fresh sandbox (read-only root, no network, a private tmpfs work
directory at /box) under limits, and reports a verdict: OK, RE (non-zero exit),
SG (signal), TO (time), ML (memory: the cgroup OOM-killed a process), OL (output
limit) or XX (denobox failed). Flags follow isolate where isolate has them.

Limits:
  -t, --time SEC          CPU time of all processes and threads together
  -w, --wall-time SEC     Wall-clock time (default 2*time+1, or 10 without --time)
  -x, --extra-time SEC    Let a program run this long past a time limit before the
                          kill (it is still TO; the figures show how far it went)
  -m, --mem KIB           Memory limit in KiB, as isolate (also --cg-mem)
      --memory SIZE       Memory limit with a unit (256m, 1g; default 256m)
  -p, --processes N       Processes and threads alive at once (default 64)
  -f, --fsize KIB         Largest file written, in KiB
  -k, --stack KIB         Stack size in KiB (default: the memory limit)
  -n, --open-files N      Open files per process (default 256)
      --output-limit SIZE Bytes kept per output stream; one more is OL (default 64m)
      --work-size SIZE    Size of the /box tmpfs (default 64m)

Files and environment:
  -i, --stdin FILE        Standard input from a host file
  -o, --stdout FILE       Standard output to a host file (default: this stdout)
  -r, --stderr FILE       Standard error to a host file (default: this stderr)
  -d, --dir IN=OUT[:rw]   Host directory OUT appears at IN (read-only unless :rw);
                          IN alone binds the same path
      --file BOX=HOST     Copy host file HOST to /box/BOX (never through a symlink)
      --copy-out BOX=HOST Copy /box/BOX back to HOST after the run (regular files only)
  -E, --env VAR[=VAL]     Set a variable (VAR alone: take it from here); the
                          environment is otherwise PATH, HOME and LANG only
  -c, --chdir DIR         Working directory inside (default /box)
      --rootfs DIR        Host directory to use as the read-only root
      --box DIR           Where the work directory appears (default /box)

Reporting:
  -M, --meta FILE         Write isolate's meta file (time, time-wall, max-rss, cg-mem,
                          cg-oom-killed, exitcode, exitsig, killed, status, message, ...)
      --json              Print the full result as JSON on stdout
  -s, --silent            No status line on stderr
      --batch             Read JSON-lines jobs on stdin, write JSON-lines results
      --parallel N        Jobs run at once in --batch (default: number of CPUs)
      --cg                Accepted for isolate compatibility (cgroups are always used)
  -h, --help              Show this help

A batch job is a JSON object with grade() option names ({"argv": [...], "timeLimit": 1,
"memoryLimit": "64m", "stdin": "text" | {"base64": ...} | {"path": ...}, "files":
[{"path", "data" | "base64" | "source", "mode"}], "copyOut": [...], "id": ...}) or
{"args": [flags..., "--", command...], "id": ...} with the flags above.`;

const OPTIONS = {
  time: { type: "string", short: "t" },
  "wall-time": { type: "string", short: "w" },
  "extra-time": { type: "string", short: "x" },
  mem: { type: "string", short: "m" },
  "cg-mem": { type: "string" },
  memory: { type: "string" },
  processes: { type: "string", short: "p" },
  fsize: { type: "string", short: "f" },
  stack: { type: "string", short: "k" },
  "open-files": { type: "string", short: "n" },
  "output-limit": { type: "string" },
  "work-size": { type: "string" },
  stdin: { type: "string", short: "i" },
  stdout: { type: "string", short: "o" },
  stderr: { type: "string", short: "r" },
  dir: { type: "string", short: "d", multiple: true },
  file: { type: "string", multiple: true },
  "copy-out": { type: "string", multiple: true },
  env: { type: "string", short: "E", multiple: true },
  chdir: { type: "string", short: "c" },
  rootfs: { type: "string" },
  box: { type: "string" },
  meta: { type: "string", short: "M" },
  json: { type: "boolean" },
  silent: { type: "boolean", short: "s" },
  batch: { type: "boolean" },
  parallel: { type: "string" },
  cg: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

/** A command-line mistake: printed with a pointer to --help, exit status 2. */
export class GradeUsageError extends TypeError {
  override name = "GradeUsageError";
}

/** A parsed `denobox grade` command line. */
export interface GradeCommand {
  /** The run's options (argv empty in batch mode). */
  options: GradeOptions;
  /** Where copied-out files go on the host, by box path. */
  copyOutTo: Record<string, string>;
  /** --meta */
  meta: string | null;
  /** --json */
  json: boolean;
  /** --silent */
  silent: boolean;
  /** --batch */
  batch: boolean;
  /** --parallel */
  parallel: number | null;
  /** --help */
  help: boolean;
}

function num(v: string, flag: string): number {
  const n = Number(v);
  if (v.trim() === "" || !Number.isFinite(n)) {
    throw new GradeUsageError(
      `Invalid --${flag}: expected a number, got ${JSON.stringify(v)}`,
    );
  }
  return n;
}

function kib(v: string, flag: string): number {
  const n = num(v, flag);
  if (!Number.isInteger(n) || n < 0) {
    throw new GradeUsageError(
      `Invalid --${flag}: expected a whole number of KiB, got ${v}`,
    );
  }
  return n * 1024;
}

function pair(v: string, flag: string): [string, string] {
  const i = v.indexOf("=");
  if (i <= 0 || i === v.length - 1) {
    throw new GradeUsageError(
      `Invalid --${flag}: expected A=B, got ${JSON.stringify(v)}`,
    );
  }
  return [v.slice(0, i), v.slice(i + 1)];
}

/** Index of the first command word: after `--`, or the first argument that is not a flag. */
function splitCommand(args: readonly string[]): [string[], string[]] {
  const dd = args.indexOf("--");
  if (dd >= 0) return [args.slice(0, dd), args.slice(dd + 1)];
  const takesValue = new Set<string>();
  for (const [long, spec] of Object.entries(OPTIONS)) {
    if (spec.type === "string") {
      takesValue.add(`--${long}`);
      if ("short" in spec) takesValue.add(`-${spec.short}`);
    }
  }
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (!a.startsWith("-") || a === "-") {
      return [args.slice(0, i), args.slice(i)];
    }
    if (takesValue.has(a)) i++;
  }
  return [[...args], []];
}

/**
 * Parses `denobox grade` arguments (isolate-style flags, then `--` and the command). Bad flags
 * are a `GradeUsageError`; relative host paths are resolved against `cwd`.
 *
 * @example
 * ```ts
 * import { parseGradeArgs } from "./grade.ts";
 * const c = parseGradeArgs(["--time=1", "--mem", "65536", "--", "./a.out", "-v"]);
 * console.log(c.options.timeLimit, c.options.memoryLimit, c.options.argv);
 * // 1 67108864 [ "./a.out", "-v" ]
 * ```
 */
export function parseGradeArgs(
  args: readonly string[],
  cwd: string = Deno.cwd(),
): GradeCommand {
  const [flags, command] = splitCommand(args);
  let values;
  try {
    ({ values } = parseArgs({
      args: flags,
      options: OPTIONS,
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    throw new GradeUsageError((e as Error).message);
  }
  const o: Record<string, unknown> = { argv: command };
  const host = (p: string) => resolve(cwd, p);
  if (values.time !== undefined) o.timeLimit = num(values.time, "time");
  if (values["wall-time"] !== undefined) {
    o.wallTimeLimit = num(values["wall-time"], "wall-time");
  }
  if (values["extra-time"] !== undefined) {
    o.extraTime = num(values["extra-time"], "extra-time");
  }
  const mems = [
    values.mem !== undefined ? kib(values.mem, "mem") : undefined,
    values["cg-mem"] !== undefined
      ? kib(values["cg-mem"], "cg-mem")
      : undefined,
    values.memory,
  ].filter((m) => m !== undefined);
  if (mems.length > 1) {
    throw new GradeUsageError("Give only one of --mem, --cg-mem and --memory");
  }
  if (mems.length === 1) o.memoryLimit = mems[0];
  if (values.processes !== undefined) {
    o.processLimit = num(values.processes, "processes");
  }
  if (values.fsize !== undefined) o.fileSizeLimit = kib(values.fsize, "fsize");
  if (values.stack !== undefined) o.stackLimit = kib(values.stack, "stack");
  if (values["open-files"] !== undefined) {
    o.openFilesLimit = num(values["open-files"], "open-files");
  }
  if (values["output-limit"] !== undefined) {
    o.outputLimit = values["output-limit"];
  }
  if (values["work-size"] !== undefined) o.workDirSize = values["work-size"];
  if (values.stdin !== undefined) o.stdin = { path: host(values.stdin) };
  if (values.stdout !== undefined) o.stdout = { path: host(values.stdout) };
  if (values.stderr !== undefined) o.stderr = { path: host(values.stderr) };
  if (values.dir !== undefined) {
    o.dirs = values.dir.map((d) => {
      let spec = d, rw = false;
      const colon = d.lastIndexOf(":");
      if (colon > 0) {
        const opt = d.slice(colon + 1);
        if (opt === "rw") rw = true;
        else if (opt !== "ro") {
          throw new GradeUsageError(`Invalid --dir option: ${opt} (rw or ro)`);
        }
        spec = d.slice(0, colon);
      }
      const eq = spec.indexOf("=");
      const inside = eq < 0 ? spec : spec.slice(0, eq);
      const outside = eq < 0 ? spec : spec.slice(eq + 1);
      return { inside, outside: host(outside), rw };
    });
  }
  if (values.file !== undefined) {
    o.files = values.file.map((f) => {
      const [box, src] = pair(f, "file");
      return { path: box, source: host(src), mode: 0o755 };
    });
  }
  const copyOutTo: Record<string, string> = {};
  if (values["copy-out"] !== undefined) {
    for (const c of values["copy-out"]) {
      const [box, dst] = pair(c, "copy-out");
      copyOutTo[box] = host(dst);
    }
    o.copyOut = Object.keys(copyOutTo);
  }
  if (values.env !== undefined) {
    const env: Record<string, string> = {
      PATH: "/usr/local/bin:/usr/bin:/bin",
      HOME: values.box ?? "/box",
      LANG: "C.UTF-8",
    };
    for (const e of values.env) {
      const i = e.indexOf("=");
      if (i === 0) throw new GradeUsageError(`Invalid --env: ${e}`);
      if (i > 0) env[e.slice(0, i)] = e.slice(i + 1);
      else {
        const v = Deno.env.get(e);
        if (v !== undefined) env[e] = v;
      }
    }
    o.env = env;
  }
  if (values.chdir !== undefined) o.cwd = values.chdir;
  if (values.rootfs !== undefined) o.rootfs = host(values.rootfs);
  if (values.box !== undefined) o.workDir = values.box;
  let parallel: number | null = null;
  if (values.parallel !== undefined) {
    parallel = num(values.parallel, "parallel");
    if (!Number.isInteger(parallel) || parallel < 1) {
      throw new GradeUsageError(
        `Invalid --parallel: expected a positive integer, got ${values.parallel}`,
      );
    }
  }
  const batch = values.batch === true;
  const help = values.help === true;
  if (!batch && !help && command.length === 0) {
    throw new GradeUsageError(
      "Missing the command to run (denobox grade [OPTIONS] -- COMMAND)",
    );
  }
  if (batch && command.length > 0) {
    throw new GradeUsageError("--batch takes no command");
  }
  return {
    options: o as unknown as GradeOptions,
    copyOutTo,
    meta: values.meta === undefined ? null : host(values.meta),
    json: values.json === true,
    silent: values.silent === true,
    batch,
    parallel,
    help,
  };
}

function summary(r: GradeResult): string {
  const t = `${r.cpuTime.toFixed(3)} sec real, ${
    r.wallTime.toFixed(3)
  } sec wall`;
  return r.status === "OK" ? `OK (${t})` : `${r.status}: ${r.message} (${t})`;
}

async function writeCopies(
  r: GradeResult,
  copyOutTo: Record<string, string>,
): Promise<void> {
  for (const [box, dst] of Object.entries(copyOutTo)) {
    const data = r.files[box];
    if (data !== undefined) await Deno.writeFile(dst, data);
  }
}

const exitStatus = (r: GradeResult) =>
  r.status === "OK" ? 0 : r.status === "XX" ? 2 : 1;

async function single(cmd: GradeCommand): Promise<number> {
  const options: GradeOptions = { ...cmd.options };
  await using pool = new GraderPool({ concurrency: 1 });
  const r = await pool.grade(options);
  if (cmd.meta !== null) await Deno.writeTextFile(cmd.meta, formatMeta(r));
  await writeCopies(r, cmd.copyOutTo);
  if (cmd.json) {
    console.log(JSON.stringify(resultToJson(r)));
  } else {
    if (r.stdout !== null) await Deno.stdout.write(r.stdout);
    if (r.stderr !== null) await Deno.stderr.write(r.stderr);
    if (!cmd.silent) console.error(summary(r));
  }
  return exitStatus(r);
}

async function batch(cmd: GradeCommand): Promise<number> {
  const parallel = cmd.parallel ?? navigator.hardwareConcurrency;
  await using pool = new GraderPool({ concurrency: parallel });
  const extras = new WeakMap<GradeOptions, GradeCommand>();
  const parse = (job: Json): GradeOptions => {
    if (
      typeof job === "object" && job !== null && !Array.isArray(job) &&
      "args" in job
    ) {
      const { args, id: _id, ...rest } = job;
      if (Object.keys(rest).length > 0) {
        throw new TypeError(
          `an "args" job takes no other keys than "id": ${
            Object.keys(rest).join(", ")
          }`,
        );
      }
      if (!Array.isArray(args) || !args.every((a) => typeof a === "string")) {
        throw new TypeError(`"args" must be an array of strings`);
      }
      const c = parseGradeArgs(args as string[]);
      if (c.batch) throw new TypeError("--batch inside a batch job");
      extras.set(c.options, c);
      return c.options;
    }
    return jobFromJson(job);
  };
  const run = async (o: GradeOptions): Promise<GradeResult> => {
    const r = await pool.grade(o);
    const c = extras.get(o);
    if (c !== undefined) {
      if (c.meta !== null) await Deno.writeTextFile(c.meta, formatMeta(r));
      await writeCopies(r, c.copyOutTo);
    }
    return r;
  };
  await runBatch(Deno.stdin.readable, Deno.stdout.writable, run, {
    // the pool runs `parallel` programs and prepares as many runs again; jobs read ahead
    // keep it fed while results are written
    parallel: parallel * 4,
    parse,
  });
  return 0;
}

/**
 * Runs `denobox grade` with `args` (the words after `grade`) and returns the exit status:
 * 0 OK, 1 the program failed a limit or exited badly, 2 denobox failed.
 *
 * @example
 * ```ts ignore
 * import { gradeMain } from "./grade.ts";
 * Deno.exit(await gradeMain(["--time=1", "--", "/bin/true"]));
 * ```
 */
export async function gradeMain(args: string[]): Promise<number> {
  let cmd: GradeCommand;
  try {
    cmd = parseGradeArgs(args);
  } catch (e) {
    if (e instanceof GradeUsageError) {
      console.error(`denobox grade: ${e.message}\nSee 'denobox grade --help'.`);
      return 2;
    }
    throw e;
  }
  if (cmd.help) {
    console.log(HELP);
    return 0;
  }
  try {
    return cmd.batch ? await batch(cmd) : await single(cmd);
  } catch (e) {
    const bad = e instanceof TypeError || e instanceof RangeError;
    console.error(
      `denobox grade: ${bad ? "" : "internal error: "}${(e as Error).message}`,
    );
    return 2;
  }
}
