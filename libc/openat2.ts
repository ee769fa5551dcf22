/**
 * Confined path resolution: openat2(2) with `RESOLVE_*` rules, what a copy into or out of an
 * untrusted tree (a container's root) needs.
 * @module
 */
import { libc } from "./_ffi.ts";
import { checkBig } from "./_check.ts";
import { cstr } from "./memory.ts";
import { OwnedFd } from "./fd.ts";
import { At, OpenFlag } from "./constants.ts";
import { syscallNumber } from "./syscall.ts";

/** `RESOLVE_*` flags of openat2(2). */
export const Resolve = {
  RESOLVE_NO_XDEV: 0x01,
  RESOLVE_NO_MAGICLINKS: 0x02,
  RESOLVE_NO_SYMLINKS: 0x04,
  RESOLVE_BENEATH: 0x08,
  RESOLVE_IN_ROOT: 0x10,
} as const;

/** Options of `openat2()`. */
export interface OpenAt2Options {
  /** Raw `O_*` flags; O_CLOEXEC is always added. Default O_RDONLY. */
  flags?: number;
  /** Mode for O_CREAT (default 0o644); ignored without O_CREAT. */
  mode?: number;
  /** `RESOLVE_*` bits (see `Resolve`). */
  resolve?: number;
}

/**
 * openat2(2): opens `path` relative to `dirFd` with resolution rules. With
 * `Resolve.RESOLVE_IN_ROOT`, `dirFd` acts as the root directory for the whole walk: absolute
 * symlinks and `..` stay inside it, so a path in an untrusted tree (a container's rootfs) can
 * never lead out of it.
 *
 * @example Open a path confined to a directory
 * ```ts
 * import { open, openat2, OpenFlag, Resolve } from "denobox/libc";
 * using root = open("/", { flags: OpenFlag.O_PATH | OpenFlag.O_DIRECTORY });
 * using etc = openat2(root.fd, "/etc", { flags: OpenFlag.O_PATH, resolve: Resolve.RESOLVE_IN_ROOT });
 * console.log(etc.fd > 2); // true
 * ```
 */
export function openat2(
  dirFd: number,
  path: string,
  options: OpenAt2Options = {},
): OwnedFd {
  const flags = options.flags ?? OpenFlag.O_RDONLY;
  // openat2 rejects a mode (EINVAL) unless the call may create a file.
  const mode = flags & OpenFlag.O_CREAT ? options.mode ?? 0o644 : 0;
  const how = new BigUint64Array([
    BigInt(flags | OpenFlag.O_CLOEXEC),
    BigInt(mode),
    BigInt(options.resolve ?? 0),
  ]);
  const p = cstr(path, "path");
  const ptr = (b: Uint8Array<ArrayBuffer>) =>
    BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(b)));
  const fd = checkBig(
    libc.syscall4(
      BigInt(syscallNumber("openat2")),
      BigInt(dirFd === At.AT_FDCWD ? At.AT_FDCWD : dirFd),
      ptr(p),
      ptr(new Uint8Array(how.buffer)),
      BigInt(how.byteLength),
    ),
    "openat2",
    { path },
  );
  return new OwnedFd(Number(fd));
}
