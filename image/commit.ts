/**
 * Commit: a container's changes become a new layer on top of its image, with a new config.
 * @module
 */
import { type ByteSource, chunks, gzip, Hasher } from "./_stream.ts";
import type { Rootfs } from "./rootfs.ts";
import { diffTar } from "./diff.ts";
import { hostArchitecture } from "./platform.ts";
import type { ImageStore, StoredImage } from "./store.ts";
import {
  type ContainerConfig,
  type Descriptor,
  type ImageConfig,
  MediaType,
} from "./types.ts";

/** Config changes a commit or build step applies (Docker's `commit --change` set). */
export interface ConfigChanges {
  /** Replaces `CMD`. */
  cmd?: string[] | null;
  /** Replaces `ENTRYPOINT`. */
  entrypoint?: string[] | null;
  /** Sets (or, with `null`, removes) environment variables. */
  env?: Record<string, string | null>;
  /** Replaces `WORKDIR`. */
  workdir?: string;
  /** Replaces `USER`. */
  user?: string;
  /** Sets (or, with `null`, removes) labels. */
  labels?: Record<string, string | null>;
}

/** Options of `commit`. */
export interface CommitOptions {
  /** Name the new image (`name[:tag]`). */
  tag?: string;
  /** History text (`created_by`). Default "denobox commit". */
  createdBy?: string;
  /** History comment. */
  comment?: string;
  /** Config changes. */
  changes?: ConfigChanges;
  /** gzip level of the new layer (1 fastest, 9 smallest; default 6). */
  compressionLevel?: number;
}

/** Applies config changes to a copy of `config` (the runtime part). */
export function applyChanges(
  config: ContainerConfig,
  changes: ConfigChanges,
): ContainerConfig {
  const out: ContainerConfig = structuredClone(config);
  if (changes.cmd !== undefined) out.Cmd = changes.cmd;
  if (changes.entrypoint !== undefined) out.Entrypoint = changes.entrypoint;
  if (changes.workdir !== undefined) out.WorkingDir = changes.workdir;
  if (changes.user !== undefined) out.User = changes.user;
  if (changes.env !== undefined) {
    const env = new Map((out.Env ?? []).map((kv) => {
      const i = kv.indexOf("=");
      return [
        i < 0 ? kv : kv.slice(0, i),
        i < 0 ? "" : kv.slice(i + 1),
      ] as const;
    }));
    for (const [k, v] of Object.entries(changes.env)) {
      if (k === "" || k.includes("=")) {
        throw new TypeError(`Invalid environment variable name: ${k}`);
      }
      if (v === null) env.delete(k);
      else env.set(k, v);
    }
    out.Env = [...env].map(([k, v]) => `${k}=${v}`);
  }
  if (changes.labels !== undefined) {
    const labels = { ...(out.Labels ?? {}) };
    for (const [k, v] of Object.entries(changes.labels)) {
      if (v === null) delete labels[k];
      else labels[k] = v;
    }
    out.Labels = labels;
  }
  return out;
}

/**
 * Stores an uncompressed layer tar stream as a gzip blob; returns its descriptor and DiffID.
 */
export async function storeLayer(
  store: ImageStore,
  tar: ByteSource,
  options: { compressionLevel?: number } = {},
): Promise<{ descriptor: Descriptor; diffId: string }> {
  const diff = new Hasher();
  async function* tee(): AsyncGenerator<Uint8Array> {
    for await (const c of chunks(tar)) {
      diff.update(c);
      yield c;
    }
  }
  const desc = await store.putBlob(gzip(tee(), options.compressionLevel ?? 6), {
    mediaType: MediaType.OCI_LAYER_GZIP,
  });
  return { descriptor: desc, diffId: diff.digest() };
}

/**
 * Adds a layer (from `layer`, or none for a config-only change) and config changes on top of
 * `base`; stores the new manifest and tags it when asked. Returns the new image.
 */
export async function extendImage(
  base: StoredImage,
  layer: { descriptor: Descriptor; diffId: string } | null,
  options: CommitOptions = {},
): Promise<StoredImage> {
  const store = base.store;
  const now = new Date().toISOString();
  const config: ImageConfig = structuredClone(base.config);
  config.created = now;
  config.config = applyChanges(config.config ?? {}, options.changes ?? {});
  if (layer) config.rootfs.diff_ids.push(layer.diffId);
  config.history = [...(config.history ?? []), {
    created: now,
    created_by: options.createdBy ?? "denobox commit",
    ...(options.comment !== undefined ? { comment: options.comment } : {}),
    ...(layer ? {} : { empty_layer: true }),
  }];
  const layers = [...base.manifest.layers];
  if (layer) layers.push(layer.descriptor);
  const manifest = await store.putImage(config, layers);
  if (options.tag !== undefined) await store.tag(options.tag, manifest.digest);
  return await store.resolve(manifest.digest);
}

/**
 * Commits a container's rootfs: its changes (overlay upper directory, or the difference from
 * its snapshot in copy mode; deletions as `.wh.` whiteouts, opaque directories as
 * `.wh..wh..opq`) become a gzip layer on top of its image, with a history entry and the
 * config changes given; tagged when `tag` is set.
 *
 * @example Commit a change
 * ```ts ignore
 * import { commit, ImageStore, mountRootfs } from "denobox/image";
 * const store = await ImageStore.open();
 * await using rootfs = await mountRootfs(await store.resolve("busybox"), "/tmp/ctr");
 * await Deno.writeTextFile(`${rootfs.path}/hello`, "hi\n");
 * const img = await commit(rootfs, { tag: "busybox:hello", changes: { cmd: ["cat", "/hello"] } });
 * console.log(img.digest);
 * ```
 */
export async function commit(
  rootfs: Rootfs,
  options: CommitOptions = {},
): Promise<StoredImage> {
  const store = rootfs.image.store;
  using _ = await store.lock();
  const layer = await storeLayer(store, rootfs.diff(), options);
  return await extendImage(rootfs.image, layer, options);
}

/**
 * Makes a one-layer image from a directory tree (like `docker import`): every file in `dir`
 * goes into the layer as it is (owners, modes, times, xattrs), with the given runtime config.
 *
 * @example An image from a busybox tree
 * ```ts ignore
 * import { ImageStore, importTree } from "denobox/image";
 * const store = await ImageStore.open();
 * const img = await importTree(store, "/srv/busybox-root", {
 *   tag: "busybox:local",
 *   config: { Env: ["PATH=/bin"], Cmd: ["/bin/sh"] },
 * });
 * console.log(img.digest);
 * ```
 */
export async function importTree(
  store: ImageStore,
  dir: string,
  options: {
    tag?: string;
    config?: ContainerConfig;
    compressionLevel?: number;
  } = {},
): Promise<StoredImage> {
  using _ = await store.lock();
  const layer = await storeLayer(
    store,
    diffTar(dir, { base: new Map() }),
    options,
  );
  const now = new Date().toISOString();
  const config: ImageConfig = {
    created: now,
    architecture: hostArchitecture(),
    os: "linux",
    config: options.config ?? {},
    rootfs: { type: "layers", diff_ids: [layer.diffId] },
    history: [{ created: now, created_by: `denobox import ${dir}` }],
  };
  const manifest = await store.putImage(config, [layer.descriptor]);
  if (options.tag !== undefined) await store.tag(options.tag, manifest.digest);
  return await store.resolve(manifest.digest);
}
