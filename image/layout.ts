/**
 * Import and export: OCI image layouts (a directory or a tar of one) and `docker save`
 * tarballs (manifest.json + config + layer tars, old or new style).
 * @module
 */
import { basename, join } from "node:path";
import { applyLayer } from "./apply.ts";
import { decompress, fileChunks, sniffCompression } from "./_stream.ts";
import { selectPlatform } from "./platform.ts";
import type { ImageStore, StoredImage } from "./store.ts";
import { TarWriter } from "./tar.ts";
import { ociManifest } from "./_manifest.ts";
import {
  type Descriptor,
  type ImageConfig,
  type ImageIndex,
  type Manifest,
  MediaType,
} from "./types.ts";

/** Options of `importImage`. */
export interface ImportOptions {
  /**
   * Repository name for OCI layout tags that are bare tags (`latest`, as umoci writes them).
   * Default: the file or directory name without extension.
   */
  name?: string;
  /** Platform to pick from an image index (default this machine's, linux). */
  platform?: { os?: string; architecture?: string; variant?: string };
}

/** Options of `exportImage`. */
export interface ExportOptions {
  /** `"oci"` (default): an OCI image layout. `"docker"`: what `docker save` writes. */
  format?: "oci" | "docker";
  /** Write a tar file at the destination instead of a directory (default: by extension `.tar`). */
  tar?: boolean;
}

const dec = new TextDecoder();
const enc = new TextEncoder();

async function isDir(path: string): Promise<boolean> {
  return (await Deno.stat(path)).isDirectory;
}

async function readJson<T>(path: string): Promise<T> {
  return JSON.parse(await Deno.readTextFile(path)) as T;
}

function layerType(head: Uint8Array): string {
  const c = sniffCompression(head);
  return c === "gzip"
    ? MediaType.OCI_LAYER_GZIP
    : c === "zstd"
    ? MediaType.OCI_LAYER_ZSTD
    : MediaType.OCI_LAYER;
}

async function head(path: string): Promise<Uint8Array> {
  using f = await Deno.open(path);
  const b = new Uint8Array(8);
  const n = await f.read(b);
  return b.subarray(0, n ?? 0);
}

function blobFile(dir: string, digest: string): string {
  const [alg, hex] = digest.split(":");
  if (alg !== "sha256" || !/^[a-f0-9]{64}$/.test(hex ?? "")) {
    throw new TypeError(`Invalid digest in image layout: ${digest}`);
  }
  return join(dir, "blobs", alg, hex!);
}

async function importOciLayout(
  store: ImageStore,
  dir: string,
  options: ImportOptions,
  defaultName: string,
): Promise<StoredImage[]> {
  const index = await readJson<ImageIndex>(join(dir, "index.json"));
  const out: StoredImage[] = [];
  const copy = async (d: Descriptor) => {
    if (!(await store.hasBlob(d.digest))) {
      await store.putBlob(fileChunks(blobFile(dir, d.digest)), {
        expected: d.digest,
      });
    }
  };
  for (const top of index.manifests) {
    let desc = top;
    if (
      desc.mediaType === MediaType.OCI_INDEX ||
      desc.mediaType === MediaType.DOCKER_LIST
    ) {
      const sub = await readJson<ImageIndex>(blobFile(dir, desc.digest));
      desc = selectPlatform(sub.manifests, options.platform);
    }
    const manifest = await readJson<Manifest>(blobFile(dir, desc.digest));
    await copy(manifest.config);
    for (const l of manifest.layers) await copy(l);
    await copy(desc);
    const refName = top.annotations?.["org.opencontainers.image.ref.name"];
    if (refName !== undefined) {
      const full = refName.includes(":") || refName.includes("/")
        ? refName
        : `${options.name ?? defaultName}:${refName}`;
      await store.tag(full, desc.digest);
    }
    out.push(await store.resolve(desc.digest));
  }
  return out;
}

interface DockerSaveEntry {
  Config: string;
  RepoTags: string[] | null;
  Layers: string[];
}

