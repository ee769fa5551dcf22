/**
 * Layer application: unpacks a (possibly hostile) layer tarball into a directory so that
 * nothing is ever created, changed or removed outside it.
 *
 * How: the target is held open as a directory fd; every parent directory is opened with
 * openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV), so symlinks and `..`
 * stay inside the target whatever they say; each entry is then created with a single `*at`
 * call on its own name (O_EXCL | O_NOFOLLOW for files), so a symlink already in place is
 * replaced, never written through. Names that are absolute or hold `..` are refused.
 * @module
 */
import {
  fchmod,
  fchmodat,
  fchown,
  fchownat,
  FileType,
  fsetxattr,
  futimens,
  ids,
  linkat,
  lsetxattr,
  makedev,
  mkdirat,
  mknodat,
  open,
  openat2,
  OpenFlag,
  type OwnedFd,
  Resolve,
  statxat,
  symlinkat,
  SyscallError,
  unlinkat,
  utimensat,
  writeAll,
} from "denobox/libc";
import { type ByteSource, decompress, Hasher } from "./_stream.ts";

export type { ByteSource } from "./_stream.ts";
import { type TarEntry, TarReader, type TarSink } from "./tar.ts";

/** One range of an id map: container ids `containerId..+size` are host ids `hostId..+size`. */
export interface IdMapEntry {
  /** First id inside the container. */
  containerId: number;
  /** First id on the host. */
  hostId: number;
  /** Number of ids. */
  size: number;
}

/** uid and gid maps used to shift ownership (ids outside them become 65534, "nobody"). */
export interface IdMapping {
  /** uid ranges. */
  uidMap: readonly IdMapEntry[];
  /** gid ranges. */
  gidMap: readonly IdMapEntry[];
}

/** Options of `applyLayer`. */
export interface ApplyOptions {
  /**
   * `"apply"` (default): whiteouts delete what they name in the target (a flat rootfs).
   * `"overlay"`: whiteouts are stored the way overlayfs reads them (a 0/0 character device,
   * the `trusted.overlay.opaque` / `user.overlay.opaque` xattr), for a layer directory that
   * becomes a lowerdir.
   */
  whiteouts?: "apply" | "overlay";
  /** Clear setuid/setgid bits of files. Default false. */
  dropSetuid?: boolean;
  /** Device nodes: created (default as root), skipped (default otherwise) or an error. */
  devices?: "create" | "skip" | "error";
  /**
   * Ownership: kept as archived (default as root), ignored (files belong to the caller:
   * default otherwise), or shifted through an id map.
   */
  owners?: "preserve" | "ignore" | IdMapping;
  /** Apply PAX xattrs (default true). `trusted.overlay.*`/`user.overlay.*` are always skipped. */
  xattrs?: boolean;
}

/** What `applyLayer` did. */
export interface ApplyResult {
  /** sha256 of the uncompressed tar stream (the layer's DiffID). */
  diffId: string;
  /** Size of the uncompressed tar stream. */
  size: number;
  /** Entries read. */
  entries: number;
  /** Entries skipped on purpose, with the reason (devices when rootless, ...). */
  skipped: { name: string; reason: string }[];
}

/**
 * A layer entry refused because it would reach outside the target, or is malformed.
 *
 * @example Catch a hostile entry
 * ```ts
 * import { applyLayer, LayerError, TarWriter } from "denobox/image";
 * const w = new TarWriter();
 * w.add({ name: "../escape" }, new Uint8Array(1));
 * const dir = await Deno.makeTempDir();
 * try {
 *   await applyLayer(dir, w.finish());
 * } catch (e) {
 *   if (e instanceof LayerError) console.log(e.entry); // ../escape
 * }
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class LayerError extends Error {
  /** Always `"LayerError"`: the class name survives logging and structured cloning. */
  override name = "LayerError";
  /** The entry's name as archived. */
  readonly entry: string;
  /** Makes an error about `entry`. */
  constructor(entry: string, message: string, options?: ErrorOptions) {
    super(
      `Cannot apply layer entry ${JSON.stringify(entry)}: ${message}`,
      options,
    );
    this.entry = entry;
  }
}

