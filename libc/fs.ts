/**
 * Directory-fd file calls (`*at`, `f*`): what a layer unpacker needs to build a tree under a
 * directory it holds open, without ever following a symlink by accident. Each call is
 * synchronous and checked; a failure is a `SyscallError`.
 * @module
 */
import { errno, libc } from "./_ffi.ts";
import { errnoNumber } from "./error.ts";
import { check, checkBig } from "./_check.ts";
import { cstr } from "./memory.ts";
import { At } from "./constants.ts";

/** `S_IF*` file type bits of `st_mode`. */
export const FileType = {
  S_IFMT: 0o170000,
  S_IFSOCK: 0o140000,
  S_IFLNK: 0o120000,
  S_IFREG: 0o100000,
  S_IFBLK: 0o060000,
  S_IFDIR: 0o040000,
  S_IFCHR: 0o020000,
  S_IFIFO: 0o010000,
} as const;

/**
 * mkdirat(2).
 *
 * @example Call mkdirat
 * ```ts
 * import { At, mkdirat, unlinkat } from "denobox/libc";
 * const dir = Deno.makeTempDirSync();
 * mkdirat(At.AT_FDCWD, `${dir}/sub`, 0o755);
 * unlinkat(At.AT_FDCWD, `${dir}/sub`, { dir: true });
 * Deno.removeSync(dir);
 * ```
 */
export function mkdirat(dirFd: number, path: string, mode: number): void {
  check(libc.mkdirat(dirFd, cstr(path, "path"), mode), "mkdirat", { path });
}

/**
 * unlinkat(2); `dir: true` is AT_REMOVEDIR (an empty directory).
 *
 * @example Call unlinkat
 * ```ts
 * import { At, unlinkat } from "denobox/libc";
 * const f = Deno.makeTempFileSync();
 * unlinkat(At.AT_FDCWD, f);
 * ```
 */
export function unlinkat(
  dirFd: number,
  path: string,
  options: { dir?: boolean } = {},
): void {
  check(
    libc.unlinkat(
      dirFd,
      cstr(path, "path"),
      options.dir ? At.AT_REMOVEDIR : 0,
    ),
    "unlinkat",
    { path },
  );
}

/**
 * mknodat(2): `mode` holds the file type (`FileType.S_IFCHR`...) and permission bits; `dev` is
 * `makedev(major, minor)` (see `makedev`).
 *
 * @example A FIFO
 * ```ts
 * import { At, FileType, mknodat } from "denobox/libc";
 * const dir = Deno.makeTempDirSync();
 * mknodat(At.AT_FDCWD, `${dir}/fifo`, FileType.S_IFIFO | 0o600, 0n);
 * Deno.removeSync(dir, { recursive: true });
 * ```
 */
export function mknodat(
  dirFd: number,
  path: string,
  mode: number,
  dev: bigint,
): void {
  check(libc.mknodat(dirFd, cstr(path, "path"), mode, dev), "mknodat", {
    path,
  });
}

/**
 * glibc's `makedev(major, minor)`.
 *
 * @example Call makedev
 * ```ts
 * import { makedev } from "denobox/libc";
 * console.log(makedev(1, 3)); // 259n
 * ```
 */
export function makedev(major: number, minor: number): bigint {
  const ma = BigInt(major), mi = BigInt(minor);
  return ((ma & 0xfffff000n) << 32n) | ((ma & 0xfffn) << 8n) |
    ((mi & 0xffffff00n) << 12n) | (mi & 0xffn);
}

/**
 * symlinkat(2): makes `path` a symlink holding `target` (never resolved here).
 *
 * @example Call symlinkat
 * ```ts
 * import { At, symlinkat } from "denobox/libc";
 * const dir = Deno.makeTempDirSync();
 * symlinkat("/etc/passwd", At.AT_FDCWD, `${dir}/l`);
 * console.log(Deno.readLinkSync(`${dir}/l`)); // /etc/passwd
 * Deno.removeSync(dir, { recursive: true });
 * ```
 */
export function symlinkat(target: string, dirFd: number, path: string): void {
  check(
    libc.symlinkat(cstr(target, "symlink target"), dirFd, cstr(path, "path")),
    "symlinkat",
    { path, dest: target },
  );
}

/**
 * linkat(2) without AT_SYMLINK_FOLLOW: a hard link to `oldPath` itself (a symlink stays a
 * symlink).
 *
 * @example Call linkat
 * ```ts
 * import { At, linkat } from "denobox/libc";
 * const dir = Deno.makeTempDirSync();
 * Deno.writeTextFileSync(`${dir}/a`, "x");
 * linkat(At.AT_FDCWD, `${dir}/a`, At.AT_FDCWD, `${dir}/b`);
 * console.log(Deno.readTextFileSync(`${dir}/b`)); // x
 * Deno.removeSync(dir, { recursive: true });
 * ```
 */
