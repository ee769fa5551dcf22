/**
 * Build recipes: a chained TypeScript API and a reader for the same subset of Dockerfile
 * instructions. Pure data; `build()` executes them.
 * @module
 */
import { parseReference } from "./reference.ts";

/** One recipe step. */
export type BuildStep =
  | { kind: "from"; ref: string }
  | { kind: "run"; argv: string[]; text: string }
  | {
    kind: "copy";
    sources: string[];
    dest: string;
    chown?: { uid: number; gid: number };
  }
  | { kind: "env"; env: Record<string, string> }
  | { kind: "workdir"; path: string }
  | { kind: "cmd"; argv: string[] }
  | { kind: "entrypoint"; argv: string[] }
  | { kind: "user"; user: string }
  | { kind: "label"; labels: Record<string, string> };

/**
 * A build recipe, written with chained calls.
 *
 * @example A recipe in TypeScript
 * ```ts
 * import { Recipe } from "denobox/image";
 * const r = new Recipe().from("busybox:latest").env("GREETING", "hi")
 *   .run("echo $GREETING > /greeting").workdir("/app").cmd(["cat", "/greeting"]);
 * console.log(r.steps.length); // 5
 * ```
 */
export class Recipe {
  /** The steps, in order. */
  readonly steps: BuildStep[] = [];

  /** The base image (`name[:tag]` in the store, or `host/repo:tag` to pull). */
  from(ref: string): this {
    if (this.steps.length > 0) {
      throw new TypeError("Invalid recipe: from() must come first, once");
    }
    parseReference(ref);
    this.steps.push({ kind: "from", ref });
    return this;
  }

  /** Runs a command: a string goes to `/bin/sh -c`, an array is exec'd as is. */
  run(command: string | readonly string[]): this {
    const argv = typeof command === "string"
      ? ["/bin/sh", "-c", command]
      : [...command];
    if (argv.length === 0) {
      throw new TypeError("Invalid recipe: run() needs a command");
    }
    const text = typeof command === "string"
      ? command
      : JSON.stringify(command);
    this.steps.push({ kind: "run", argv, text });
    return this;
  }

  /** Copies files from the build context (relative paths inside it) to `dest` in the image. */
  copy(
    sources: string | readonly string[],
    dest: string,
    options: { chown?: { uid: number; gid: number } } = {},
  ): this {
    const list = typeof sources === "string" ? [sources] : [...sources];
    if (list.length === 0 || dest === "") {
      throw new TypeError(
        "Invalid recipe: copy() needs sources and a destination",
      );
    }
    this.steps.push({
      kind: "copy",
      sources: list,
      dest,
      ...(options.chown ? { chown: options.chown } : {}),
    });
    return this;
  }

  /** Sets environment variables (`env("K", "v")` or `env({ K: "v" })`). */
  env(name: string | Readonly<Record<string, string>>, value?: string): this {
    const env = typeof name === "string"
      ? { [name]: value ?? "" }
      : { ...name };
    for (const k of Object.keys(env)) {
      if (k === "" || k.includes("=")) {
        throw new TypeError(`Invalid recipe: bad variable name ${k}`);
      }
    }
    this.steps.push({ kind: "env", env });
    return this;
  }

  /** Sets the working directory (relative paths apply to the previous one). */
  workdir(path: string): this {
    this.steps.push({ kind: "workdir", path });
    return this;
  }

  /** Sets the default command. */
  cmd(argv: readonly string[]): this {
    this.steps.push({ kind: "cmd", argv: [...argv] });
    return this;
  }

  /** Sets the entrypoint. */
  entrypoint(argv: readonly string[]): this {
    this.steps.push({ kind: "entrypoint", argv: [...argv] });
    return this;
  }

  /** Sets the user (`uid[:gid]` or a name from the image's /etc/passwd). */
  user(user: string): this {
    this.steps.push({ kind: "user", user });
    return this;
  }

  /** Sets labels (`label("k", "v")` or `label({ k: "v" })`). */
  label(name: string | Readonly<Record<string, string>>, value?: string): this {
    const labels = typeof name === "string"
      ? { [name]: value ?? "" }
      : { ...name };
    this.steps.push({ kind: "label", labels });
    return this;
  }
}

// ---- Dockerfile subset ----

function logicalLines(text: string): { line: number; text: string }[] {
  const out: { line: number; text: string }[] = [];
  let buf = "";
  let start = 0;
  const lines = text.split(/\r?\n/);
  lines.forEach((raw, i) => {
    const trimmed = raw.trim();
    if (buf === "" && (trimmed === "" || trimmed.startsWith("#"))) return;
    if (buf !== "" && trimmed.startsWith("#")) return;
    if (buf === "") start = i + 1;
    if (trimmed.endsWith("\\")) {
      buf += trimmed.slice(0, -1) + " ";
      return;
    }
    buf += trimmed;
    out.push({ line: start, text: buf });
    buf = "";
  });
  if (buf !== "") out.push({ line: start, text: buf.trim() });
  return out;
}

