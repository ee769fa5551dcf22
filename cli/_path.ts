/**
 * POSIX path helpers with `node:path` semantics. The CLI does not import `node:path`: the
 * first `node:` import of a process initialises Deno's Node compatibility layer, which costs
 * about 8 ms of start-up on every command.
 * @module
 */

/** Collapses `//`, `.` and `..` (never above `/` for an absolute path); "" becomes ".". */
export function normalize(path: string): string {
  if (path === "") return ".";
  const abs = path.startsWith("/");
  const trailing = path.endsWith("/");
  const out: string[] = [];
  for (const part of path.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") {
      if (out.length > 0 && out[out.length - 1] !== "..") out.pop();
      else if (!abs) out.push("..");
    } else out.push(part);
  }
  let s = (abs ? "/" : "") + out.join("/");
  if (s === "") return abs ? "/" : trailing ? "./" : ".";
  if (trailing && s !== "/") s += "/";
  return s;
}

/** Joins the non-empty segments with `/` and normalises the result. */
export function join(...parts: string[]): string {
  const joined = parts.filter((p) => p !== "").join("/");
  return joined === "" ? "." : normalize(joined);
}

/** Whether `path` starts at the root. */
export function isAbsolute(path: string): boolean {
  return path.startsWith("/");
}

/** The absolute path of the segments, read right to left up to the first absolute one. */
export function resolve(...parts: string[]): string {
  let acc = "";
  for (let i = parts.length - 1; i >= 0 && !acc.startsWith("/"); i--) {
    const p = parts[i]!;
    if (p !== "") acc = acc === "" ? p : `${p}/${acc}`;
  }
  if (!acc.startsWith("/")) acc = `${Deno.cwd()}/${acc}`;
  const n = normalize(acc);
  return n.length > 1 && n.endsWith("/") ? n.slice(0, -1) : n;
}

/** The last segment, trailing slashes ignored. */
export function basename(path: string): string {
  const trimmed = path.replace(/\/+$/, "");
  if (trimmed === "") return "";
  return trimmed.slice(trimmed.lastIndexOf("/") + 1);
}

/** Everything before the last segment, trailing slashes ignored ("." when there is none). */
export function dirname(path: string): string {
  if (path === "") return ".";
  const trimmed = path.replace(/\/+$/, "");
  if (trimmed === "") return "/";
  const i = trimmed.lastIndexOf("/");
  if (i < 0) return ".";
  return i === 0 ? "/" : trimmed.slice(0, i);
}
