/**
 * The `denobox` command line: Docker's lifecycle without a daemon. State lives on disk (one
 * directory per container, atomic JSON files, flock locks), so every invocation sees every
 * container; a small detached monitor per running container keeps its logs and exit status.
 *
 * Commands: run, create, start, ps, inspect, logs, exec, stop, kill, rm, cp, pause, unpause,
 * stats, top, wait, rename; images, pull, push, import, load, save, export, commit, build,
 * tag, rmi; system prune; doctor; grade. `denobox COMMAND --help` documents each.
 *
 * Exit statuses follow Docker: the container command's own; 125 when denobox fails; 126
 * when the command cannot be executed; 127 when it is not found.
 *
 * @example Run the CLI in-process
 * ```ts ignore
 * import { main } from "denobox/cli";
 * const status = await main(["ps", "-a"]);
 * ```
 * @module
 */
export { main } from "./main.ts";
