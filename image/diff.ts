/**
 * Directory → layer tarball: the change set of a container, either an overlayfs upper
 * directory (whiteouts translated from overlay's form) or a plain directory compared with a
 * snapshot taken when it was populated.
 * @module
 */
import { join } from "node:path";
import { lgetxattr, llistxattr } from "denobox/libc";
import type { IdMapEntry, IdMapping } from "./apply.ts";
import { TarWriter, type TarWriterEntry } from "./tar.ts";

/** A record of a tree's metadata, to find later what changed (see `snapshotTree`). */
export type TreeSnapshot = Map<string, string>;

/** Options of `diffTar`. */
export interface DiffTarOptions {
  /**
   * Compare with this snapshot (a plain directory): only new or changed entries go in, and
   * paths that disappeared become whiteouts. Without it the directory is an overlayfs upper
   * directory: everything in it is a change, whiteouts are 0/0 character devices (what
   * overlayfs makes, also rootless) or empty files with the `overlay.whiteout` xattr (the
   * xattr form of kernel 6.7+), and directories with `overlay.opaque` = `y` are opaque
   * (`trusted.` or, for a `userxattr` mount, `user.` xattrs).
   */
  base?: TreeSnapshot;
  /** Paths (relative, no leading slash) left out with everything below them. */
  exclude?: readonly string[];
  /**
   * The id maps the tree was written through (container id → host id, as for
   * `applyLayer`): owners are recorded as the container saw them (host ids outside the map
   * as 65534). Default: host ids as they are.
   */
  owners?: IdMapping;
}

const dec = new TextDecoder();
const Y = "y";

function signature(info: Deno.FileInfo): string {
  return `${info.mode}:${info.uid}:${info.gid}:${info.size}:${info.mtime?.getTime()}:${info.ctime?.getTime()}:${info.ino}`;
}

function listSorted(dir: string): string[] {
  const names: string[] = [];
  for (const e of Deno.readDirSync(dir)) names.push(e.name);
  return names.sort();
}

/**
 * Records every path's metadata under `dir` (mode, owner, size, times, inode), for
 * `diffTar({ base })` later.
 *
 * @example Snapshot a tree
 * ```ts
 * import { snapshotTree } from "denobox/image";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/a`, "x");
 * console.log(snapshotTree(dir).has("a")); // true
 * ```
 */
export function snapshotTree(dir: string): TreeSnapshot {
  const snap: TreeSnapshot = new Map();
  const walk = (rel: string) => {
    for (const name of listSorted(rel === "" ? dir : join(dir, rel))) {
      const r = rel === "" ? name : `${rel}/${name}`;
      const info = Deno.lstatSync(join(dir, r));
      snap.set(r, signature(info));
      if (info.isDirectory) walk(r);
    }
  };
  walk("");
  return snap;
}

function opaque(path: string): boolean {
  for (const name of ["trusted.overlay.opaque", "user.overlay.opaque"]) {
    const v = lgetxattr(path, name);
    if (v !== null && dec.decode(v) === Y) return true;
  }
  return false;
}

function isWhiteout(path: string, info: Deno.FileInfo): boolean {
  if (info.isCharDevice) return info.rdev === 0;
  if (!info.isFile || info.size !== 0) return false;
  return lgetxattr(path, "trusted.overlay.whiteout") !== null ||
    lgetxattr(path, "user.overlay.whiteout") !== null;
}

function unmapId(map: readonly IdMapEntry[], hostId: number): number {
  for (const m of map) {
    if (hostId >= m.hostId && hostId < m.hostId + m.size) {
      return m.containerId + (hostId - m.hostId);
    }
  }
  return 65534;
}

function xattrsOf(path: string): Record<string, Uint8Array> | undefined {
  let out: Record<string, Uint8Array> | undefined;
  for (const name of llistxattr(path)) {
    if (
      name.startsWith("trusted.overlay.") || name.startsWith("user.overlay.")
    ) continue;
    if (!name.startsWith("user.") && name !== "security.capability") continue;
    const v = lgetxattr(path, name);
    if (v !== null) (out ??= {})[name] = v;
  }
  return out;
}

function major(rdev: number): number {
  const d = BigInt(rdev);
  return Number(((d >> 8n) & 0xfffn) | ((d >> 32n) & ~0xfffn));
}

function minor(rdev: number): number {
  const d = BigInt(rdev);
  return Number((d & 0xffn) | ((d >> 12n) & ~0xffn));
}

interface Item {
  rel: string;
  path: string;
  info: Deno.FileInfo;
  whiteout?: boolean;
  opaque?: boolean;
}

