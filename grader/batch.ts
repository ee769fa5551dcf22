/**
 * The batch protocol: one JSON job per input line, one JSON result per output line, so a judge
 * pays for process start-up once and runs many submissions through one pool.
 *
 * A job is an object with `GradeOptions`' keys (`argv`, `timeLimit`, `memoryLimit`, ...) plus
 * an optional `id` echoed in its result. Byte fields are JSON-friendly: `stdin` is a string, or
 * `{ "base64": ... }`, or `{ "path": ... }`; a file is `{ "path", "data" | "base64" | "source",
 * "mode" }`. Results are `GradeResult`s where captured bytes are a string when they are valid
 * UTF-8 (`stdout`) and base64 otherwise (`stdoutBase64`); copied-out files likewise go to
 * `files` or `filesBase64`. Results are written in completion order; a bad line gets an `XX`
 * result naming the problem, and the batch goes on.
 * @module
 */
import type { GradeFile, GradeOptions, GradeResult } from "./types.ts";

/** A JSON value. */
export type Json = null | boolean | number | string | Json[] | {
  [k: string]: Json;
};

const decoder = new TextDecoder("utf-8", { fatal: true });

function b64decode(s: unknown, what: string): Uint8Array {
  if (typeof s !== "string") {
    throw new TypeError(`Invalid ${what}: base64 must be a string`);
  }
  try {
    return Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
  } catch {
    throw new TypeError(`Invalid ${what}: not base64`);
  }
}

function b64encode(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i += 0x8000) {
    s += String.fromCharCode(...b.subarray(i, i + 0x8000));
  }
  return btoa(s);
}

/** Bytes as text when they are valid UTF-8, else null. */
function asText(b: Uint8Array): string | null {
  try {
    return decoder.decode(b);
  } catch {
    return null;
  }
}

const PASSTHROUGH = [
  "argv",
  "env",
  "cwd",
  "rootfs",
  "timeLimit",
  "wallTimeLimit",
  "extraTime",
  "memoryLimit",
  "processLimit",
  "outputLimit",
  "fileSizeLimit",
  "openFilesLimit",
  "stackLimit",
  "workDir",
  "workDirSize",
  "copyOut",
  "stdout",
  "stderr",
  "dirs",
] as const;

const KNOWN = new Set<string>([...PASSTHROUGH, "id", "files", "stdin"]);

/**
 * A job line's object as `GradeOptions` (types are then checked by `grade()`); unknown keys are
 * a `TypeError`, so a misspelt limit is never silently ignored.
 *
 * @example
 * ```ts
 * import { jobFromJson } from "denobox/grader";
 * const o = jobFromJson({ argv: ["/bin/true"], timeLimit: 1, stdin: { base64: "aGk=" } });
 * console.log(o.stdin); // Uint8Array(2) [ 104, 105 ]
 * ```
 */
export function jobFromJson(job: Json): GradeOptions {
  if (typeof job !== "object" || job === null || Array.isArray(job)) {
    throw new TypeError("Invalid job: expected a JSON object");
  }
  for (const k of Object.keys(job)) {
    if (!KNOWN.has(k)) {
      throw new TypeError(`Invalid job: unknown key ${JSON.stringify(k)}`);
    }
  }
  const out: Record<string, unknown> = {};
  for (const k of PASSTHROUGH) if (job[k] !== undefined) out[k] = job[k];
  const stdin = job.stdin;
  if (typeof stdin === "string") out.stdin = stdin;
  else if (
    typeof stdin === "object" && stdin !== null && !Array.isArray(stdin)
  ) {
    if ("base64" in stdin) out.stdin = b64decode(stdin.base64, "stdin");
    else if ("path" in stdin) out.stdin = { path: stdin.path };
    else {throw new TypeError(
        "Invalid stdin: expected a string, { base64 } or { path }",
      );}
  } else if (stdin !== undefined) {
    throw new TypeError(
      "Invalid stdin: expected a string, { base64 } or { path }",
    );
  }
  if (job.files !== undefined) {
    if (!Array.isArray(job.files)) {
      throw new TypeError("Invalid files: expected an array");
    }
    out.files = job.files.map((f, i): GradeFile => {
      if (typeof f !== "object" || f === null || Array.isArray(f)) {
        throw new TypeError(`Invalid files[${i}]: expected an object`);
      }
      const file: Record<string, unknown> = { path: f.path };
      if (f.mode !== undefined) file.mode = f.mode;
      if (f.data !== undefined) file.data = f.data;
      if (f.base64 !== undefined) {
        file.data = b64decode(f.base64, `files[${i}]`);
      }
      if (f.source !== undefined) file.source = f.source;
      return file as unknown as GradeFile;
    });
  }
  return out as unknown as GradeOptions;
}

/**
 * A result as a JSON object (see the module note for how bytes are encoded), with `id` first
 * when given.
 *
 * @example
 * ```ts
 * import { resultToJson, type GradeResult } from "denobox/grader";
 * const r = { status: "OK", stdout: new TextEncoder().encode("hi\n"), stderr: null, files: {} };
 * console.log(resultToJson(r as unknown as GradeResult, 7).stdout); // "hi\n"
 * ```
 */
