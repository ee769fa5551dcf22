import { ARCH } from "./_ffi.ts";
import { SYSCALLS_AARCH64, SYSCALLS_X86_64 } from "./_tables.ts";

/** Syscall tables by architecture: name → number. */
export const SYSCALL_TABLES: Readonly<
  Record<"x86_64" | "aarch64", Readonly<Record<string, number>>>
> = { x86_64: SYSCALLS_X86_64, aarch64: SYSCALLS_AARCH64 };

/**
 * The syscall number of `name` on `arch` (default: this machine's). Throws a `RangeError` when
 * the architecture has no such call (aarch64 has no `open`, `dup2`, `fork`...).
 *
 * @example Look up a number
 * ```ts
 * import { syscallNumber } from "denobox/libc";
 * console.log(syscallNumber("pivot_root", "x86_64")); // 155
 * console.log(syscallNumber("pivot_root", "aarch64")); // 41
 * ```
 */
export function syscallNumber(
  name: string,
  arch: "x86_64" | "aarch64" = ARCH,
): number {
  const n = SYSCALL_TABLES[arch][name];
  if (n === undefined) {
    throw new RangeError(`Unknown syscall on ${arch}: ${name}`);
  }
  return n;
}
