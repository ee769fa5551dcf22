import { ERRNO_TABLE } from "./_tables.ts";
import { nameOf, numberOf } from "./_table.ts";

// glibc's strerror() text for the errnos a sandbox meets; others fall back to the code name.
// "NAME text" lines in one string, searched when an error is made: nothing is built at import.
const MESSAGES = `
EPERM Operation not permitted
ENOENT No such file or directory
ESRCH No such process
EINTR Interrupted system call
EIO Input/output error
ENXIO No such device or address
E2BIG Argument list too long
ENOEXEC Exec format error
EBADF Bad file descriptor
ECHILD No child processes
EAGAIN Resource temporarily unavailable
ENOMEM Cannot allocate memory
EACCES Permission denied
EFAULT Bad address
ENOTBLK Block device required
EBUSY Device or resource busy
EEXIST File exists
EXDEV Invalid cross-device link
ENODEV No such device
ENOTDIR Not a directory
EISDIR Is a directory
EINVAL Invalid argument
ENFILE Too many open files in system
EMFILE Too many open files
ENOTTY Inappropriate ioctl for device
ETXTBSY Text file busy
EFBIG File too large
ENOSPC No space left on device
ESPIPE Illegal seek
EROFS Read-only file system
EMLINK Too many links
EPIPE Broken pipe
ERANGE Numerical result out of range
ENAMETOOLONG File name too long
ENOSYS Function not implemented
ENOTEMPTY Directory not empty
ELOOP Too many levels of symbolic links
ENODATA No data available
EOPNOTSUPP Operation not supported
EADDRINUSE Address already in use
EADDRNOTAVAIL Cannot assign requested address
ENETUNREACH Network is unreachable
ENOTCONN Transport endpoint is not connected
ENOBUFS No buffer space available
ENOTSOCK Socket operation on non-socket
EMSGSIZE Message too long
ECONNRESET Connection reset by peer
EHOSTUNREACH No route to host
ENOKEY Required key not available
ESTALE Stale file handle
ECANCELED Operation canceled
EOVERFLOW Value too large for defined data type
ECONNREFUSED Connection refused
ETIMEDOUT Connection timed out
EAFNOSUPPORT Address family not supported by protocol
EPROTONOSUPPORT Protocol not supported
EUSERS Too many users
EDQUOT Disk quota exceeded
`;

/** The symbolic name of an errno value (`1` → `"EPERM"`), or `"E<n>"` when unknown. */
export function errnoName(errno: number): string {
  return nameOf(ERRNO_TABLE, errno) ?? `E${errno}`;
}

/** The numeric value of an errno name (`"EPERM"` → `1`); throws a `RangeError` for unknown names. */
export function errnoNumber(name: string): number {
  const n = numberOf(ERRNO_TABLE, name);
  if (n === undefined) throw new RangeError(`Unknown errno name: ${name}`);
  return n;
}

/** A short human text for an errno (`"Operation not permitted"`), or its code name. */
export function errnoMessage(errno: number): string {
  const name = errnoName(errno);
  const at = MESSAGES.indexOf(`\n${name} `);
  if (at < 0) return name;
  const from = at + name.length + 2;
  return MESSAGES.slice(from, MESSAGES.indexOf("\n", from));
}

/** What a failed call was about, for the error message. */
export interface SyscallErrorInfo {
  /** The path the call acted on. */
  path?: string;
  /** The second path (mount target, rename destination). */
  dest?: string;
  /** The call's other subject, shown after the path: `"pid 42"`, `"fd 7"`. */
  detail?: string;
  /** What the user can do about it. */
  hint?: string;
  /** Outer steps, outermost first (`["container demo", "rootfs"]`). */
  context?: readonly string[];
}

/**
 * A failed kernel call, shaped like Node's `SystemError`: `syscall`, `errno`, `code`
 * (`"EPERM"`), `path`, a `context` trail that grows as the error rises, and an optional `hint`.
 *
 * @example Catch by code
 * ```ts
 * import { SyscallError } from "denobox/libc";
 * const err = new SyscallError("mount", 2, { path: "/nope" });
 * if (err.code === "ENOENT") console.log(err.message);
 * // mount("/nope"): ENOENT (No such file or directory)
 * ```
 */
export class SyscallError extends Error {
  /** Always `"SyscallError"`: the class name survives logging and structured cloning. */
  override name = "SyscallError";
  /** The call that failed, as its man page names it (`"pivot_root"`). */
  readonly syscall: string;
  /** The errno value. */
  readonly errno: number;
  /** The errno's symbolic name (`"EPERM"`). */
  readonly code: string;
  /** The path the call acted on. */
  readonly path: string | undefined;
  /** The second path, where there is one. */
  readonly dest: string | undefined;
  /** Another subject of the call (`"pid 42"`). */
  readonly detail: string | undefined;
  /** What the user can do about it. */
  readonly hint: string | undefined;
  /** Outer steps, outermost first. */
  readonly context: readonly string[];

  /** Makes an error for `syscall` failing with `errno`. */
  constructor(syscall: string, errno: number, info: SyscallErrorInfo = {}) {
    super("");
    this.syscall = syscall;
    this.errno = errno;
    this.code = errnoName(errno);
    this.path = info.path;
    this.dest = info.dest;
    this.detail = info.detail;
    this.hint = info.hint;
    this.context = info.context ?? [];
    this.message = this.#render();
  }

  #render(): string {
    const subjects = [this.path, this.dest].filter((s) => s !== undefined)
      .map((s) => JSON.stringify(s));
    if (this.detail !== undefined) subjects.push(this.detail);
    const prefix = this.context.map((c) => `${c}: `).join("");
    const hint = this.hint === undefined ? "" : `\nHint: ${this.hint}`;
    return `${prefix}${this.syscall}(${subjects.join(", ")}): ${this.code} (${
      errnoMessage(this.errno)
    })${hint}`;
  }

  /** A copy of this error with `label` added as the outermost context. */
  withContext(label: string): SyscallError {
    const e = new SyscallError(this.syscall, this.errno, {
      ...this.#info(),
      context: [label, ...this.context],
    });
    if (this.stack !== undefined) e.stack = this.stack;
    return e;
  }

  /** A copy of this error with a hint. */
  withHint(hint: string): SyscallError {
    const e = new SyscallError(this.syscall, this.errno, {
      ...this.#info(),
      hint,
    });
    if (this.stack !== undefined) e.stack = this.stack;
    return e;
  }

  #info(): SyscallErrorInfo {
    const info: SyscallErrorInfo = { context: this.context };
    if (this.path !== undefined) info.path = this.path;
    if (this.dest !== undefined) info.dest = this.dest;
    if (this.detail !== undefined) info.detail = this.detail;
    if (this.hint !== undefined) info.hint = this.hint;
    return info;
  }
}

/**
 * Runs `fn`; a `SyscallError` it throws gains `label` as context. Other errors pass unchanged.
 *
 * @example Add context
 * ```ts
 * import { SyscallError, withContext } from "denobox/libc";
 * try {
 *   withContext("rootfs", () => { throw new SyscallError("chdir", 2, { path: "/x" }); });
 * } catch (e) {
 *   console.log((e as Error).message); // rootfs: chdir("/x"): ENOENT (No such file or directory)
 * }
 * ```
 */
export function withContext<T>(label: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof SyscallError) throw e.withContext(label);
    throw e;
  }
}
