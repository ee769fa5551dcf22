/**
 * The fast entry of `denobox run`: the same command line as `cli/main.ts`, but its bundle
 * holds only what a `run` needs (arguments, store, the foreground owner, the spawn engine)
 * and loads it with the module itself, instead of the command table and one chunk after
 * another. The `denobox` launcher sends `[--root DIR] run ...` here; any other command line
 * is handed to the full CLI.
 * @module
 */
import { dispatch } from "./_dispatch.ts";
import { RUN_SPEC } from "./_run_spec.ts";
import { runCommand } from "./run.ts";
import { runAsOwner } from "./_runtime.ts";

/**
 * Whether `argv` is a `run` command line: only `--root DIR` / `--root=DIR` before `run`
 * (the launcher makes the same test).
 *
 * @example Which command lines take the fast way
 * ```ts
 * import { isRunCommand } from "./run_main.ts";
 * console.log(isRunCommand(["--root", "/tmp/s", "run", "/bin/true"])); // true
 * console.log(isRunCommand(["ps", "-a"])); // false
 * ```
 */
export function isRunCommand(argv: readonly string[]): boolean {
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--root") i++;
    else if (!a.startsWith("--root=")) break;
  }
  return argv[i] === "run";
}

/**
 * Runs a `denobox` command line (without the program name) and returns its exit status: a
 * `run` here, anything else through the full CLI.
 *
 * @example Print the help of `run`
 * ```ts ignore
 * import { runMain } from "./run_main.ts";
 * const status = await runMain(["run", "--help"]);
 * ```
 */
export async function runMain(argv: readonly string[]): Promise<number> {
  if (!isRunCommand(argv)) {
    // a computed specifier: neither the bundler nor Deno's module graph follows it, so the
    // full CLI is read only when it is needed (from a bundle, it lies one directory up)
    const full = import.meta.url.endsWith(".ts") ? "./main.ts" : "../main.js";
    const { main } = await import(full) as typeof import("./main.ts");
    return await main(argv);
  }
  return await dispatch(argv, {
    find: (name) =>
      name === "run"
        ? {
          ...RUN_SPEC,
          // the foreground owner comes with this module: no import once the record exists
          load: () => Promise.resolve((ctx) => runCommand(ctx, { runAsOwner })),
        }
        : undefined,
    // never asked for: a `run` command line has no global --help before `run`
    help: () => "",
  });
}

if (import.meta.main) {
  const code = await runMain(Deno.args);
  Deno.exit(code);
}
