/**
 * `RootTemplate`: a sandbox root built once and copied by every sandbox that names it.
 *
 * A root is dozens of mounts (the host view binds each system directory and a curated /etc,
 * plus a /dev), made by every `spawn()` and torn down when the sandbox ends, with a
 * `pivot_root` and the detach of the old root in between. A template makes that root once,
 * in a mount namespace of its own, and keeps only that namespace (an fd: no mount of it
 * exists on the host). A sandbox spawned with `rootfs: template` enters it and unshares a
 * private copy, whose root is already in place: it only adds what is its own (/proc, /tmp,
 * /dev/shm, the caller's mounts). For many short sandboxes with one root (graders, test
 * runners) that is most of the set-up gone.
 *
 * Everything in a template is shared by its sandboxes, so it is read-only all the way down:
 * the mounts, and the superblocks of the tmpfs it makes itself. A sandbox that kept
 * CAP_SYS_ADMIN could remount them writable; the default capabilities do not include it.
 * @module
 */
import { ids, open, type OwnedFd } from "denobox/libc";
import { Program, recycleProgram } from "./program.ts";
import { launch } from "./launch.ts";
import {
  type MountSpec,
  type OverlayRootfs,
  type RootSpec,
  templateRootSteps,
} from "./spawn.ts";

/** Options of `RootTemplate.create()`. */
export interface RootTemplateOptions {
  /** The root: a host directory or an overlay (as `spawn()` takes them); absent: the host view. */
  rootfs?: string | OverlayRootfs;
  /**
   * Mounts made once, in the template, and so shared by every sandbox: read-only binds or
   * tmpfs only (a writable one would let a sandbox leave files for the next).
   */
  mounts?: readonly MountSpec[];
  /**
   * Empty directories to make in the root (absolute paths), where sandboxes mount their own
   * things (their targets must exist: the root is read-only). /proc, /dev, /tmp are always made.
   */
  mountPoints?: readonly string[];
  /** As `SpawnOptions.cacheDir` (the host view's layout, learnt once). */
  cacheDir?: string;
}

/** Top-level directories of the host view that are empty in it. */
const HOST_VIEW_EMPTY = ["/tmp", "/root", "/home"];

/**
 * A prepared root: pass it as `rootfs` to `spawn()`. Root only (it is a mount namespace of
 * the caller's user namespace). Close it when done; sandboxes already running keep their copy.
 *
 * @example One root, many sandboxes
 * ```ts ignore
 * import { RootTemplate, spawn } from "denobox/sandbox";
 * using template = await RootTemplate.create({ mountPoints: ["/work"] });
 * for (let i = 0; i < 3; i++) {
 *   await using box = await spawn({
 *     argv: ["/bin/sh", "-c", "ls /work; touch /tmp/x"],
 *     rootfs: template,
 *     mounts: [{ type: "tmpfs", target: "/work" }],
 *   });
 *   console.log((await box.status).code); // 0, and no sandbox sees another's /tmp/x
 * }
 * ```
 */
export class RootTemplate implements Disposable {
  readonly #ns: OwnedFd;
  /** Empty directories of the root that sandboxes may mount over. */
  readonly mountPoints: ReadonlySet<string>;

  private constructor(ns: OwnedFd, mountPoints: ReadonlySet<string>) {
    this.#ns = ns;
    this.mountPoints = mountPoints;
  }

  /**
   * Builds the root in a new mount namespace (a short-lived child does the mounts, enters
   * the root and detaches the old one) and keeps that namespace. Throws a `TypeError` for
   * bad options or without root, a `SandboxSetupError` naming the mount that failed.
   */
  static async create(
    options: RootTemplateOptions = {},
  ): Promise<RootTemplate> {
    if (ids().euid !== 0) {
      throw new TypeError(
        "Cannot create a RootTemplate: it needs root (a mount namespace of the host's user namespace)",
      );
    }
    const dirs = ["/tmp", ...(options.mountPoints ?? [])];
    for (const d of dirs) {
      if (typeof d !== "string" || !d.startsWith("/") || d.includes("\0")) {
        throw new TypeError(
          `Invalid mount point: must be an absolute path: ${d}`,
        );
      }
    }
    for (const m of options.mounts ?? []) {
      const ro = (m.type === "bind" || m.type === "tmpfs") &&
        m.readOnly === true;
      if (!ro) {
        throw new TypeError(
          `Invalid template mount at ${m.target}: a template's mounts are shared by every sandbox, so only read-only binds and tmpfs go there`,
        );
      }
    }
    const spec: RootSpec = {
      readOnly: true,
      ...(options.rootfs !== undefined ? { rootfs: options.rootfs } : {}),
      ...(options.mounts ? { mounts: options.mounts } : {}),
      ...(options.cacheDir !== undefined ? { cacheDir: options.cacheDir } : {}),
    };
    const childFds: OwnedFd[] = [];
    const p = new Program();
    let ns: OwnedFd | null = null;
    try {
      templateRootSteps(p, spec, dirs, childFds);
      p.close(p.fds.syncWrite, { mayFail: true });
      p.syncPoint();
      p.syscall("exit_group", [0], { label: "exit_group(0)" });
    } catch (e) {
      recycleProgram(p); // never ran
      for (const f of childFds) f.close();
      throw e;
    }
    try {
      const box = await launch(p, {
        namespaces: ["mnt"],
        setup: [(child) => {
          ns = open(`/proc/${child.pid}/ns/mnt`);
        }],
      }, { childFds });
      const status = await box.status;
      if (status.code !== 0) {
        throw new Error(
          `Cannot create a RootTemplate: its builder ended with ${
            status.signal ?? `status ${status.code}`
          }`,
        );
      }
    } catch (e) {
      (ns as OwnedFd | null)?.close();
      throw e;
    }
    const points = new Set(dirs);
    if (options.rootfs === undefined) {
      for (const d of HOST_VIEW_EMPTY) points.add(d);
    }
    return new RootTemplate(ns!, points);
  }

  /** The mount namespace (an fd of this process) that sandboxes copy. */
  get namespaceFd(): number {
    return this.#ns.fd;
  }

  /** Throws when the template is closed (`spawn()` calls it). */
  check(): void {
    if (!this.#ns.open) {
      throw new TypeError("Cannot spawn from a RootTemplate that is closed");
    }
  }

  /** Releases the namespace (freed once no sandbox holds a copy). Idempotent. */
  close(): void {
    this.#ns.close();
  }

  /** Same as `close()`. */
  [Symbol.dispose](): void {
    this.close();
  }
}