export function linkat(
  oldDirFd: number,
  oldPath: string,
  newDirFd: number,
  newPath: string,
): void {
  check(
    libc.linkat(
      oldDirFd,
      cstr(oldPath, "path"),
      newDirFd,
      cstr(newPath, "path"),
      0,
    ),
    "linkat",
    { path: oldPath, dest: newPath },
  );
}

/**
 * fchownat(2) with AT_SYMLINK_NOFOLLOW (a symlink's own owner). `-1` keeps an id.
 *
 * @example Call fchownat
 * ```ts ignore
 * import { At, fchownat } from "denobox/libc";
 * fchownat(At.AT_FDCWD, "/tmp/link", 1000, 1000);
 * ```
 */
export function fchownat(
  dirFd: number,
  path: string,
  uid: number,
  gid: number,
): void {
  check(
    libc.fchownat(
      dirFd,
      cstr(path, "path"),
      uid >>> 0,
      gid >>> 0,
      At.AT_SYMLINK_NOFOLLOW,
    ),
    "fchownat",
    { path, detail: `${uid}:${gid}` },
  );
}

/**
 * fchown(2) of an open file.
 *
 * @example Call fchown
 * ```ts ignore
 * import { fchown, open } from "denobox/libc";
 * using fd = open("/tmp/f");
 * fchown(fd.fd, 1000, 1000);
 * ```
 */
export function fchown(fd: number, uid: number, gid: number): void {
  check(libc.fchown(fd, uid >>> 0, gid >>> 0), "fchown", {
    detail: `fd ${fd}, ${uid}:${gid}`,
  });
}

/**
 * fchmod(2) of an open file (all 12 permission bits, setuid included).
 *
 * @example Call fchmod
 * ```ts
 * import { fchmod, open } from "denobox/libc";
 * const f = Deno.makeTempFileSync();
 * using fd = open(f);
 * fchmod(fd.fd, 0o600);
 * console.log((Deno.statSync(f).mode! & 0o777).toString(8)); // 600
 * Deno.removeSync(f);
 * ```
 */
export function fchmod(fd: number, mode: number): void {
  check(libc.fchmod(fd, mode & 0o7777), "fchmod", { detail: `fd ${fd}` });
}

function timespecs(atimeMs: number, mtimeMs: number): Uint8Array<ArrayBuffer> {
  const t = new BigInt64Array(4);
  for (const [i, ms] of [[0, atimeMs], [2, mtimeMs]] as const) {
    const sec = Math.floor(ms / 1000);
    t[i] = BigInt(sec);
    t[i + 1] = BigInt(Math.round((ms - sec * 1000) * 1e6));
  }
  return new Uint8Array(t.buffer);
}

/**
 * futimens(3): sets an open file's access and modification times (milliseconds since the
 * epoch, fractions kept to the nanosecond where a double can).
 *
 * @example Call futimens
 * ```ts
 * import { futimens, open } from "denobox/libc";
 * const f = Deno.makeTempFileSync();
 * using fd = open(f);
 * futimens(fd.fd, 0, 1_000_000);
 * console.log(Deno.statSync(f).mtime!.getTime()); // 1000000
 * Deno.removeSync(f);
 * ```
 */
export function futimens(fd: number, atimeMs: number, mtimeMs: number): void {
  check(libc.futimens(fd, timespecs(atimeMs, mtimeMs)), "futimens", {
    detail: `fd ${fd}`,
  });
}

/**
 * utimensat(2) with AT_SYMLINK_NOFOLLOW (a symlink's own times).
 *
 * @example Call utimensat
 * ```ts
 * import { At, utimensat } from "denobox/libc";
 * const dir = Deno.makeTempDirSync();
 * Deno.symlinkSync("/nowhere", `${dir}/l`);
 * utimensat(At.AT_FDCWD, `${dir}/l`, 0, 5000);
 * console.log(Deno.lstatSync(`${dir}/l`).mtime!.getTime()); // 5000
 * Deno.removeSync(dir, { recursive: true });
 * ```
 */
export function utimensat(
  dirFd: number,
  path: string,
  atimeMs: number,
  mtimeMs: number,
): void {
  check(
    libc.utimensat(
      dirFd,
      cstr(path, "path"),
      timespecs(atimeMs, mtimeMs),
      At.AT_SYMLINK_NOFOLLOW,
    ),
    "utimensat",
    { path },
  );
}