// Sync walk, one directory at a time, yielding what the tar needs (no file contents).
function* items(dir: string, options: DiffTarOptions): Generator<Item> {
  const exclude = new Set(options.exclude ?? []);
  const base = options.base;
  const seen = base ? new Set<string>() : null;
  function* walk(rel: string): Generator<Item> {
    const abs = rel === "" ? dir : join(dir, rel);
    for (const name of listSorted(abs)) {
      const r = rel === "" ? name : `${rel}/${name}`;
      if (exclude.has(r)) continue;
      const path = join(dir, r);
      const info = Deno.lstatSync(path);
      seen?.add(r);
      if (base === undefined) {
        if (isWhiteout(path, info)) {
          yield { rel: r, path, info, whiteout: true };
          continue;
        }
        const op = info.isDirectory && opaque(path);
        yield { rel: r, path, info, opaque: op };
      } else if (base.get(r) !== signature(info)) {
        // A path that changed type (file → dir) must hide the old one first.
        yield { rel: r, path, info };
      }
      if (info.isDirectory) yield* walk(r);
    }
  }
  yield* walk("");
  if (base !== undefined) {
    // Deleted paths, topmost only (a deleted directory hides its whole subtree).
    const gone = [...base.keys()].filter((p) => !seen!.has(p)).sort();
    let last: string | null = null;
    for (const p of gone) {
      if (last !== null && p.startsWith(`${last}/`)) continue;
      last = p;
      const parent = p.includes("/")
        ? join(dir, p.slice(0, p.lastIndexOf("/")))
        : dir;
      // A parent that is no longer a directory was replaced whole by its own entry.
      if (!Deno.lstatSync(parent).isDirectory) continue;
      const info = { isFile: false } as Deno.FileInfo;
      yield { rel: p, path: "", info, whiteout: true };
    }
  }
}

/**
 * Streams a layer tarball (uncompressed) of the changes in `dir`. Entries come in sorted
 * order with fixed metadata, so the same tree gives the same bytes (and the same DiffID).
 *
 * @example The layer of an overlay upper directory
 * ```ts ignore
 * import { diffTar } from "denobox/image";
 * for await (const chunk of diffTar("/srv/ctr/upper")) console.log(chunk.length);
 * ```
 */
export async function* diffTar(
  dir: string,
  options: DiffTarOptions = {},
): AsyncGenerator<Uint8Array> {
  const w = new TarWriter();
  const links = new Map<string, string>();
  for (const it of items(dir, options)) {
    const { rel, info } = it;
    if (it.whiteout) {
      const i = rel.lastIndexOf("/");
      const name = i < 0
        ? `.wh.${rel}`
        : `${rel.slice(0, i)}/.wh.${rel.slice(i + 1)}`;
      w.add({ name, mode: 0 });
      continue;
    }
    const entry: TarWriterEntry = {
      name: rel,
      mode: (info.mode ?? 0) & 0o7777,
      uid: options.owners
        ? unmapId(options.owners.uidMap, info.uid ?? 0)
        : info.uid ?? 0,
      gid: options.owners
        ? unmapId(options.owners.gidMap, info.gid ?? 0)
        : info.gid ?? 0,
      mtimeMs: Math.floor(info.mtime?.getTime() ?? 0),
    };
    const x = xattrsOf(it.path);
    if (x) entry.xattrs = x;
    if (info.isDirectory) {
      w.add({ ...entry, type: "dir" });
      if (it.opaque) w.add({ name: `${rel}/.wh..wh..opq`, mode: 0 });
    } else if (info.isSymlink) {
      w.add({
        ...entry,
        type: "symlink",
        linkname: await Deno.readLink(it.path),
      });
    } else if (info.isFile) {
      const key = `${info.dev}:${info.ino}`;
      const first = (info.nlink ?? 1) > 1 ? links.get(key) : undefined;
      if (first !== undefined) {
        w.add({ ...entry, type: "hardlink", linkname: first });
        continue;
      }
      if ((info.nlink ?? 1) > 1) links.set(key, rel);
      w.add({ ...entry, size: info.size });
      using f = await Deno.open(it.path);
      let left = info.size;
      while (left > 0) {
        const buf = new Uint8Array(Math.min(left, 1 << 20));
        const n = await f.read(buf);
        if (n === null) {
          throw new Error(
            `Cannot read ${it.path}: it shrank while being archived`,
          );
        }
        w.write(n === buf.length ? buf : buf.subarray(0, n));
        left -= n;
        if (w.buffered >= 1 << 20) yield w.take();
      }
    } else if (info.isCharDevice || info.isBlockDevice) {
      w.add({
        ...entry,
        type: info.isCharDevice ? "char" : "block",
        devMajor: major(info.rdev ?? 0),
        devMinor: minor(info.rdev ?? 0),
      });
    } else if (info.isFifo) {
      w.add({ ...entry, type: "fifo" });
    } // sockets are not archived
    if (w.buffered >= 1 << 20) yield w.take();
  }
  yield w.finish();
}
