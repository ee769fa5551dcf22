import { ARCH, type SupportedArch } from "./_ffi.ts";
import { AARCH64_TABLE, X86_64_TABLE } from "./_tables.ts";
import { parseTable } from "./_table.ts";

const TEXTS: Readonly<Record<SupportedArch, string>> = {
  x86_64: X86_64_TABLE,
  aarch64: AARCH64_TABLE,
};
const parsed: Partial<Record<SupportedArch, Readonly<Record<string, number>>>> =
  {};

/** The syscall table of `arch`, parsed the first time it is asked for. */
function tableOf(arch: SupportedArch): Readonly<Record<string, number>> {
  if (!Object.hasOwn(TEXTS, arch)) {
    throw new RangeError(`Unknown architecture: ${arch}`);
  }
  return parsed[arch] ??= parseTable(TEXTS[arch]);
}

/**
 * Syscall tables by architecture: name → number. Each is built on first access: a process
 * only ever needs its own architecture's, and many need none.
 */
export const SYSCALL_TABLES: Readonly<
  Record<"x86_64" | "aarch64", Readonly<Record<string, number>>>
> = {
  get x86_64() {
    return tableOf("x86_64");
  },
  get aarch64() {
    return tableOf("aarch64");
  },
};

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
  const table = tableOf(arch);
  const n = Object.hasOwn(table, name) ? table[name] : undefined;
  if (n === undefined) {
    throw new RangeError(`Unknown syscall on ${arch}: ${name}`);
  }
  return n;
}
