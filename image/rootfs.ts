/**
 * A container's root filesystem from an image: an overlayfs of the image's unpacked layers
 * with a writable upper directory, mounted here (root) or by the sandbox inside its own user
 * and mount namespaces (rootless, kernel 5.11+), or a private copy of the layers (the rootless
 * fallback where the kernel refuses overlayfs in a user namespace).
 * @module
 */
import { join } from "node:path";
import { ids, mount, SyscallError, umount } from "denobox/libc";
import type { OverlayRootfs } from "denobox/sandbox";
import { applyLayer, type ApplyOptions, type IdMapping } from "./apply.ts";
import { diffTar, snapshotTree, type TreeSnapshot } from "./diff.ts";
import type { StoredImage } from "./store.ts";

/**
 * How a rootfs is made: `"overlay"` mounted here (root), `"sandbox"` an overlay the sandbox
 * mounts itself in its own namespaces (rootless), `"copy"` a private flat copy.
 */
export type RootfsMode = "overlay" | "sandbox" | "copy";

/** An overlay mount a sandbox can perform itself (inside its own user + mount namespace). */
export interface OverlayMountSpec {
  /** Always `"overlay"`. */
  type: "overlay";
  /** Always `"overlay"`. */
  source: "overlay";
  /** Layer directories, top first (overlayfs' lowerdir order). */
  lowerdir: string[];
  /** The writable layer. */
  upperdir: string;
  /** overlayfs' work directory (same filesystem as upperdir). */
  workdir: string;
  /** The mount data string (`lowerdir=...,upperdir=...,workdir=...[,userxattr]`). */
  data: string;
}

/** A container root filesystem; disposing unmounts it and removes its directory. */
export interface Rootfs extends AsyncDisposable {
  /**
   * The directory to use as the container's `/`. In sandbox mode the merged view exists only
   * inside a sandbox given `spawnRootfs`; `path` is then the upper directory (the changes).
   */
  readonly path: string;
  /** overlay or sandbox (layers shared, changes in `upper`), or copy (a private flat copy). */
  readonly mode: RootfsMode;
  /**
   * What to give `spawn()` as `rootfs`: `path`, or in sandbox mode the `OverlayRootfs` the
   * sandbox mounts before pivot_root. (Optional so hand-made views for `commit` stay valid.)
   */
  readonly spawnRootfs?: string | OverlayRootfs;
  /** Why `"auto"` chose copy mode for a rootless caller (the kernel's refusal); else null. */
  readonly fallbackReason?: string | null;
  /** The image it was made from. */
  readonly image: StoredImage;
  /** The overlay's upper directory (the container's changes); null in copy mode. */
  readonly upper: string | null;
  /** The container directory holding everything. */
  readonly dir: string;
  /** The change set since creation, as an uncompressed layer tar stream. */
  diff(): AsyncGenerator<Uint8Array>;
}

/** Options of `mountRootfs`. */
export interface MountRootfsOptions {
  /**
   * `"overlay"`: mount overlayfs here (needs CAP_SYS_ADMIN: root). `"sandbox"`: prepare the
   * overlay's directories and let the sandbox mount it (`spawnRootfs`; kernel 5.11+ when
   * rootless). `"copy"`: unpack the layers into a private directory (works for anyone, costs
   * the copy). `"auto"` (default): overlay as root; rootless, sandbox where
   * `rootlessOverlaySupport()` says the kernel allows it, else copy (`fallbackReason` says why).
   */
  mode?: RootfsMode | "auto";
  /** Passed to layer unpacking (owners, devices, dropSetuid). */
  apply?: Omit<ApplyOptions, "whiteouts">;
}

// Mount data is limited to one page; leave room for the option names.
const MAX_MOUNT_DATA = 4000;

/**
 * The overlay mount for layer directories (bottom first, as the store returns them), an
 * upper and a work directory. `userxattr` makes overlayfs read `user.overlay.*` whiteout
 * xattrs, as it must when mounted inside a user namespace.
 *
 * @example Mount data for a sandbox
 * ```ts
 * import { overlaySpec } from "denobox/image";
 * const spec = overlaySpec(["/l/a", "/l/b"], "/c/upper", "/c/work");
 * console.log(spec.data); // lowerdir=/l/b:/l/a,upperdir=/c/upper,workdir=/c/work
 * ```
 */
export function overlaySpec(
  layers: readonly string[],
  upperdir: string,
  workdir: string,
  options: { userxattr?: boolean } = {},
): OverlayMountSpec {
  for (const p of [...layers, upperdir, workdir]) {
    if (/[,:\\]/.test(p)) {
      throw new TypeError(
        `Cannot build overlay mount: path holds ',', ':' or '\\': ${p}`,
      );
    }
  }
  const lowerdir = [...layers].reverse();
  const data = `lowerdir=${
    lowerdir.join(":")
  },upperdir=${upperdir},workdir=${workdir}${
    options.userxattr ? ",userxattr" : ""
  }`;
  if (data.length > MAX_MOUNT_DATA) {
    throw new RangeError(
      `Cannot build overlay mount: ${layers.length} layers make ${data.length} bytes of mount data (limit ${MAX_MOUNT_DATA}); use a store path that is shorter`,
    );
  }
  return {
    type: "overlay",
    source: "overlay",
    lowerdir,
    upperdir,
    workdir,
    data,
  };
}