/**
 * fsetxattr(2) on an open file (works on O_PATH-less fds only, as the kernel requires).
 *
 * @example Call fsetxattr
 * ```ts ignore
 * import { fsetxattr, open } from "denobox/libc";
 * using fd = open("/tmp/f");
 * fsetxattr(fd.fd, "user.note", new TextEncoder().encode("hi"));
 * ```
 */
export function fsetxattr(fd: number, name: string, value: Uint8Array): void {
  const v = new Uint8Array(value);
  check(
    libc.fsetxattr(fd, cstr(name, "xattr name"), v, BigInt(v.length), 0),
    "fsetxattr",
    { detail: `fd ${fd}, ${name}` },
  );
}

/**
 * lsetxattr(2): sets an extended attribute on `path` itself (not on a symlink's target).
 *
 * @example Call lsetxattr
 * ```ts ignore
 * import { lsetxattr } from "denobox/libc";
 * lsetxattr("/tmp/dir", "trusted.overlay.opaque", new TextEncoder().encode("y"));
 * ```
 */
export function lsetxattr(path: string, name: string, value: Uint8Array): void {
  const v = new Uint8Array(value);
  check(
    libc.lsetxattr(
      cstr(path, "path"),
      cstr(name, "xattr name"),
      v,
      BigInt(v.length),
      0,
    ),
    "lsetxattr",
    { path, detail: name },
  );
}

/**
 * lgetxattr(2): an extended attribute of `path` itself, or `null` when it has none by that
 * name (ENODATA) or the filesystem has none at all (EOPNOTSUPP).
 *
 * @example Call lgetxattr
 * ```ts
 * import { lgetxattr } from "denobox/libc";
 * console.log(lgetxattr("/", "user.denobox-none")); // null
 * ```
 */
export function lgetxattr(path: string, name: string): Uint8Array | null {
  const p = cstr(path, "path"), n = cstr(name, "xattr name");
  for (let size = 256;; size *= 4) {
    const buf = new Uint8Array(size);
    const ret = libc.lgetxattr(p, n, buf, BigInt(size));
    if (ret >= 0n) return buf.slice(0, Number(ret));
    try {
      checkBig(ret, "lgetxattr", { path, detail: name });
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code === "ENODATA" || code === "EOPNOTSUPP") return null;
      if (code === "ERANGE" && size < 1 << 20) continue;
      throw e;
    }
  }
}

/**
 * llistxattr(2): the names of `path`'s own extended attributes (empty where unsupported).
 *
 * @example Call llistxattr
 * ```ts
 * import { llistxattr } from "denobox/libc";
 * console.log(Array.isArray(llistxattr("/"))); // true
 * ```
 */
export function llistxattr(path: string): string[] {
  const p = cstr(path, "path");
  for (let size = 1024;; size *= 4) {
    const buf = new Uint8Array(size);
    const ret = libc.llistxattr(p, buf, BigInt(size));
    if (ret >= 0n) {
      return new TextDecoder().decode(buf.subarray(0, Number(ret))).split("\0")
        .filter(Boolean);
    }
    try {
      checkBig(ret, "llistxattr", { path });
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code === "EOPNOTSUPP") return [];
      if (code === "ERANGE" && size < 1 << 20) continue;
      throw e;
    }
  }
}

/**
 * readlinkat(2): a symlink's target.
 *
 * @example Call readlinkat
 * ```ts
 * import { At, readlinkat } from "denobox/libc";
 * console.log(readlinkat(At.AT_FDCWD, "/proc/self").length > 0); // true
 * ```
 */
export function readlinkat(dirFd: number, path: string): string {
  const buf = new Uint8Array(4096);
  const n = checkBig(
    libc.readlinkat(dirFd, cstr(path, "path"), buf, BigInt(buf.length)),
    "readlinkat",
    { path },
  );
  return new TextDecoder().decode(buf.subarray(0, Number(n)));
}

/** What `statxat` reports (the fields a tree walker needs). */
export interface StatxInfo {
  /** `st_mode`: type and permission bits. */
  mode: number;
  /** Owner. */
  uid: number;
  /** Group. */
  gid: number;
  /** Size in bytes. */
  size: number;
  /** Link count. */
  nlink: number;
  /** Inode number. */
  ino: bigint;
  /** Device major:minor of a device node. */
  rdevMajor: number;
  /** Minor number of a device node. */
  rdevMinor: number;
  /** Modification time, ms since the epoch. */
  mtimeMs: number;
  /** Status change time, ms since the epoch. */
  ctimeMs: number;
  /** Major number of the device holding the file. */
  devMajor: number;
  /** Minor number of the device holding the file. */
  devMinor: number;
}

