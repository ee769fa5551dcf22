import { errno } from "./_ffi.ts";
import { SyscallError, type SyscallErrorInfo } from "./error.ts";

/**
 * The single checked-call helper: a `-1` result becomes a `SyscallError` with the errno read
 * at once (before any other libc call can overwrite it).
 */
export function check(
  ret: number,
  syscall: string,
  info?: SyscallErrorInfo,
): number {
  if (ret === -1) throw new SyscallError(syscall, errno(), info);
  return ret;
}

/** `check` for calls whose result is a 64-bit integer (`syscall`, `read`, `write`). */
export function checkBig(
  ret: bigint,
  syscall: string,
  info?: SyscallErrorInfo,
): bigint {
  if (ret === -1n) throw new SyscallError(syscall, errno(), info);
  return ret;
}