// overlayfs creates `work/work` with mode 000: a rootless owner must open it up to remove it.
async function removeTree(path: string): Promise<void> {
  try {
    await Deno.remove(path, { recursive: true });
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return;
    if (!(e instanceof Deno.errors.PermissionDenied)) throw e;
    openDirs(path);
    await Deno.remove(path, { recursive: true });
  }
}

function openDirs(dir: string): void {
  try {
    Deno.chmodSync(dir, 0o700);
    for (const e of Deno.readDirSync(dir)) {
      if (e.isDirectory) openDirs(join(dir, e.name));
    }
  } catch { /* not ours: the retried remove reports it */ }
}

function unmount(target: string): void {
  for (let i = 0;; i++) {
    try {
      umount(target);
      return;
    } catch (e) {
      if (e instanceof SyscallError && e.code === "EINVAL") return; // not mounted
      if (e instanceof SyscallError && e.code === "EBUSY" && i >= 20) {
        umount(target, { detach: true });
        return;
      }
      if (!(e instanceof SyscallError && e.code === "EBUSY")) throw e;
    }
  }
}

/** Whether a sandbox can mount overlayfs rootless here, and if not, why. */
export interface RootlessOverlaySupport {
  /** True when an unprivileged user namespace may mount an overlay with its upper in `dir`. */
  supported: boolean;
  /** What was found: the kernel release, or the probe's failure. */
  reason: string;
}

const probed = new Map<string, Promise<RootlessOverlaySupport>>();

function kernelAtLeast(release: string, major: number, minor: number): boolean {
  const m = /^(\d+)\.(\d+)/.exec(release);
  if (!m) return false;
  const [a, b] = [Number(m[1]), Number(m[2])];
  return a > major || (a === major && b >= minor);
}

/**
 * Finds out whether overlayfs can be mounted inside an unprivileged user namespace with its
 * upper directory on `dir`'s filesystem: the kernel must be 5.11+ and a real probe (a sandbox
 * that mounts an overlay of empty directories under `dir`, then fails its exec on purpose)
 * must get past the mount. The answer is cached per filesystem for the process.
 *
 * @example Choose a rootfs mode
 * ```ts ignore
 * import { rootlessOverlaySupport } from "denobox/image";
 * const s = await rootlessOverlaySupport(await Deno.makeTempDir());
 * console.log(s.supported ? "overlay" : `copy: ${s.reason}`);
 * ```
 */
export function rootlessOverlaySupport(
  dir: string,
): Promise<RootlessOverlaySupport> {
  const key = String(Deno.statSync(dir).dev);
  let p = probed.get(key);
  if (!p) {
    p = probeOverlay(dir);
    probed.set(key, p);
  }
  return p;
}

async function probeOverlay(dir: string): Promise<RootlessOverlaySupport> {
  const release = Deno.osRelease();
  if (!kernelAtLeast(release, 5, 11)) {
    return {
      supported: false,
      reason:
        `kernel ${release} cannot mount overlayfs in a user namespace (needs 5.11+)`,
    };
  }
  const { spawn, SandboxSetupError } = await import("denobox/sandbox");
  const probe = join(dir, `.overlay-probe-${crypto.randomUUID().slice(0, 8)}`);
  const [lower, upper, work] = ["lower", "upper", "work"].map((d) =>
    join(probe, d)
  ) as [string, string, string];
  try {
    for (const d of [probe, lower, upper, work]) await Deno.mkdir(d);
    await using sb = await spawn({
      argv: ["/.denobox-overlay-probe"],
      rootfs: { overlay: { lower: [lower], upper, work, userxattr: true } },
      namespaces: { user: true, net: false },
      stdin: "null",
      stdout: "null",
      stderr: "null",
    });
    await sb.status;
    return { supported: true, reason: `kernel ${release}: the probe ran` };
  } catch (e) {
    // The exec fails by design: reaching it means the overlay was mounted.
    if (e instanceof SandboxSetupError && e.step.startsWith("execve")) {
      return {
        supported: true,
        reason: `kernel ${release}: the probe mounted`,
      };
    }
    return {
      supported: false,
      reason: `overlayfs in a user namespace failed (kernel ${release}): ${
        e instanceof Error ? e.message : String(e)
      }`,
    };
  } finally {
    await removeTree(probe);
  }
}