async function importDockerSave(
  store: ImageStore,
  dir: string,
): Promise<StoredImage[]> {
  const entries = await readJson<DockerSaveEntry[]>(join(dir, "manifest.json"));
  const out: StoredImage[] = [];
  for (const e of entries) {
    const cfgBytes = await Deno.readFile(join(dir, e.Config));
    const config = JSON.parse(dec.decode(cfgBytes)) as ImageConfig;
    // stored as the archive has it, byte for byte: its digest is the image's ID
    const cfg = await store.putBytes(cfgBytes, MediaType.OCI_CONFIG);
    const layers: Descriptor[] = [];
    for (const l of e.Layers) {
      const path = join(dir, l);
      const d = await store.putBlob(fileChunks(path), {
        mediaType: layerType(await head(path)),
      });
      layers.push(d);
    }
    if (config.rootfs.diff_ids.length !== layers.length) {
      throw new Error(
        `Cannot import ${e.Config}: ${layers.length} layers, config lists ${config.rootfs.diff_ids.length}`,
      );
    }
    const m = await store.putJson(
      ociManifest(cfg, layers),
      MediaType.OCI_MANIFEST,
    );
    for (const t of e.RepoTags ?? []) await store.tag(t, m.digest);
    out.push(await store.resolve(m.digest));
  }
  return out;
}

/**
 * Imports images from an OCI image layout (directory or tar) or a `docker save` tarball
 * (directory or tar, compressed or not); tags them as the archive names them. Every blob is
 * verified against its digest on the way in; a tar is unpacked with the same hostile-archive
 * checks as a layer.
 *
 * @example Import what `docker save` wrote
 * ```ts ignore
 * import { ImageStore, importImage } from "denobox/image";
 * const store = await ImageStore.open();
 * const [img] = await importImage(store, "busybox.tar");
 * console.log(img!.names);
 * ```
 */
export async function importImage(
  store: ImageStore,
  path: string,
  options: ImportOptions = {},
): Promise<StoredImage[]> {
  const defaultName =
    basename(path).replace(/(\.tar)?(\.gz|\.zst)?$/, "").toLowerCase()
      .replace(/[^a-z0-9._-]/g, "-") || "imported";
  let dir = path;
  let tmp: string | null = null;
  if (!(await isDir(path))) {
    tmp = store.tempPath("import");
    await Deno.mkdir(tmp);
    dir = tmp;
  }
  try {
    if (tmp !== null) {
      await applyLayer(tmp, fileChunks(path), {
        owners: "ignore",
        devices: "error",
        xattrs: false,
      });
    }
    using _ = await store.lock();
    const has = async (p: string) =>
      await Deno.lstat(join(dir, p)).then(() => true, () => false);
    if (await has("manifest.json")) return await importDockerSave(store, dir);
    if (await has("oci-layout")) {
      return await importOciLayout(store, dir, options, defaultName);
    }
    throw new Error(
      `Cannot import ${path}: neither an OCI image layout nor a docker save archive`,
    );
  } finally {
    if (tmp !== null) {
      await Deno.remove(tmp, { recursive: true }).catch(() => {});
    }
  }
}

// Where exported files go: a directory or a tar stream written to a file.
interface Sink {
  file(name: string, data: Uint8Array): Promise<void>;
  copy(name: string, path: string): Promise<void>;
  close(): Promise<void>;
}

async function dirSink(dest: string): Promise<Sink> {
  await Deno.mkdir(dest, { recursive: true });
  const ensure = async (name: string) => {
    const i = name.lastIndexOf("/");
    if (i > 0) {
      await Deno.mkdir(join(dest, name.slice(0, i)), { recursive: true });
    }
  };
  return {
    async file(name, data) {
      await ensure(name);
      await Deno.writeFile(join(dest, name), data);
    },
    async copy(name, path) {
      await ensure(name);
      await Deno.copyFile(path, join(dest, name));
    },
    async close() {},
  };
}

async function tarSink(dest: string): Promise<Sink> {
  const tmp = `${dest}.tmp-${Deno.pid}`;
  const f = await Deno.open(tmp, { write: true, create: true, truncate: true });
  const w = new TarWriter();
  const dirs = new Set<string>();
  const flush = async () => {
    const b = w.take();
    for (let off = 0; off < b.length;) off += await f.write(b.subarray(off));
  };
  const parents = (name: string) => {
    const parts = name.split("/").slice(0, -1);
    for (let i = 1; i <= parts.length; i++) {
      const d = parts.slice(0, i).join("/");
      if (!dirs.has(d)) {
        dirs.add(d);
        w.add({ name: d, type: "dir" });
      }
    }
  };
  return {
    async file(name, data) {
      parents(name);
      w.add({ name }, data);
      await flush();
    },
    async copy(name, path) {
      parents(name);
      const size = (await Deno.stat(path)).size;
      w.add({ name, size });
      for await (const c of fileChunks(path)) {
        w.write(c);
        await flush();
      }
    },
    async close() {
      const b = w.finish();
      for (let off = 0; off < b.length;) off += await f.write(b.subarray(off));
      f.close();
      await Deno.rename(tmp, dest);
    },
  };
}

