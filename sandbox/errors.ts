import { errnoMessage, errnoName } from "denobox/libc";

/** What a `SandboxSetupError` carries. */
export interface SandboxSetupErrorInfo {
  /** The failing step's label: `pivot_root("/srv/box/rootfs")`. */
  step: string;
  /** The errno value. */
  errno: number;
  /** The path the step acted on. */
  path?: string | undefined;
  /** The step's index in its program (-1 when it failed in the parent, e.g. clone). */
  index?: number;
  /** What the user can do about it. */
  hint?: string | undefined;
}

/**
 * A sandbox could not be set up: a step of its program (or the clone that starts it) failed.
 * The message names the step and the errno code: `pivot_root("/srv/box/rootfs"): EINVAL
 * (Invalid argument)`. A command that cannot be found fails at its `execve` step with
 * `code === "ENOENT"` (the child exits with status 127).
 *
 * @example Catch a missing command
 * ```ts
 * import { SandboxSetupError } from "denobox/sandbox";
 * const e = new SandboxSetupError({ step: 'execve("/bin/nope")', errno: 2, path: "/bin/nope" });
 * console.log(e.code, e.message); // ENOENT execve("/bin/nope"): ENOENT (No such file or directory)
 * ```
 */
export class SandboxSetupError extends Error {
  /** Always `"SandboxSetupError"`: the class name survives logging and structured cloning. */
  override name = "SandboxSetupError";
  /** The failing step's label. */
  readonly step: string;
  /** The errno's symbolic name (`"EINVAL"`). */
  readonly code: string;
  /** The errno value. */
  readonly errno: number;
  /** The path the step acted on, if any. */
  readonly path: string | undefined;
  /** The step's index in its program (-1 for failures in the parent). */
  readonly index: number;
  /** What the user can do about it. */
  readonly hint: string | undefined;

  /** Makes the error for a failed step. */
  constructor(info: SandboxSetupErrorInfo) {
    const code = errnoName(info.errno);
    super(
      `${info.step}: ${code} (${errnoMessage(info.errno)})${
        info.hint ? `\nHint: ${info.hint}` : ""
      }`,
    );
    this.step = info.step;
    this.code = code;
    this.errno = info.errno;
    this.path = info.path;
    this.index = info.index ?? -1;
    this.hint = info.hint;
  }
}
