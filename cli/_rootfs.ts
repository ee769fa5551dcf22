/**
 * A container's root filesystem from an image that outlives the process that mounts it: the
 * writable layer (`upper/`, `work/`) lives in the container's directory until `rm`, so a
 * stopped container keeps its changes for `start`, `cp`, `commit` and `export`; the overlay is
 * mounted (under the runtime directory) only while something uses it. Built from
 * denobox/image's public pieces: the layer store, `overlaySpec`, leases, `diffTar`.
 * Rootless (no overlayfs mount outside a user namespace), either the sandbox mounts the
 * overlay itself in its own namespaces (`spawnRootfs`, kernel 5.11+: a container created with
 * `rootlessOverlay`), or the layers are copied into a private `rootfs/` once, at creation.
 * @module
 */
import { join } from "./_path.ts";
import { ids, mount, umount } from "denobox/libc";
import type { Rootfs, StoredImage } from "denobox/image";
import type { StorePaths } from "./_paths.ts";

/** The image store of a denobox store. */
export async function openImageStore(
  paths: StorePaths,
): Promise<import("denobox/image").ImageStore> {
  const { ImageStore } = await import("denobox/image");
  return await ImageStore.open(join(paths.lib, "images"));
}

/** Where the container's own layer lives. */
export function layerDirs(
  paths: StorePaths,
  id: string,
): { upper: string; work: string; copy: string; merged: string } {
  const dir = join(paths.lib, "containers", id);
  return {
    upper: join(dir, "upper"),
    work: join(dir, "work"),
    copy: join(dir, "rootfs"),
    merged: join(paths.run, "containers", id, "merged"),
  };
}

/**
 * Prepares the writable layer at creation. Rootless: with `rootlessOverlay`, an upper and a
 * work directory for the sandbox to mount, where the kernel allows it; else (or when it does
 * not: the reason is returned) the private copy. Returns the reason for a copy, or null.
 */
export async function prepareLayer(
  paths: StorePaths,
  id: string,
  image: StoredImage,
  options: { rootlessOverlay?: boolean } = {},
): Promise<string | null> {
  const d = layerDirs(paths, id);
  let reason = "rootless overlay not requested";
  if (paths.rootless && options.rootlessOverlay) {
    const { rootlessOverlaySupport } = await import("denobox/image");
    const s = await rootlessOverlaySupport(paths.lib);
    if (s.supported) {
      await Deno.mkdir(d.upper, { mode: 0o755 });
      await Deno.mkdir(d.work, { mode: 0o700 });
      return null;
    }
    reason = s.reason;
  }
  if (!paths.rootless) {
    await Deno.mkdir(d.upper, { mode: 0o755 });
    await Deno.mkdir(d.work, { mode: 0o700 });
    return null;
  }
  const { applyLayer } = await import("denobox/image");
  await Deno.mkdir(d.copy, { mode: 0o755 });
  for (const desc of image.manifest.layers) {
    await applyLayer(d.copy, image.store.readBlob(desc.digest), {
      whiteouts: "apply",
    });
  }
  return reason;
}

const isDir = (p: string) => {
  try {
    return Deno.statSync(p).isDirectory;
  } catch {
    return false;
  }
};

/**
 * Mounts the container's root filesystem; disposing unmounts it (the layer stays). The image's
 * layers are leased for as long as the mount is held, so `system prune` keeps them. Give
 * `spawnRootfs` to spawn: for a rootless overlay container (mode `"sandbox"`) it is the
 * overlay the sandbox mounts, and `path` is only its upper directory (no merged view exists
 * on the host).
 */
export async function attachRootfs(
  paths: StorePaths,
  id: string,
  image: StoredImage,
): Promise<Rootfs> {
  const d = layerDirs(paths, id);
  const store = image.store;
  await using stack = new AsyncDisposableStack();
  stack.use(await store.lease([image.digest]));
  let path: string;
  let spawnRootfs: string | import("denobox/sandbox").OverlayRootfs;
  const sandboxMode = paths.rootless && !isDir(d.copy);
  if (paths.rootless && !sandboxMode) {
    path = spawnRootfs = d.copy;
  } else if (sandboxMode) {
    const { overlaySpec } = await import("denobox/image");
    const layers = await store.unpackLayers(image);
    let lowers = layers;
    if (lowers.length === 0) {
      const empty = join(paths.run, "containers", id, "empty");
      await Deno.mkdir(empty, { recursive: true });
      lowers = [empty];
    }
    const spec = overlaySpec(lowers, d.upper, d.work, { userxattr: true });
    path = d.upper;
    spawnRootfs = {
      overlay: { lower: spec.lowerdir, upper: d.upper, work: d.work },
    };
  } else {
    const { overlaySpec } = await import("denobox/image");
    const layers = await store.unpackLayers(image);
    await Deno.mkdir(d.merged, { recursive: true, mode: 0o755 });
    let lowers = layers;
    if (lowers.length === 0) {
      const empty = join(paths.run, "containers", id, "empty");
      await Deno.mkdir(empty, { recursive: true });
      lowers = [empty];
    }
    detachStale(d.merged);
    mount("overlay", d.merged, {
      type: "overlay",
      data: overlaySpec(lowers, d.upper, d.work).data,
    });
    stack.defer(() => {
      detachStale(d.merged);
    });
    path = spawnRootfs = d.merged;
  }
  const moved = stack.move();
  const { diffTar } = await import("denobox/image");
  const copy = paths.rootless && !sandboxMode;
  // Rootless, the files are the caller's; in the container they were root's.
  const owners = paths.rootless
    ? {
      owners: {
        uidMap: [{ containerId: 0, hostId: ids().euid, size: 1 }],
        gidMap: [{ containerId: 0, hostId: ids().egid, size: 1 }],
      },
    }
    : {};
  return {
    path,
    mode: copy ? "copy" : sandboxMode ? "sandbox" : "overlay",
    spawnRootfs,
    image,
    upper: copy ? null : d.upper,
    dir: join(paths.lib, "containers", id),
    diff: () => diffTar(copy ? d.copy : d.upper, owners),
    async [Symbol.asyncDispose]() {
      await moved.disposeAsync();
    },
  };
}

/** Unmounts `dir` if something is mounted there (left by a process that died). */
export function detachStale(dir: string): void {
  for (;;) {
    try {
      umount(dir, { detach: true });
    } catch {
      return;
    }
  }
}

/** Removes the runtime directory of a container (after its mounts are gone). */
export function removeRuntimeDir(paths: StorePaths, id: string): void {
  const run = join(paths.run, "containers", id);
  detachStale(join(run, "merged"));
  try {
    Deno.removeSync(run, { recursive: true });
  } catch { /* never made, or gone */ }
}