const DIR_FLAGS = OpenFlag.O_PATH | OpenFlag.O_DIRECTORY;
const IN_ROOT = Resolve.RESOLVE_IN_ROOT | Resolve.RESOLVE_NO_MAGICLINKS |
  Resolve.RESOLVE_NO_XDEV;
const FILE_FLAGS = OpenFlag.O_WRONLY | OpenFlag.O_CREAT | OpenFlag.O_EXCL |
  OpenFlag.O_NOFOLLOW;
const enc = new TextEncoder();
const Y = enc.encode("y");

const code = (e: unknown) => e instanceof SyscallError ? e.code : undefined;

/** Splits a member name into clean components; absolute names and `..` are refused. */
export function cleanName(name: string): string {
  if (name.startsWith("/")) throw new LayerError(name, "absolute path");
  const parts: string[] = [];
  for (const p of name.split("/")) {
    if (p === "" || p === ".") continue;
    if (p === "..") throw new LayerError(name, "path holds '..'");
    parts.push(p);
  }
  return parts.join("/");
}

function split(rel: string): [string, string] {
  const i = rel.lastIndexOf("/");
  return i < 0 ? ["", rel] : [rel.slice(0, i), rel.slice(i + 1)];
}

function mapId(map: readonly IdMapEntry[], id: number): number {
  for (const m of map) {
    if (id >= m.containerId && id < m.containerId + m.size) {
      return m.hostId + (id - m.containerId);
    }
  }
  return 65534;
}

function allowedXattr(name: string, root: boolean): boolean {
  if (name.startsWith("trusted.overlay.") || name.startsWith("user.overlay.")) {
    return false;
  }
  if (name.startsWith("user.")) return true;
  if (name === "security.capability") return root;
  return name.startsWith("trusted.") && root;
}

/**
 * The synchronous core: a `TarSink` that writes into an open target directory. Private to
 * the image folder; `applyLayer` drives it.
 */
export class LayerWriter implements TarSink, Disposable {
  #root: OwnedFd;
  #dirs = new Map<string, OwnedFd>();
  #file: OwnedFd | null = null;
  #cur: TarEntry | null = null;
  #deferred: { rel: string; mode: number; mtimeMs: number }[] = [];
  #created: Set<string> | null;
  #overlay: boolean;
  #isRoot: boolean;
  #opts: ApplyOptions;
  #devices: "create" | "skip" | "error";
  #owners: "preserve" | "ignore" | IdMapping;
  entries = 0;
  skipped: { name: string; reason: string }[] = [];

