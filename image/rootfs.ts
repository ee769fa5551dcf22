/**
 * A container's root filesystem from an image: an overlayfs of the image's unpacked layers
 * with a writable upper directory (root), or a private copy of the layers (rootless fallback).
 * @module
 */
import { join } from "node:path";
import { ids, mount, SyscallError, umount } from "denobox/libc";
import { applyLayer, type ApplyOptions } from "./apply.ts";
import { diffTar, snapshotTree, type TreeSnapshot } from "./diff.ts";
import type { StoredImage } from "./store.ts";

/** How a rootfs is made. */
export type RootfsMode = "overlay" | "copy";

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
  /** The directory to use as the container's `/`. */
  readonly path: string;
  /** overlay (layers shared, changes in `upper`) or copy (a private flat copy). */
  readonly mode: RootfsMode;
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
   * `"overlay"`: mount overlayfs here (needs CAP_SYS_ADMIN: root). `"copy"`: unpack the layers
   * into a private directory (works for anyone, costs the copy). `"auto"` (default): overlay
   * as root, copy otherwise. Rootless users who want overlayfs can mount `overlaySpec()`
   * inside a sandbox's own user + mount namespace (kernel 5.11+).
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

async function removeTree(path: string): Promise<void> {
  await Deno.remove(path, { recursive: true }).catch((e) => {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  });
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

/**
 * Makes a root filesystem for a container from `image` in `containerDir` (created; must not
 * exist yet). In overlay mode the layers are unpacked once into the store and shared; the
 * container writes to `containerDir/upper`. In copy mode `containerDir/rootfs` is a private
 * unpacked copy, and a snapshot remembers it so `diff()` can find the changes. Disposing
 * unmounts, removes `containerDir` and releases the image for garbage collection.
 *
 * @example Run something in an image's rootfs
 * ```ts ignore
 * import { ImageStore, mountRootfs } from "denobox/image";
 * const store = await ImageStore.open();
 * await using rootfs = await mountRootfs(await store.resolve("busybox:latest"), "/tmp/ctr1");
 * console.log(rootfs.path); // /tmp/ctr1/merged
 * ```
 */
export async function mountRootfs(
  image: StoredImage,
  containerDir: string,
  options: MountRootfsOptions = {},
): Promise<Rootfs> {
  const mode: RootfsMode = options.mode === undefined || options.mode === "auto"
    ? (ids().euid === 0 ? "overlay" : "copy")
    : options.mode;
  const store = image.store;
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
  let snapshot: TreeSnapshot | null = null;
  if (mode === "overlay") {
    const layers = await store.unpackLayers(image, options.apply ?? {});
    upper = join(containerDir, "upper");
    const work = join(containerDir, "work");
    path = join(containerDir, "merged");
    for (const d of [upper, work, path]) await Deno.mkdir(d, { mode: 0o755 });
    const lowers = layers.length > 0 ? layers : [join(containerDir, "empty")];
    if (layers.length === 0) await Deno.mkdir(lowers[0]!);
    const spec = overlaySpec(lowers, upper, work);
    try {
      mount("overlay", path, { type: "overlay", data: spec.data });
    } catch (e) {
      if (e instanceof SyscallError && e.code === "EPERM") {
        throw e.withHint(
          'mounting overlayfs needs root here; use { mode: "copy" } or mount overlaySpec() inside a sandbox',
        ).withContext(`rootfs ${containerDir}`);
      }
      throw e instanceof SyscallError
        ? e.withContext(`rootfs ${containerDir}`)
        : e;
    }
    const merged = path;
    stack.defer(() => unmount(merged));
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
  }
  const moved = stack.move();
  const rootDir = path, upperDir = upper, snap = snapshot;
  return {
    path: rootDir,
    mode,
    image,
    upper: upperDir,
    dir: containerDir,
    diff: () =>
      snap === null ? diffTar(upperDir!) : diffTar(rootDir, { base: snap }),
    async [Symbol.asyncDispose]() {
      await moved.disposeAsync();
    },
  };
}
