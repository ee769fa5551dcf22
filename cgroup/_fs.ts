/**
 * cgroupfs I/O: every failure becomes a `SyscallError` naming the file (and the value written),
 * so "write("/sys/fs/cgroup/x/memory.max", "64M"): EINVAL" reads like the shell command that failed.
 * @module
 */
import { errnoNumber, SyscallError } from "denobox/libc";

/** Turns a Deno I/O error into a `SyscallError`; anything else is rethrown as is. */
export function toSyscallError(
  e: unknown,
  syscall: string,
  path: string,
  detail?: string,
): unknown {
  const code = (e as { code?: unknown })?.code;
  let errno: number;
  if (typeof code === "string" && /^E[A-Z0-9]+$/.test(code)) {
    try {
      errno = errnoNumber(code);
    } catch {
      return e;
    }
  } else {
    // Deno names only the common errnos (ERANGE arrives as a plain Error "(os error 34)").
    const m = /\(os error (\d+)\)/.exec(String((e as Error)?.message));
    if (!m) return e;
    errno = Number(m[1]);
  }
  return new SyscallError(
    syscall,
    errno,
    detail === undefined ? { path } : { path, detail },
  );
}

/** Reads a cgroup file. */
export function readText(path: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch (e) {
    throw toSyscallError(e, "read", path);
  }
}

/** Reads a cgroup file, or returns null when it does not exist (an absent controller or feature). */
export function readOptional(path: string): string | null {
  try {
    return Deno.readTextFileSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw toSyscallError(e, "read", path);
  }
}

/** Writes `value` to a cgroup file in one write(2), as the kernel wants it. */
export function writeText(path: string, value: string): void {
  try {
    Deno.writeTextFileSync(path, value, { create: false });
  } catch (e) {
    throw toSyscallError(e, "write", path, JSON.stringify(value));
  }
}

/** Whether `path` exists. */
export function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw toSyscallError(e, "stat", path);
  }
}

/** mkdir(2); returns false when it already existed and `existOk`. */
export function mkdir(path: string, existOk: boolean): boolean {
  try {
    Deno.mkdirSync(path, { mode: 0o755 });
    return true;
  } catch (e) {
    if (existOk && e instanceof Deno.errors.AlreadyExists) return false;
    throw toSyscallError(e, "mkdir", path);
  }
}

/** The child directories of `dir` (sub-cgroups), or none when it is gone. */
export function subdirs(dir: string): string[] {
  try {
    return [...Deno.readDirSync(dir)].filter((e) => e.isDirectory).map((e) =>
      `${dir}/${e.name}`
    );
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw toSyscallError(e, "opendir", dir);
  }
}

/** A promise that resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