  /** Opens `target` (an existing directory). */
  constructor(target: string, options: ApplyOptions = {}) {
    this.#root = open(target, {
      flags: OpenFlag.O_RDONLY | OpenFlag.O_DIRECTORY,
    });
    this.#opts = options;
    this.#overlay = options.whiteouts === "overlay";
    this.#created = this.#overlay ? null : new Set();
    this.#isRoot = ids().euid === 0;
    this.#devices = options.devices ?? (this.#isRoot ? "create" : "skip");
    this.#owners = options.owners ?? (this.#isRoot ? "preserve" : "ignore");
  }

  #skip(name: string, reason: string): void {
    if (this.skipped.length < 1000) this.skipped.push({ name, reason });
  }

  #dropDirs(): void {
    for (const fd of this.#dirs.values()) fd.close();
    this.#dirs.clear();
  }

  // The O_PATH fd of directory `rel`, resolved inside the root; created (0700, metadata
  // later) when missing and `create` is set.
  #dir(rel: string, name: string, create = true): number | null {
    if (rel === "") return this.#root.fd;
    const hit = this.#dirs.get(rel);
    if (hit !== undefined) return hit.fd;
    let fd: OwnedFd;
    try {
      fd = openat2(this.#root.fd, rel, { flags: DIR_FLAGS, resolve: IN_ROOT });
    } catch (e) {
      const c = code(e);
      if (c === "ENOENT" && create) {
        const [p, b] = split(rel);
        const pfd = this.#dir(p, name)!;
        try {
          mkdirat(pfd, b, 0o755);
          this.#created?.add(rel);
        } catch (e2) {
          if (code(e2) !== "EEXIST") throw e2;
        }
        try {
          fd = openat2(this.#root.fd, rel, {
            flags: DIR_FLAGS,
            resolve: IN_ROOT,
          });
        } catch (e3) {
          if (code(e3) !== "ENOENT" && code(e3) !== "ENOTDIR") throw e3;
          throw new LayerError(
            name,
            `its parent ${rel} is a symlink to a missing directory`,
          );
        }
      } else if (c === "ENOENT") {
        return null;
      } else if (c === "ENOTDIR") {
        throw new LayerError(name, `a parent of it is not a directory`);
      } else if (c === "EXDEV" || c === "ELOOP") {
        throw new LayerError(
          name,
          `its parent cannot be resolved inside the root (${c})`,
        );
      } else throw e;
    }
    if (this.#dirs.size >= 256) this.#dropDirs();
    this.#dirs.set(rel, fd);
    return fd.fd;
  }

  // Removes whatever is at pfd/base (a directory recursively, never following symlinks).
  #remove(pfd: number, base: string): void {
    const st = statxat(pfd, base);
    if (st === null) return;
    if ((st.mode & FileType.S_IFMT) === FileType.S_IFDIR) {
      this.#dropDirs();
      // remove_dir_all opens each level with O_NOFOLLOW; the /proc/self/fd prefix only
      // names the parent we hold.
      Deno.removeSync(`/proc/self/fd/${pfd}/${base}`, { recursive: true });
    } else {
      unlinkat(pfd, base);
    }
  }

  #create<T>(pfd: number, base: string, make: () => T): T {
    try {
      return make();
    } catch (e) {
      if (code(e) !== "EEXIST") throw e;
      this.#remove(pfd, base);
      return make();
    }
  }

  #owner(uid: number, gid: number): [number, number] | null {
    const o = this.#owners;
    if (o === "ignore") return null;
    if (o === "preserve") return [uid, gid];
    return [mapId(o.uidMap, uid), mapId(o.gidMap, gid)];
  }

  #xattrs(e: TarEntry, set: (k: string, v: Uint8Array) => void): void {
    if (this.#opts.xattrs === false) return;
    for (const [k, v] of Object.entries(e.xattrs)) {
      if (!allowedXattr(k, this.#isRoot)) {
        this.#skip(e.name, `xattr ${k} not allowed`);
        continue;
      }
      try {
        set(k, v);
      } catch (err) {
        const c = code(err);
        if (c !== "EPERM" && c !== "EOPNOTSUPP" && c !== "EACCES") throw err;
        this.#skip(e.name, `xattr ${k}: ${c}`);
      }
    }
  }

  #chown(e: TarEntry, fn: (uid: number, gid: number) => void): void {
    const o = this.#owner(e.uid, e.gid);
    if (o === null) return;
    try {
      fn(o[0], o[1]);
    } catch (err) {
      if (code(err) !== "EPERM" && code(err) !== "EINVAL") throw err;
      this.#skip(e.name, `chown ${o[0]}:${o[1]}: ${code(err)}`);
    }
  }

  /** Starts an entry. */
  entry(e: TarEntry): void {
    this.entries++;
    const rel = cleanName(e.name);
    if (rel === "") {
      if (e.type === "dir") {
        this.#deferred.push({ rel, mode: e.mode, mtimeMs: e.mtimeMs });
      }
      return;
    }
    const [dirRel, base] = split(rel);
    if (base.startsWith(".wh.")) return this.#whiteout(e, dirRel, base);
    if (this.#created !== null) this.#created.add(rel);
    const pfd = this.#dir(dirRel, e.name)!;
    switch (e.type) {
      case "file": {
        this.#file = this.#create(
          pfd,
          base,
          () => open(base, { dirFd: pfd, flags: FILE_FLAGS, mode: 0o600 }),
        );
        this.#cur = e;
        return;
      }
      case "dir": {
        try {
          mkdirat(pfd, base, 0o700);
        } catch (err) {
          if (code(err) !== "EEXIST") throw err;
          const st = statxat(pfd, base);
          if (st === null || (st.mode & FileType.S_IFMT) !== FileType.S_IFDIR) {
            this.#remove(pfd, base);
            mkdirat(pfd, base, 0o700);
          }
        }
        this.#chown(e, (u, g) => fchownat(pfd, base, u, g));
        this.#xattrs(
          e,
          (k, v) => lsetxattr(`/proc/self/fd/${pfd}/${base}`, k, v),
        );
        this.#deferred.push({ rel, mode: e.mode, mtimeMs: e.mtimeMs });
        return;
      }
      case "symlink": {
        this.#create(pfd, base, () => symlinkat(e.linkname, pfd, base));
        this.#chown(e, (u, g) => fchownat(pfd, base, u, g));
        utimensat(pfd, base, e.mtimeMs, e.mtimeMs);
        return;
      }
      case "hardlink": {
        const target = cleanName(e.linkname);
        if (target === "") {
          throw new LayerError(e.name, "hard link to the root");
        }
        if (target === rel) return;
        const [tdir, tbase] = split(target);
        const tfd = this.#dir(tdir, e.name, false);
        if (tfd === null || statxat(tfd, tbase) === null) {
          throw new LayerError(
            e.name,
            `hard link target ${JSON.stringify(e.linkname)} is missing`,
          );
        }
        try {
          this.#create(pfd, base, () => linkat(tfd, tbase, pfd, base));
        } catch (err) {
          throw new LayerError(
            e.name,
            `cannot hard link to ${JSON.stringify(e.linkname)}`,
            {
              cause: err,
            },
          );
        }
        return;
      }
      case "char":
      case "block": {
        if (this.#devices === "skip") return this.#skip(e.name, "device node");
        if (this.#devices === "error") {
          throw new LayerError(e.name, "device nodes are not allowed");
        }
        const type = e.type === "char" ? FileType.S_IFCHR : FileType.S_IFBLK;
        try {
          this.#create(
            pfd,
            base,
            () =>
              mknodat(pfd, base, type | 0o600, makedev(e.devMajor, e.devMinor)),
          );
        } catch (err) {
          if (code(err) !== "EPERM") throw err;
          return this.#skip(e.name, "device node: EPERM");
        }
        this.#special(e, pfd, base);
        return;
      }
      case "fifo": {
        this.#create(
          pfd,
          base,
          () => mknodat(pfd, base, FileType.S_IFIFO | 0o600, 0n),
        );
        this.#special(e, pfd, base);
        return;
      }
    }
  }

  #mode(e: TarEntry): number {
    return this.#opts.dropSetuid ? e.mode & ~0o6000 : e.mode;
  }

  #special(e: TarEntry, pfd: number, base: string): void {
    this.#chown(e, (u, g) => fchownat(pfd, base, u, g));
    fchmodat(pfd, base, this.#mode(e));
    utimensat(pfd, base, e.mtimeMs, e.mtimeMs);
  }

  #whiteout(e: TarEntry, dirRel: string, base: string): void {
    if (base === ".wh..wh..opq") {
      const pfd = this.#dir(dirRel, e.name)!;
      if (this.#overlay) {
        const path = `/proc/self/fd/${pfd}/.`;
        if (this.#isRoot) lsetxattr(path, "trusted.overlay.opaque", Y);
        lsetxattr(path, "user.overlay.opaque", Y);
        return;
      }
      for (const child of Deno.readDirSync(`/proc/self/fd/${pfd}`)) {
        const rel = dirRel === "" ? child.name : `${dirRel}/${child.name}`;
        if (!this.#created!.has(rel)) this.#remove(pfd, child.name);
      }
      return;
    }
    const victim = base.slice(4);
    if (victim === "" || victim === "." || victim === "..") {
      throw new LayerError(e.name, "whiteout names no file");
    }
    if (victim.startsWith(".wh.")) return this.#skip(e.name, "aufs metadata");
    if (this.#overlay) {
      const pfd = this.#dir(dirRel, e.name)!;
      this.#create(
        pfd,
        victim,
        () => mknodat(pfd, victim, FileType.S_IFCHR, 0n),
      );
      return;
    }
    const pfd = this.#dir(dirRel, e.name, false);
    if (pfd !== null) this.#remove(pfd, victim);
  }

  /** A slice of the current file's data. */
  data(chunk: Uint8Array): void {
    if (this.#file !== null) writeAll(this.#file.fd, chunk);
  }

  /** The current entry is complete: its metadata goes on last (chown clears setuid). */
  end(): void {
    const fd = this.#file, e = this.#cur;
    if (fd === null || e === null) return;
    this.#file = null;
    this.#cur = null;
    try {
      this.#chown(e, (u, g) => fchown(fd.fd, u, g));
      fchmod(fd.fd, this.#mode(e));
      this.#xattrs(e, (k, v) => fsetxattr(fd.fd, k, v));
      futimens(fd.fd, e.mtimeMs, e.mtimeMs);
    } finally {
      fd.close();
    }
  }

  /** Sets directory modes and times, deepest first (children change a parent's mtime). */
  finish(): void {
    this.#dropDirs();
    for (let i = this.#deferred.length - 1; i >= 0; i--) {
      const d = this.#deferred[i]!;
      let fd: OwnedFd;
      try {
        fd = d.rel === ""
          ? open(".", {
            dirFd: this.#root.fd,
            flags: OpenFlag.O_RDONLY | OpenFlag.O_DIRECTORY,
          })
          : openat2(this.#root.fd, d.rel, {
            flags: OpenFlag.O_RDONLY | OpenFlag.O_DIRECTORY |
              OpenFlag.O_NOFOLLOW,
            resolve: Resolve.RESOLVE_BENEATH | Resolve.RESOLVE_NO_SYMLINKS,
          });
      } catch (e) {
        // Replaced later in the same layer by something that is not a directory.
        if (["ENOENT", "ENOTDIR", "ELOOP"].includes(code(e) ?? "")) continue;
        throw e;
      }
      try {
        fchmod(fd.fd, d.mode);
        futimens(fd.fd, d.mtimeMs, d.mtimeMs);
      } finally {
        fd.close();
      }
    }
    this.#deferred = [];
  }

  /**
   * Creates directory `path` (absolute paths count from the root) and its missing parents
   * (0755) inside the root, confined.
   */
  mkdirs(path: string): void {
    const rel = cleanName(path.replace(/^\/+/, ""));
    if (rel !== "") this.#dir(rel, path);
  }

  /** Reads a regular file inside the root (parents confined, final symlink refused). */
  readText(path: string): string {
    const [dir, base] = split(cleanName(path.replace(/^\/+/, "")));
    const pfd = this.#dir(dir, path, false);
    if (pfd === null) throw new LayerError(path, "no such file");
    using fd = open(base, {
      dirFd: pfd,
      flags: OpenFlag.O_RDONLY | OpenFlag.O_NOFOLLOW,
    });
    return Deno.readTextFileSync(`/proc/self/fd/${fd.fd}`);
  }

  /** Closes every fd it holds. */
  [Symbol.dispose](): void {
    this.#file?.close();
    this.#dropDirs();
    this.#root.close();
  }
}