/**
 * Exports images (by name or digest) to an OCI image layout or a `docker save` archive, as a
 * directory or a tar file. Docker archives carry uncompressed layers, as `docker load`
 * expects; OCI layouts keep the blobs as stored.
 *
 * @example Save an image for `docker load`
 * ```ts ignore
 * import { exportImage, ImageStore } from "denobox/image";
 * const store = await ImageStore.open();
 * await exportImage(store, ["busybox:latest"], "busybox.tar", { format: "docker" });
 * ```
 */
export async function exportImage(
  store: ImageStore,
  refs: readonly string[],
  dest: string,
  options: ExportOptions = {},
): Promise<void> {
  const images: [string, StoredImage][] = [];
  for (const r of refs) images.push([r, await store.resolve(r)]);
  const asTar = options.tar ?? dest.endsWith(".tar");
  const sink = asTar ? await tarSink(dest) : await dirSink(dest);
  const written = new Set<string>();
  const blob = async (d: string) => {
    const name = `blobs/sha256/${d.slice(7)}`;
    if (written.has(name)) return;
    written.add(name);
    await verifyBlob(store, d);
    await sink.copy(name, store.blobPath(d));
  };
  try {
    if ((options.format ?? "oci") === "oci") {
      const manifests: Descriptor[] = [];
      for (const [ref, img] of images) {
        await blob(img.manifest.config.digest);
        for (const l of img.manifest.layers) await blob(l.digest);
        await blob(img.digest);
        const size = (await Deno.stat(store.blobPath(img.digest))).size;
        const name = /^(sha256:)?[a-f0-9]{6,64}$/.test(ref)
          ? img.names[0]
          : ref;
        manifests.push({
          mediaType: img.mediaType,
          digest: img.digest,
          size,
          ...(name
            ? { annotations: { "org.opencontainers.image.ref.name": name } }
            : {}),
        });
      }
      await sink.file(
        "oci-layout",
        enc.encode(JSON.stringify({ imageLayoutVersion: "1.0.0" })),
      );
      await sink.file(
        "index.json",
        enc.encode(
          JSON.stringify({
            schemaVersion: 2,
            mediaType: MediaType.OCI_INDEX,
            manifests,
          }),
        ),
      );
    } else {
      const entries: DockerSaveEntry[] = [];
      for (const [ref, img] of images) {
        const cfgName = `${img.manifest.config.digest.slice(7)}.json`;
        if (!written.has(cfgName)) {
          written.add(cfgName);
          await sink.file(
            cfgName,
            await store.blobBytes(img.manifest.config.digest),
          );
        }
        const layers: string[] = [];
        for (const [i, l] of img.manifest.layers.entries()) {
          const diffId = img.config.rootfs.diff_ids[i]!;
          const name = `${diffId.slice(7)}/layer.tar`;
          layers.push(name);
          if (written.has(name)) continue;
          written.add(name);
          const tmp = store.tempPath("export");
          try {
            {
              using f = await Deno.open(tmp, { write: true, createNew: true });
              for await (const c of decompress(store.readBlob(l.digest))) {
                for (let off = 0; off < c.length;) {
                  off += await f.write(c.subarray(off));
                }
              }
            }
            await sink.copy(name, tmp);
          } finally {
            await Deno.remove(tmp).catch(() => {});
          }
        }
        const tags = /^(sha256:)?[a-f0-9]{6,64}$/.test(ref) ? img.names : [ref];
        entries.push({ Config: cfgName, RepoTags: tags, Layers: layers });
      }
      await sink.file("manifest.json", enc.encode(JSON.stringify(entries)));
    }
  } finally {
    await sink.close();
  }
}

async function verifyBlob(store: ImageStore, digest: string): Promise<void> {
  for await (const _ of store.readBlob(digest)) { /* hashing is the point */ }
}
