/**
 * Writes sandbox/seccomp/default.json from DEFAULT_SECCOMP_PROFILE (the TypeScript source is
 * the truth; the JSON is for tools that take Docker's format, e.g. `docker run
 * --security-opt seccomp=default.json`). tests/seccomp/profile_test.ts checks they agree.
 * Usage: tools/deno run -A sandbox/seccomp/_gen_default_json.ts
 * @module
 */
import { DEFAULT_SECCOMP_PROFILE } from "./default_profile.ts";

/** The JSON text of the default profile, as committed. */
export function defaultProfileJson(): string {
  return JSON.stringify(DEFAULT_SECCOMP_PROFILE, null, 2) + "\n";
}

if (import.meta.main) {
  const out = new URL("./default.json", import.meta.url);
  Deno.writeTextFileSync(out, defaultProfileJson());
  console.error(`wrote ${out.pathname}`);
}
