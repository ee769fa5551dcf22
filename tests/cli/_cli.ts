/**
 * What the CLI tests share: the `denobox` launcher, running it against a store of the test's
 * own (`--root`), and polling for a state the CLI reaches asynchronously.
 */
import { join } from "node:path";
import {
  REPO,
  runCommand,
  type RunCommandOptions,
  type ScriptResult,
} from "../_helpers.ts";

/** The `denobox` launcher at the repository's root. */
export const DENOBOX: string = join(REPO, "denobox");

/** Runs `denobox --root ROOT ARGS...` (stdin /dev/null unless given) to its end. */
export async function cli(
  root: string,
  args: string[],
  options: RunCommandOptions = {},
): Promise<ScriptResult> {
  return await runCommand(DENOBOX, ["--root", root, ...args], options);
}

/** Polls `fn` every 25 ms until it returns non-null (at most 400 times); throws naming `what`. */
export async function until<T>(
  what: string,
  fn: () => Promise<T | null>,
): Promise<T> {
  for (let i = 0; i < 400; i++) {
    const v = await fn();
    if (v !== null) return v;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`Timed out waiting for ${what}`);
}
