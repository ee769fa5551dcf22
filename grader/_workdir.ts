/**
 * The run's writable space: one fresh, size-limited tmpfs made with the fd mount API, so it is
 * never mounted on the host. It holds the work directory (`box/`), the box's `/tmp` and
 * `/dev/shm` (`tmp/`, `shm/`), and an empty read-only directory that masks directories of
 * /proc (`empty/`); the box sees each through a bind of `/proc/self/fd/N/<dir>` made inside
 * its own mount namespace. One superblock instead of four per run: each costs the kernel a
 * set-up and a teardown (with its shrinker and LRU lists), and the run's writes have one limit.
 * Files go in and come out through `openat2` beneath the work directory, never through a
 * symlink and never out of it. Closing the fd frees it, also when this process dies.
 * @module
 */
import {
  fchmod,
  fchmodat,
  fchown,
  fchownat,
  FileType,
  fsmountNew,
  mkdirat,
  MountAttr,
  open,
  openat2,
  OpenFlag,
  type OwnedFd,
  Resolve,
  statxat,
  SyscallError,
  writeAll,
} from "denobox/libc";
import type { PlannedFile } from "./_options.ts";

const BENEATH = Resolve.RESOLVE_BENEATH | Resolve.RESOLVE_NO_SYMLINKS |
  Resolve.RESOLVE_NO_XDEV | Resolve.RESOLVE_NO_MAGICLINKS;

/** The source name of every work tmpfs (`tmpfs denobox-work` in mountinfo). */
export const WORK_SOURCE = "denobox-work";

/** A detached tmpfs owned by this process. */
export class WorkDir implements Disposable {
  readonly #fd: OwnedFd;
  readonly #uid: number;
  readonly #gid: number;
  #box: OwnedFd | null = null;

  /**
   * Makes a tmpfs of `size` bytes: `box/` belongs to `uid:gid` (mode 0755), `tmp/` and `shm/`
   * are root's with mode 1777, `empty/` is root's with mode 0555.
   */
  constructor(size: number, uid: number, gid: number) {
    this.#fd = fsmountNew("tmpfs", {
      // the source names it in mountinfo (inside the box, and in a check for leaks)
      config: { source: WORK_SOURCE, size: String(size), mode: "0755" },
      attributes: MountAttr.MOUNT_ATTR_NOSUID | MountAttr.MOUNT_ATTR_NODEV,
    });
    try {
      // Nothing else can reach this tmpfs yet (it is only an fd of ours): plain *at calls
      // on its fresh directories cannot be raced. The modes are set after mkdir, which the
      // umask would cut.
      const root = this.#fd.fd;
      for (const d of ["box", "tmp", "shm", "empty"]) mkdirat(root, d, 0o755);
      fchownat(root, "box", uid, gid);
      fchmodat(root, "tmp", 0o1777);
      fchmodat(root, "shm", 0o1777);
      fchmodat(root, "empty", 0o555);
    } catch (e) {
      this.#fd.close();
      throw e;
    }
    this.#uid = uid;
    this.#gid = gid;
  }

  /** The path a process of ours (or a child before exec) binds to attach the work directory. */
  get source(): string {
    return `/proc/self/fd/${this.#fd.fd}/box`;
  }

  /** The same for the box's `/tmp`. */
  get tmp(): string {
    return `/proc/self/fd/${this.#fd.fd}/tmp`;
  }

  /** The same for the box's `/dev/shm`. */
  get shm(): string {
    return `/proc/self/fd/${this.#fd.fd}/shm`;
  }

  /** The same for the empty directory that masks a directory (bound read-only). */
  get empty(): string {
    return `/proc/self/fd/${this.#fd.fd}/empty`;
  }

  /** The work directory's fd (opened on first use), the base of every copy in or out. */
  #base(): number {
    this.#box ??= openat2(this.#fd.fd, "box", {
      flags: OpenFlag.O_RDONLY | OpenFlag.O_DIRECTORY,
      resolve: BENEATH,
    });
    return this.#box.fd;
  }

  /** Writes `files` (parents created, owned by the run's user). */
  async copyIn(files: readonly PlannedFile[]): Promise<void> {
    if (files.length === 0) return;
    const base = this.#base();
    for (const f of files) {
      const parts = f.path.split("/");
      for (let i = 1; i < parts.length; i++) {
        const dir = parts.slice(0, i).join("/");
        const st = statxat(base, dir);
        if (st === null) {
          mkdirat(base, dir, 0o755);
          using d = openat2(base, dir, {
            flags: OpenFlag.O_RDONLY | OpenFlag.O_DIRECTORY,
            resolve: BENEATH,
          });
          fchown(d.fd, this.#uid, this.#gid);
        }
      }
      const data = f.data ?? await readSource(f.source!);
      using out = openat2(base, f.path, {
        flags: OpenFlag.O_WRONLY | OpenFlag.O_CREAT | OpenFlag.O_EXCL,
        mode: 0o600,
        resolve: BENEATH,
      });
      writeAll(out.fd, data);
      fchmod(out.fd, f.mode);
      fchown(out.fd, this.#uid, this.#gid);
    }
  }

  /**
   * Reads back `paths`: regular files only, reached without a symlink anywhere on the way;
   * anything else (missing, a symlink, a FIFO, a directory) is left out.
   */
  async copyOut(paths: readonly string[]): Promise<Record<string, Uint8Array>> {
    const out: Record<string, Uint8Array> = {};
    if (paths.length === 0) return out;
    const base = this.#base();
    for (const p of paths) {
      let fd: OwnedFd;
      try {
        fd = openat2(base, p, {
          flags: OpenFlag.O_RDONLY | OpenFlag.O_NOFOLLOW | OpenFlag.O_NONBLOCK,
          resolve: BENEATH,
        });
      } catch (e) {
        if (e instanceof SyscallError) continue;
        throw e;
      }
      try {
        const st = statxat(fd.fd, "");
        if (st === null || (st.mode & FileType.S_IFMT) !== FileType.S_IFREG) {
          continue;
        }
        out[p] = await Deno.readFile(`/proc/self/fd/${fd.fd}`);
      } finally {
        fd.close();
      }
    }
    return out;
  }

  /** Releases the tmpfs (its pages go once no mount namespace holds it either). */
  [Symbol.dispose](): void {
    this.#box?.close();
    this.#box = null;
    this.#fd.close();
  }
}

/** A host file's bytes, opened without following a symlink at the last component. */
async function readSource(path: string): Promise<Uint8Array> {
  using fd = open(path, {
    flags: OpenFlag.O_RDONLY | OpenFlag.O_NOFOLLOW | OpenFlag.O_NONBLOCK,
  });
  const st = statxat(fd.fd, "");
  if (st === null || (st.mode & FileType.S_IFMT) !== FileType.S_IFREG) {
    throw new TypeError(`Cannot copy ${path} into the box: not a regular file`);
  }
  return await Deno.readFile(`/proc/self/fd/${fd.fd}`);
}
