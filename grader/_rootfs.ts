/**
 * A pool's prepared root: the default host view (the host's system directories read-only and
 * a curated /etc) built once, on a private read-only tmpfs, so each run binds one tree
 * recursively instead of making the host view's dozens of mounts.
 *
 * It lives on the host at `/run/denobox/grader/<pool>`, a directory only root can reach, and
 * shows no more than `spawn()`'s built-in host view (same entries, also read-only). `close()`
 * unmounts it; if the grader dies without closing, the pool's watchdog does, and the next
 * pool's sweep removes what is left of a pool whose process is gone.
 * @module
 */
import { HOST_VIEW } from "denobox/sandbox";
import {
  mount,
  MountFlag,
  mountFlagsOf,
  SyscallError,
  umount,
} from "denobox/libc";

const {
  MS_BIND,
  MS_REC,
  MS_RDONLY,
  MS_NOSUID,
  MS_NODEV,
  MS_REMOUNT,
  MS_PRIVATE,
} = MountFlag;

/** Where prepared roots live: one directory per pool. */
export const ROOTS_DIR = "/run/denobox/grader";

// The same entries as spawn()'s built-in host view, never more (tests/grader checks it).
const { top: TOP, etc: ETC, passwd: PASSWD, group: GROUP, hosts: HOSTS } =
  HOST_VIEW;

/** Empty directories of the root: mount points a run covers (and /root, /home as in the host view). */
const EMPTY_DIRS: readonly [string, number][] = [
  ["proc", 0o555],
  ["dev", 0o755],
  ["tmp", 0o1777],
  ["root", 0o700],
  ["home", 0o755],
];

/** Binds `source` read-only at `target`, keeping the source's locked flags. */
function roBind(source: string, target: string, recursive: boolean): void {
  mount(source, target, { flags: MS_BIND | (recursive ? MS_REC : 0) });
  mount(null, target, {
    flags: MS_REMOUNT | MS_BIND | MS_RDONLY | mountFlagsOf(source),
  });
}

function lstat(path: string): Deno.FileInfo | null {
  try {
    return Deno.lstatSync(path);
  } catch {
    return null;
  }
}

/** A read-only root shared by a pool's runs. */
export class PreparedRoot {
  /** The root's host path (pass it as `rootfs`). */
  readonly path: string;
  /** Top-level directories a run may mount over (they exist, and are empty). */
  readonly mountPoints: ReadonlySet<string>;
  #closed = false;

  /**
   * Builds the root at `ROOTS_DIR/name`, with `extraDirs` (absolute, one level, e.g. the
   * default work directory) as empty mount points. Rolls back on failure.
   */
  constructor(name: string, extraDirs: readonly string[]) {
    this.path = `${ROOTS_DIR}/${name}`;
    Deno.mkdirSync(ROOTS_DIR, { recursive: true, mode: 0o700 });
    Deno.chmodSync("/run/denobox", 0o700);
    Deno.mkdirSync(this.path, { mode: 0o700 });
    const points = new Set<string>(["/tmp"]);
    try {
      const R = this.path;
      mount("tmpfs", R, {
        type: "tmpfs",
        flags: MS_NOSUID | MS_NODEV,
        data: "mode=0755,size=1m",
      });
      // Nothing made below propagates anywhere, whatever the host's propagation is.
      mount(null, R, { flags: MS_PRIVATE | MS_REC });
      for (const n of TOP) {
        const st = lstat(`/${n}`);
        if (st === null) continue;
        if (st.isSymlink) {
          Deno.symlinkSync(Deno.readLinkSync(`/${n}`), `${R}/${n}`);
        } else if (st.isDirectory) {
          Deno.mkdirSync(`${R}/${n}`);
          roBind(`/${n}`, `${R}/${n}`, true);
        }
      }
      Deno.mkdirSync(`${R}/etc/ssl`, { recursive: true, mode: 0o755 });
      for (const n of ETC) {
        const src = `/etc/${n}`, dst = `${R}/etc/${n}`;
        const st = lstat(src);
        if (st === null) continue;
        if (st.isSymlink) Deno.symlinkSync(Deno.readLinkSync(src), dst);
        else if (st.isDirectory) {
          Deno.mkdirSync(dst);
          roBind(src, dst, true);
        } else if (st.isFile) {
          Deno.writeFileSync(dst, new Uint8Array(0));
          roBind(src, dst, false);
        }
      }
      Deno.writeTextFileSync(`${R}/etc/passwd`, PASSWD);
      Deno.writeTextFileSync(`${R}/etc/group`, GROUP);
      Deno.writeTextFileSync(`${R}/etc/hosts`, HOSTS);
      for (const [n, mode] of EMPTY_DIRS) {
        Deno.mkdirSync(`${R}/${n}`);
        Deno.chmodSync(`${R}/${n}`, mode);
      }
      for (const d of extraDirs) {
        if (points.has(d) || lstat(`${R}${d}`) !== null) continue;
        Deno.mkdirSync(`${R}${d}`, { mode: 0o755 });
        points.add(d);
      }
      for (const [n] of EMPTY_DIRS) points.add(`/${n}`);
      // Read-only twice over: the superblock (nothing can write to this tmpfs any more) and
      // this mount (a run's recursive bind copies the flag).
      mount(null, R, {
        flags: MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV,
        data: "mode=0755,size=1m",
      });
      mount(null, R, {
        flags: MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV,
      });
    } catch (e) {
      removeRoot(this.path);
      throw e instanceof SyscallError
        ? e.withContext("prepare the grader's root")
        : e;
    }
    this.mountPoints = points;
  }

  /** Unmounts the root (with everything bound in it) and removes its directory. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    removeRoot(this.path);
  }
}

/** Detaches whatever is mounted at `path` (the whole tree) and removes the directory. */
export function removeRoot(path: string): void {
  try {
    umount(path, { detach: true, noFollow: true });
  } catch (e) {
    // EINVAL: not a mount point (made but never mounted, or already unmounted)
    if (
      !(e instanceof SyscallError &&
        (e.code === "EINVAL" || e.code === "ENOENT"))
    ) {
      throw e;
    }
  }
  try {
    Deno.removeSync(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
}