function words(s: string): string[] {
  const out: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|'([^']*)'|(\S+)/g;
  for (const m of s.matchAll(re)) {
    out.push(m[1] !== undefined ? m[1].replace(/\\(.)/g, "$1") : m[2] ?? m[3]!);
  }
  return out;
}

function keyValues(
  s: string,
  what: string,
  line: number,
): Record<string, string> {
  const w = words(s);
  if (w.length === 2 && !w[0]!.includes("=")) return { [w[0]!]: w[1]! };
  if (w.length >= 2 && !w[0]!.includes("=") && !s.includes("=")) {
    return { [w[0]!]: w.slice(1).join(" ") };
  }
  const out: Record<string, string> = {};
  const re = /([^\s=]+)=("((?:[^"\\]|\\.)*)"|'([^']*)'|(\S*))/g;
  let seen = 0;
  for (const m of s.matchAll(re)) {
    out[m[1]!] = m[3] !== undefined
      ? m[3].replace(/\\(.)/g, "$1")
      : m[4] ?? m[5] ?? "";
    seen++;
  }
  if (seen === 0) {
    throw new SyntaxError(
      `Cannot read Dockerfile line ${line}: ${what} needs KEY=value`,
    );
  }
  return out;
}

function execForm(s: string): string[] | null {
  if (!s.startsWith("[")) return null;
  try {
    const v = JSON.parse(s);
    if (Array.isArray(v) && v.every((x) => typeof x === "string")) return v;
  } catch { /* shell form */ }
  return null;
}

/**
 * Reads a Dockerfile (one stage) with FROM, RUN, COPY (with `--chown=uid:gid`), ENV, WORKDIR,
 * CMD, ENTRYPOINT, USER, LABEL; `$VAR`/`${VAR}` from ENV are substituted in ENV, WORKDIR,
 * COPY, USER and LABEL. Other instructions are a `SyntaxError` naming the line.
 *
 * @example Read a Dockerfile
 * ```ts
 * import { parseDockerfile } from "denobox/image";
 * const r = parseDockerfile("FROM busybox\nRUN echo hi > /x\nCMD [\"cat\", \"/x\"]\n");
 * console.log(r.steps.map((s) => s.kind)); // ["from", "run", "cmd"]
 * ```
 */
export function parseDockerfile(text: string): Recipe {
  const r = new Recipe();
  const env: Record<string, string> = {};
  const subst = (s: string) =>
    s.replace(/\$\{(\w+)\}|\$(\w+)/g, (_m, a, b) => env[a ?? b] ?? "");
  for (const { line, text: l } of logicalLines(text)) {
    const m = /^(\w+)\s*(.*)$/s.exec(l);
    if (!m) throw new SyntaxError(`Cannot read Dockerfile line ${line}: ${l}`);
    const op = m[1]!.toUpperCase();
    const rest = m[2]!.trim();
    const fail = (why: string) =>
      new SyntaxError(`Cannot read Dockerfile line ${line} (${op}): ${why}`);
    switch (op) {
      case "FROM": {
        const w = words(rest);
        if (
          w.length !== 1 && !(w.length === 3 && w[1]!.toUpperCase() === "AS")
        ) throw fail("expected FROM image [AS name]");
        if (r.steps.length > 0) {
          throw fail("multi-stage builds are not supported");
        }
        r.from(w[0]!);
        break;
      }
      case "RUN":
        r.run(execForm(rest) ?? rest);
        break;
      case "CMD":
        r.cmd(execForm(rest) ?? ["/bin/sh", "-c", rest]);
        break;
      case "ENTRYPOINT":
        r.entrypoint(execForm(rest) ?? ["/bin/sh", "-c", rest]);
        break;
      case "COPY": {
        let w = execForm(rest) ?? words(rest);
        let chown: { uid: number; gid: number } | undefined;
        while (w[0]?.startsWith("--")) {
          const flag = w.shift()!;
          const c = /^--chown=(\d+)(?::(\d+))?$/.exec(flag);
          if (!c) {
            throw fail(`unsupported flag ${flag} (only --chown=uid[:gid])`);
          }
          chown = { uid: Number(c[1]), gid: Number(c[2] ?? c[1]) };
        }
        w = w.map(subst);
        if (w.length < 2) throw fail("expected COPY src... dest");
        r.copy(w.slice(0, -1), w[w.length - 1]!, chown ? { chown } : {});
        break;
      }
      case "ENV": {
        const kv = keyValues(rest, "ENV", line);
        for (const k of Object.keys(kv)) kv[k] = subst(kv[k]!);
        Object.assign(env, kv);
        r.env(kv);
        break;
      }
      case "LABEL": {
        const kv = keyValues(rest, "LABEL", line);
        for (const k of Object.keys(kv)) kv[k] = subst(kv[k]!);
        r.label(kv);
        break;
      }
      case "WORKDIR":
        r.workdir(subst(rest));
        break;
      case "USER":
        r.user(subst(rest));
        break;
      default:
        throw fail("unsupported instruction");
    }
    if (op !== "FROM" && r.steps[0]?.kind !== "from") {
      throw fail("the first instruction must be FROM");
    }
  }
  if (r.steps.length === 0) {
    throw new SyntaxError("Cannot read Dockerfile: it has no FROM");
  }
  return r;
}