export function resultToJson(
  result: GradeResult,
  id?: Json,
): { [k: string]: Json } {
  const out: { [k: string]: Json } = {};
  if (id !== undefined) out.id = id;
  for (const [k, v] of Object.entries(result)) {
    if (k === "stdout" || k === "stderr") {
      if (v === null) out[k] = null;
      else {
        const t = asText(v as Uint8Array);
        if (t === null) out[`${k}Base64`] = b64encode(v as Uint8Array);
        else out[k] = t;
      }
    } else if (k === "files") {
      const text: { [k: string]: Json } = {}, bin: { [k: string]: Json } = {};
      for (
        const [name, data] of Object.entries(v as Record<string, Uint8Array>)
      ) {
        const t = asText(data);
        if (t === null) bin[name] = b64encode(data);
        else text[name] = t;
      }
      out.files = text;
      if (Object.keys(bin).length > 0) out.filesBase64 = bin;
    } else {
      out[k] = v as Json;
    }
  }
  return out;
}

/** Options of `runBatch()`. */
export interface BatchOptions {
  /** Jobs run at once. Default 1. */
  parallel?: number;
  /**
   * Turns a line's parsed job into options; default `jobFromJson`. The CLI passes one that
   * also accepts `{ "args": [...] }` (command-line flags).
   */
  parse?: (job: Json) => GradeOptions;
}

/** Counts of a finished batch. */
export interface BatchSummary {
  /** Result lines written. */
  results: number;
  /** Results whose status was not OK. */
  notOk: number;
}

/**
 * Reads JSON-lines jobs from `input`, runs each with `run` (at most `parallel` at once) and
 * writes one JSON result line per job to `output`, in completion order. Empty lines are
 * skipped. A line that is not valid JSON, or a job whose options are rejected, gets an `XX`
 * result with the reason.
 *
 * @example Two jobs through a pool
 * ```ts ignore
 * import { GraderPool, runBatch } from "denobox/grader";
 * await using pool = new GraderPool();
 * await runBatch(Deno.stdin.readable, Deno.stdout.writable, (o) => pool.grade(o));
 * ```
 */
export async function runBatch(
  input: ReadableStream<Uint8Array>,
  output: WritableStream<Uint8Array>,
  run: (options: GradeOptions) => Promise<GradeResult>,
  options: BatchOptions = {},
): Promise<BatchSummary> {
  const parallel = options.parallel ?? 1;
  if (!Number.isInteger(parallel) || parallel < 1) {
    throw new RangeError(
      `Invalid parallel: expected a positive integer, got ${parallel}`,
    );
  }
  const parse = options.parse ?? jobFromJson;
  const writer = output.getWriter();
  const encoder = new TextEncoder();
  const summary: BatchSummary = { results: 0, notOk: 0 };
  // Results go out in groups: each write costs an async op through the stream (about 70 µs
  // of this thread, measured), which a batch of hundreds of runs a second feels. A result
  // waits at most FLUSH_MS for others to join it (or until FLUSH_BYTES are pending).
  let pending: string[] = [];
  let pendingBytes = 0;
  let writing: Promise<void> | null = null;
  let wake = null as (() => void) | null;
  let writeError: unknown = null;
  const flush = async () => {
    await new Promise<void>((resolve) => {
      wake = resolve;
      setTimeout(resolve, FLUSH_MS);
    });
    wake = null;
    while (pending.length > 0) {
      const text = pending.join("");
      pending = [];
      pendingBytes = 0;
      await writer.write(encoder.encode(text));
    }
    writing = null;
  };
  const emit = (obj: { [k: string]: Json }): void => {
    summary.results++;
    if (obj.status !== "OK") summary.notOk++;
    const line = JSON.stringify(obj) + "\n";
    pending.push(line);
    pendingBytes += line.length;
    writing ??= flush().catch((e) => {
      // the output is gone (a closed pipe): no more jobs are taken, runBatch throws this
      writeError ??= e;
      pending = [];
      writing = null;
    });
    if (pendingBytes >= FLUSH_BYTES) wake?.();
  };
  const running = new Set<Promise<void>>();
  let lineNo = 0;
  const handle = async (line: string, n: number) => {
    let id: Json = n;
    try {
      const job = JSON.parse(line) as Json;
      if (
        typeof job === "object" && job !== null && !Array.isArray(job) &&
        job.id !== undefined
      ) {
        id = job.id;
      }
      const opts = parse(job);
      emit(resultToJson(await run(opts), id));
    } catch (e) {
      const bad = e instanceof TypeError || e instanceof RangeError ||
        e instanceof SyntaxError;
      emit({
        id,
        status: "XX",
        message: bad && !(e as Error).message.startsWith("Invalid ")
          ? `Invalid job: ${(e as Error).message}`
          : String((e as Error)?.message ?? e),
      });
    }
  };
  const lines = input.pipeThrough(new TextDecoderStream()).pipeThrough(
    lineSplitter(),
  );
  for await (const line of lines) {
    lineNo++;
    if (line.trim() === "") continue;
    while (running.size >= parallel) await Promise.race(running);
    if (writeError !== null) break;
    // a reader that does not keep up holds new jobs back (once a write's worth is pending)
    while (pendingBytes >= FLUSH_BYTES && writing) await writing;
    const p: Promise<void> = handle(line, lineNo).finally(() =>
      running.delete(p)
    );
    running.add(p);
  }
  await Promise.all(running);
  wake?.();
  await writing;
  if (writeError !== null) throw writeError;
  writer.releaseLock();
  return summary;
}

/** How long a result may wait for others to share its write (ms), and how many bytes at most. */
const FLUSH_MS = 5;
const FLUSH_BYTES = 65536;

function lineSplitter(): TransformStream<string, string> {
  let rest = "";
  return new TransformStream({
    transform(chunk, ctl) {
      rest += chunk;
      let i: number;
      while ((i = rest.indexOf("\n")) >= 0) {
        ctl.enqueue(rest.slice(0, i));
        rest = rest.slice(i + 1);
      }
    },
    flush(ctl) {
      if (rest !== "") ctl.enqueue(rest);
    },
  });
}
