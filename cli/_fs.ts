/**
 * File-system questions the CLI asks itself. Pure Deno APIs only: `ps` and the other quick
 * commands load this without denobox/libc (its FFI set-up costs start-up time).
 * @module
 */

/** Whether anything is at `path`, a dangling symlink included (lstat; any error means no). */
export function exists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}