// struct statx (linux/stat.h), the same on every architecture.
const STATX = {
  size: 256,
  stx_nlink: 16,
  stx_uid: 20,
  stx_gid: 24,
  stx_mode: 28,
  stx_ino: 32,
  stx_size: 40,
  stx_ctime: 96,
  stx_mtime: 112,
  stx_rdev_major: 128,
  stx_rdev_minor: 132,
  stx_dev_major: 136,
  stx_dev_minor: 140,
} as const;
const STATX_BASIC_STATS = 0x7ff;

/**
 * statx(2) of `path` relative to `dirFd`, never following a final symlink
 * (AT_SYMLINK_NOFOLLOW); `null` when nothing is there (ENOENT).
 *
 * @example Call statxat
 * ```ts
 * import { At, FileType, statxat } from "denobox/libc";
 * const st = statxat(At.AT_FDCWD, "/");
 * console.log((st!.mode & FileType.S_IFMT) === FileType.S_IFDIR); // true
 * ```
 */
export function statxat(dirFd: number, path: string): StatxInfo | null {
  const buf = new Uint8Array(STATX.size);
  const ret = libc.statx(
    dirFd,
    path === "" ? new Uint8Array(1) : cstr(path, "path"),
    At.AT_SYMLINK_NOFOLLOW | (path === "" ? At.AT_EMPTY_PATH : 0),
    STATX_BASIC_STATS,
    buf,
  );
  // ENOENT is an answer, not an error: told from errno, so nothing is thrown (the first
  // exception of a process costs over a millisecond, and spawn asks about absent paths)
  if (ret === -1 && errno() === errnoNumber("ENOENT")) return null;
  check(ret, "statx", { path });
  const v = new DataView(buf.buffer);
  return {
    mode: v.getUint16(STATX.stx_mode, true),
    uid: v.getUint32(STATX.stx_uid, true),
    gid: v.getUint32(STATX.stx_gid, true),
    size: Number(v.getBigUint64(STATX.stx_size, true)),
    nlink: v.getUint32(STATX.stx_nlink, true),
    ino: v.getBigUint64(STATX.stx_ino, true),
    rdevMajor: v.getUint32(STATX.stx_rdev_major, true),
    rdevMinor: v.getUint32(STATX.stx_rdev_minor, true),
    mtimeMs: Number(v.getBigInt64(STATX.stx_mtime, true)) * 1000 +
      v.getUint32(STATX.stx_mtime + 8, true) / 1e6,
    ctimeMs: Number(v.getBigInt64(STATX.stx_ctime, true)) * 1000 +
      v.getUint32(STATX.stx_ctime + 8, true) / 1e6,
    devMajor: v.getUint32(STATX.stx_dev_major, true),
    devMinor: v.getUint32(STATX.stx_dev_minor, true),
  };
}

/**
 * Writes all of `data` to `fd` (looping over short writes).
 *
 * @example Call writeAll
 * ```ts
 * import { open, OpenFlag, writeAll } from "denobox/libc";
 * const f = Deno.makeTempFileSync();
 * using fd = open(f, { flags: OpenFlag.O_WRONLY });
 * writeAll(fd.fd, new TextEncoder().encode("hi"));
 * console.log(Deno.readTextFileSync(f)); // hi
 * Deno.removeSync(f);
 * ```
 */
export function writeAll(fd: number, data: Uint8Array): void {
  let off = 0;
  const buf = data as Uint8Array<ArrayBuffer>;
  while (off < buf.length) {
    const chunk = off === 0 ? buf : buf.subarray(off);
    const n = libc.write(fd, chunk, BigInt(chunk.length));
    if (n === -1n) {
      try {
        checkBig(n, "write", { detail: `fd ${fd}` });
      } catch (e) {
        if ((e as { code?: string }).code === "EINTR") continue;
        throw e;
      }
    }
    off += Number(n);
  }
}

/**
 * fchmodat(2) without flags (Linux cannot change a symlink's own mode): sets all 12 permission
 * bits, umask not applied.
 *
 * @example Call fchmodat
 * ```ts
 * import { At, fchmodat } from "denobox/libc";
 * const f = Deno.makeTempFileSync();
 * fchmodat(At.AT_FDCWD, f, 0o640);
 * console.log((Deno.statSync(f).mode! & 0o777).toString(8)); // 640
 * Deno.removeSync(f);
 * ```
 */
export function fchmodat(dirFd: number, path: string, mode: number): void {
  check(
    libc.fchmodat(dirFd, cstr(path, "path"), mode & 0o7777, 0),
    "fchmodat",
    {
      path,
    },
  );
}