/**
 * Unpacks a layer (tar, gzip or zstd; detected) into the existing directory `target`. Safe
 * against hostile archives: absolute names, `..`, hard links leading out and names with NUL
 * are refused with a `LayerError`; symlinks inside the archive are never followed out of
 * `target` (parents resolve as if `target` were `/`) and never written through. On error
 * the target is left partly written: unpack into a fresh directory and discard it on failure
 * (the store does).
 *
 * @example Unpack a gzip layer into a fresh directory
 * ```ts ignore
 * import { applyLayer } from "denobox/image";
 * const dir = await Deno.makeTempDir();
 * const r = await applyLayer(dir, (await Deno.open("layer.tar.gz")).readable);
 * console.log(r.diffId, r.entries);
 * ```
 */
export async function applyLayer(
  target: string,
  layer: ByteSource,
  options: ApplyOptions = {},
): Promise<ApplyResult> {
  using writer = new LayerWriter(target, options);
  const hasher = new Hasher();
  const reader = new TarReader(writer);
  for await (const chunk of decompress(layer)) {
    hasher.update(chunk);
    reader.push(chunk);
  }
  reader.finish();
  writer.finish();
  return {
    diffId: hasher.digest(),
    size: hasher.size,
    entries: writer.entries,
    skipped: writer.skipped,
  };
}
