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
import { ids, mount, MountFlag, Prctl, umount } from "denobox/libc";
import type { IdMapping, Rootfs, StoredImage } from "denobox/image";
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
): {
  upper: string;
  work: string;
  copy: string;
  snapshot: string;
  merged: string;
} {
  const dir = join(paths.lib, "containers", id);
  return {
    upper: join(dir, "upper"),
    work: join(dir, "work"),
    copy: join(dir, "rootfs"),
    snapshot: join(dir, "rootfs.snapshot.json"),
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
  const { applyLayer, snapshotTree } = await import("denobox/image");
  await Deno.mkdir(d.copy, { mode: 0o755 });
  for (const desc of image.manifest.layers) {
    await applyLayer(d.copy, image.store.readBlob(desc.digest), {
      whiteouts: "apply",
    });
  }
  // what the copy held at creation: `commit` stores only what changed since
  const tmp = `${d.snapshot}.${Deno.pid}.tmp`;
  await Deno.writeTextFile(
    tmp,
    JSON.stringify([...snapshotTree(d.copy)]),
    { mode: 0o600 },
  );
  await Deno.rename(tmp, d.snapshot);
  return reason;
}

/** How a container's root filesystem is kept: see `attachRootfs`. */
export function layerMode(
  paths: StorePaths,
  id: string,
): "overlay" | "sandbox" | "copy" {
  if (!paths.rootless) return "overlay";
  return isDir(layerDirs(paths, id).copy) ? "copy" : "sandbox";
}

/** The id maps of a rootless container's files (they were root's inside), for `diffTar`. */
export function ownersOf(paths: StorePaths): { owners?: IdMapping } {
  if (!paths.rootless) return {};
  return {
    owners: {
      uidMap: [{ containerId: 0, hostId: ids().euid, size: 1 }],
      gidMap: [{ containerId: 0, hostId: ids().egid, size: 1 }],
    },
  };
}

/**
 * The container's changes as an uncompressed layer tar stream: the overlay's upper directory,
 * or, for a private copy, the difference from the snapshot taken at creation (a copy without
 * one, made by an older denobox, cannot tell its changes from the image: an error).
 */
export async function layerDiff(
  paths: StorePaths,
  id: string,
): Promise<AsyncGenerator<Uint8Array>> {
  const { diffTar } = await import("denobox/image");
  const d = layerDirs(paths, id);
  if (layerMode(paths, id) !== "copy") {
    return diffTar(d.upper, ownersOf(paths));
  }
  let base: Map<string, string>;
  try {
    base = new Map(JSON.parse(await Deno.readTextFile(d.snapshot)));
  } catch (e) {
    throw new Error(
      `cannot tell its changes from its image (no snapshot of its copy: ${
        e instanceof Error ? e.message : e
      }); use 'denobox export' and 'denobox import' instead`,
    );
  }
  return diffTar(d.copy, { base, ...ownersOf(paths) });
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
  const copy = paths.rootless && !sandboxMode;
  return {
    path,
    mode: copy ? "copy" : sandboxMode ? "sandbox" : "overlay",
    spawnRootfs,
    image,
    upper: copy ? null : d.upper,
    dir: join(paths.lib, "containers", id),
    diff: async function* () {
      yield* await layerDiff(paths, id);
    },
    async [Symbol.asyncDispose]() {
      await moved.disposeAsync();
    },
  };
}

/** A host path through which a container's whole root filesystem can be read and written. */
export interface RootView extends AsyncDisposable {
  /** The container's `/` (no volumes, /proc or /dev mounted in it). */
  readonly path: string;
}

/**
 * The merged root filesystem of a container that is not running, for `cp` and `export` (the
 * caller holds its monitor lock, so it cannot start meanwhile). As root, the overlay mounted
 * on the host; in copy mode, the copy. A rootless overlay (mode `"sandbox"`) has no host
 * mount: a helper process mounts it in user and mount namespaces of its own, chroots into
 * it and waits, so `/proc/<pid>/root` is the merged view (overlayfs does the copy-up and the
 * whiteouts of any write); it exits when the view is disposed, or when this process dies (its
 * sync pipe closes).
 */
export async function openRootView(
  paths: StorePaths,
  id: string,
  image: StoredImage,
): Promise<RootView> {
  if (layerMode(paths, id) !== "sandbox") {
    const r = await attachRootfs(paths, id, image);
    return {
      path: r.path,
      [Symbol.asyncDispose]: () => r[Symbol.asyncDispose](),
    };
  }
  const [{ launch, Program }, { overlaySpec }] = await Promise.all([
    import("denobox/sandbox"),
    import("denobox/image"),
  ]);
  const d = layerDirs(paths, id);
  const store = image.store;
  await using stack = new AsyncDisposableStack();
  stack.use(await store.lease([image.digest]));
  const run = join(paths.run, "containers", id);
  let lowers = await store.unpackLayers(image);
  if (lowers.length === 0) {
    const empty = join(run, "empty");
    await Deno.mkdir(empty, { recursive: true });
    lowers = [empty];
  }
  const target = join(run, "view");
  await Deno.mkdir(target, { recursive: true, mode: 0o700 });
  stack.defer(() => Deno.remove(target).catch(() => {}));
  const data = overlaySpec(lowers, d.upper, d.work, { userxattr: true }).data;
  const { euid, egid } = ids();
  const p = new Program();
  try {
    // the child's copy of the sync pipe's write end: closed, so our death ends its wait
    p.close(p.fds.syncWrite, { mayFail: true });
    p.prctl(Prctl.PR_SET_PDEATHSIG, 9, 0, 0, 0, {
      label: "prctl(PR_SET_PDEATHSIG)",
    });
    p.writeFile("/proc/self/setgroups", "deny");
    p.writeFile("/proc/self/uid_map", `0 ${euid} 1\n`);
    p.writeFile("/proc/self/gid_map", `0 ${egid} 1\n`);
    p.mount(null, "/", { flags: MountFlag.MS_REC | MountFlag.MS_PRIVATE });
    p.mount("overlay", target, { type: "overlay", data });
    p.chroot(target);
    p.chdir("/");
    p.syncPoint();
    p.syscall("exit_group", [0], { label: "exit_group" });
  } catch (e) {
    p[Symbol.dispose]();
    throw e;
  }
  let release!: () => void;
  const released = new Promise<void>((r) => release = r);
  let reached!: (pid: number) => void;
  const waiting = new Promise<number>((r) => reached = r);
  const launched = launch(p, {
    namespaces: ["user", "mnt"],
    setup: [async (child) => {
      reached(child.pid);
      await released;
    }],
  });
  stack.defer(async () => {
    release();
    try {
      await using box = await launched;
      await box.status;
    } catch { /* failed before the view existed: reported below */ }
  });
  const pid = await Promise.race([
    waiting,
    launched.then(() => {
      throw new Error("the helper process exited before mounting");
    }),
  ]).catch((e) => {
    throw new Error(
      `Cannot mount the root filesystem of container ${id.slice(0, 12)}: ${
        e instanceof Error ? e.message : e
      }`,
      { cause: e },
    );
  });
  const moved = stack.move();
  return {
    path: `/proc/${pid}/root`,
    [Symbol.asyncDispose]: () => moved.disposeAsync(),
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