/**
 * Makes a root filesystem for a container from `image` in `containerDir` (created; must not
 * exist yet). In overlay and sandbox modes the layers are unpacked once into the store and
 * shared; the container writes to `containerDir/upper`. In copy mode `containerDir/rootfs` is
 * a private unpacked copy, and a snapshot remembers it so `diff()` can find the changes. Give
 * `spawnRootfs` to `spawn()` (it is the overlay itself in sandbox mode). Disposing unmounts,
 * removes `containerDir` and releases the image for garbage collection.
 *
 * @example Run something in an image's rootfs, root or rootless
 * ```ts ignore
 * import { ImageStore, mountRootfs } from "denobox/image";
 * import { spawn } from "denobox/sandbox";
 * const store = await ImageStore.open();
 * await using rootfs = await mountRootfs(await store.resolve("busybox:latest"), "/tmp/ctr1");
 * await using sb = await spawn({ argv: ["/bin/true"], rootfs: rootfs.spawnRootfs! });
 * console.log(rootfs.mode, (await sb.status).code);
 * ```
 */
export async function mountRootfs(
  image: StoredImage,
  containerDir: string,
  options: MountRootfsOptions = {},
): Promise<Rootfs> {
  const root = ids().euid === 0;
  const store = image.store;
  let mode: RootfsMode;
  let fallbackReason: string | null = null;
  if (options.mode === undefined || options.mode === "auto") {
    if (root) mode = "overlay";
    else {
      const s = await rootlessOverlaySupport(store.root);
      mode = s.supported ? "sandbox" : "copy";
      if (!s.supported) fallbackReason = s.reason;
    }
  } else mode = options.mode;
  // Rootless, the layers and the upper are the caller's own files; in the container they
  // belong to root (the sandbox maps uid 0 to the caller), and so they go in a commit.
  const owners: IdMapping | undefined = root ? undefined : {
    uidMap: [{ containerId: 0, hostId: ids().euid, size: 1 }],
    gidMap: [{ containerId: 0, hostId: ids().egid, size: 1 }],
  };
  await using stack = new AsyncDisposableStack();
  stack.use(await store.lease([image.digest]));
  await Deno.mkdir(containerDir, { mode: 0o700 }).catch((e) => {
    if (e instanceof Deno.errors.AlreadyExists) {
      throw new Error(
        `Cannot make rootfs in ${containerDir}: it already exists`,
        { cause: e },
      );
    }
    throw e;
  });
  stack.defer(() => removeTree(containerDir));
  let path: string, upper: string | null = null;
  let spawnRootfs: string | OverlayRootfs;
  let snapshot: TreeSnapshot | null = null;
  if (mode === "overlay" || mode === "sandbox") {
    const layers = await store.unpackLayers(image, options.apply ?? {});
    upper = join(containerDir, "upper");
    const work = join(containerDir, "work");
    for (const d of [upper, work]) await Deno.mkdir(d, { mode: 0o755 });
    const lowers = layers.length > 0 ? layers : [join(containerDir, "empty")];
    if (layers.length === 0) await Deno.mkdir(lowers[0]!);
    const spec = overlaySpec(lowers, upper, work, { userxattr: !root });
    if (mode === "sandbox") {
      path = upper;
      spawnRootfs = {
        overlay: { lower: spec.lowerdir, upper, work, userxattr: !root },
      };
    } else {
      path = join(containerDir, "merged");
      await Deno.mkdir(path, { mode: 0o755 });
      try {
        mount("overlay", path, { type: "overlay", data: spec.data });
      } catch (e) {
        if (e instanceof SyscallError && e.code === "EPERM") {
          throw e.withHint(
            'mounting overlayfs here needs root; use { mode: "sandbox" } (the sandbox mounts it) or { mode: "copy" }',
          ).withContext(`rootfs ${containerDir}`);
        }
        throw e instanceof SyscallError
          ? e.withContext(`rootfs ${containerDir}`)
          : e;
      }
      const merged = path;
      stack.defer(() => unmount(merged));
      spawnRootfs = path;
    }
  } else {
    path = join(containerDir, "rootfs");
    await Deno.mkdir(path, { mode: 0o755 });
    for (const desc of image.manifest.layers) {
      await applyLayer(path, store.readBlob(desc.digest), {
        ...options.apply,
        whiteouts: "apply",
      });
    }
    snapshot = snapshotTree(path);
    spawnRootfs = path;
  }
  const moved = stack.move();
  const rootDir = path, upperDir = upper, snap = snapshot;
  const owned = owners ? { owners } : {};
  return {
    path: rootDir,
    mode,
    spawnRootfs,
    fallbackReason,
    image,
    upper: upperDir,
    dir: containerDir,
    diff: () =>
      snap === null
        ? diffTar(upperDir!, owned)
        : diffTar(rootDir, { base: snap, ...owned }),
    async [Symbol.asyncDispose]() {
      await moved.disposeAsync();
    },
  };
}
