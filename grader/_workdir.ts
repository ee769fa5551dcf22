/**
 * The run's work directory: a fresh, size-limited tmpfs made with the fd mount API, so it is
 * never mounted on the host. The box attaches this very mount inside its own mount namespace
 * (move_mount of the fd: a `detached` mount of spawn()); files go in and come out through
 * `openat2` beneath the mount fd, never through a symlink and never out of the mount, also
 * after the box's end has unmounted it. Closing the fd frees it, also when this process dies.
 * @module
 */
import {
  fchmod,
  fchown,
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

/** A detached tmpfs owned by this process, attached to one box at most. */
export class WorkDir implements Disposable {
  readonly #fd: OwnedFd;
  readonly #uid: number;
  readonly #gid: number;

  /** Makes a tmpfs of `size` bytes whose root belongs to `uid:gid` (mode 0755). */
  constructor(size: number, uid: number, gid: number) {
    this.#fd = fsmountNew("tmpfs", {
      config: {
        // names it in mountinfo (inside the box, and in a check for leaks)
        source: WORK_SOURCE,
        size: String(size),
        mode: "0755",
        uid: String(uid),
        gid: String(gid),
      },
      attributes: MountAttr.MOUNT_ATTR_NOSUID | MountAttr.MOUNT_ATTR_NODEV,
    });
    this.#uid = uid;
    this.#gid = gid;
  }

  /** The detached mount's fd, for spawn()'s `{ type: "detached" }` mount (once). */
  get fd(): number {
    return this.#fd.fd;
  }

  /** Writes `files` (parents created, owned by the run's user). */
  async copyIn(files: readonly PlannedFile[]): Promise<void> {
    for (const f of files) {
      const parts = f.path.split("/");
      for (let i = 1; i < parts.length; i++) {
        const dir = parts.slice(0, i).join("/");
        const st = statxat(this.#fd.fd, dir);
        if (st === null) {
          mkdirat(this.#fd.fd, dir, 0o755);
          using d = openat2(this.#fd.fd, dir, {
            flags: OpenFlag.O_RDONLY | OpenFlag.O_DIRECTORY,
            resolve: BENEATH,
          });
          fchown(d.fd, this.#uid, this.#gid);
        }
      }
      const data = f.data ?? await readSource(f.source!);
      using out = openat2(this.#fd.fd, f.path, {
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
    for (const p of paths) {
      let fd: OwnedFd;
      try {
        fd = openat2(this.#fd.fd, p, {
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
