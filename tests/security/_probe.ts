/**
 * Builds the attack probe (tests/security/probe.c) with `gcc -static` once per source version,
 * cached under .cache/probe/<hash>/probe, world-readable so rootless tests can run it.
 */
import { createHash } from "node:crypto";
import { dirname, join } from "node:path";
import { CACHE } from "../_helpers.ts";

const SOURCE = new URL("./probe.c", import.meta.url).pathname;

/** The path of the built probe. */
export async function ensureProbe(): Promise<string> {
  const src = await Deno.readFile(SOURCE);
  const hash = createHash("sha256").update(src).digest("hex").slice(0, 16);
  const out = join(CACHE, "probe", hash, "probe");
  try {
    await Deno.stat(out);
    return out;
  } catch { /* build it */ }
  await Deno.mkdir(dirname(out), { recursive: true });
  const tmp = `${out}.tmp-${Deno.pid}`;
  const cc = await new Deno.Command("gcc", {
    args: ["-static", "-O2", "-Wall", "-o", tmp, SOURCE],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!cc.success) {
    throw new Error(
      `Cannot build the probe (gcc -static): ${
        new TextDecoder().decode(cc.stderr)
      }`,
    );
  }
  await Deno.chmod(tmp, 0o755);
  await Deno.rename(tmp, out);
  for (const d of [CACHE, join(CACHE, "probe"), dirname(out)]) {
    await Deno.chmod(d, 0o755);
  }
  return out;
}

/** One probe line parsed: `{ ok: true, detail }` or `{ ok: false, errno: "EPERM" }`. */
export type ProbeResult = { ok: true; detail: string } | {
  ok: false;
  errno: string;
};

/** Parses the probe's last output line. */
export function parseProbe(stdout: string): ProbeResult {
  const line = stdout.trim().split("\n").pop() ?? "";
  const m = /^(ok|err) ?(\S*)/.exec(line);
  if (!m) throw new Error(`Unexpected probe output: ${JSON.stringify(stdout)}`);
  return m[1] === "ok"
    ? { ok: true, detail: line.slice(3) }
    : { ok: false, errno: m[2]! };
}
