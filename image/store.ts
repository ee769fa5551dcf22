/**
 * The content-addressed image store.
 *
 * Layout under the store directory:
 * - `blobs/sha256/<hex>`: manifests, configs, compressed layers, as pulled or built;
 * - `layers/<hex>/`: a layer unpacked for overlayfs, named by its DiffID (uncompressed digest);
 * - `refs.json`: `name:tag` → manifest digest;
 * - `leases/`: layers in use by mounted rootfs (kept by GC while the owner lives);
 * - `cache/`: the build step cache; `tmp/`: work in progress (same filesystem, for rename);
 *   `tmp/partial-<hex>`: the bytes so far of a blob download, kept across processes so the
 *   next pull resumes it (verified when complete, removed by `gc()` once stale).
 *
 * Every write lands in `tmp/` first and is renamed into place, so a crash or a bad input never
 * leaves a half-written entry; blobs are verified on write and on use. Processes share the
 * store through flock(2): writers take `lock` shared, garbage collection exclusive; `refs.json`
 * updates hold `refs.lock`.
 * @module
 */
import { join } from "node:path";
import { applyLayer, type ApplyOptions } from "./apply.ts";
import { type ByteSource, chunks, fileChunks, Hasher } from "./_stream.ts";
import { formatReference, parseReference } from "./reference.ts";
import { ociManifest } from "./_manifest.ts";
import {
  type Descriptor,
  type ImageConfig,
  type ImageIndex,
  type Manifest,
  MediaType,
} from "./types.ts";

/**
 * A blob whose bytes do not match its digest.
 *
 * @example Tell corruption from other failures
 * ```ts
 * import { DigestMismatchError } from "denobox/image";
 * const e = new DigestMismatchError("blob", "sha256:aa", "sha256:bb");
 * console.log(e.expected, e.actual); // sha256:aa sha256:bb
 * ```
 */
export class DigestMismatchError extends Error {
  /** Always `"DigestMismatchError"`: the class name survives logging and structured cloning. */
  override name = "DigestMismatchError";
  /** What the bytes should hash to. */
  readonly expected: string;
  /** What they hash to. */
  readonly actual: string;
  /** Makes the error. */
  constructor(what: string, expected: string, actual: string) {
    super(
      `Cannot accept ${what}: digest mismatch: expected ${expected}, got ${actual}`,
    );
    this.expected = expected;
    this.actual = actual;
  }
}

/** An image as the store knows it. */
export interface StoredImage {
  /** The manifest digest: the image's identity. */
  digest: string;
  /** The manifest's media type. */
  mediaType: string;
  /** The manifest. */
  manifest: Manifest;
  /** The config. */
  config: ImageConfig;
  /** Names that point at it (`name:tag`). */
  names: string[];
  /** The store it lives in. */
  store: ImageStore;
}

/** One line of `ImageStore.list()`. */
export interface ImageSummary {
  /** `name:tag`. */
  name: string;
  /** Manifest digest. */
  digest: string;
  /** Sum of the compressed layer sizes. */
  size: number;
  /** The config's creation time. */
  created: string | undefined;
}

/** What `gc()` removed. */
export interface GcResult {
  /** Blob digests removed. */
  blobs: string[];
  /** Unpacked layers (DiffIDs) removed. */
  layers: string[];
  /** Bytes freed (blobs only). */
  bytes: number;
  /** Partial downloads removed (their digests): stale, or of blobs the store now holds. */
  partials: string[];
}

/** A partial download held exclusively (see `ImageStore.holdPartial`). */
export interface PartialDownload extends Disposable {
  /** The file holding the bytes so far (append to it; `adoptBlobFile` when complete). */
  readonly path: string;
  /** Bytes already there when it was taken. */
  readonly size: number;
}

const HEX = /^[a-f0-9]{64}$/;

/**
 * Checks a `sha256:<hex>` digest and returns its hex part; a bad one is a `TypeError`.
 *
 * @example Validate a digest
 * ```ts
 * import { digestHex } from "denobox/image";
 * console.log(digestHex(`sha256:${"0".repeat(64)}`).length); // 64
 * ```
 */
export function digestHex(digest: string): string {
  const hex = digest.startsWith("sha256:") ? digest.slice(7) : "";
  if (!HEX.test(hex)) {
    throw new TypeError(`Invalid digest: ${JSON.stringify(digest)}`);
  }
  return hex;
}

/**
 * The store directory used when none is given: /var/lib/denobox as root, else
 * `$XDG_DATA_HOME/denobox` or `~/.local/share/denobox`.
 *
 * @example Where images go
 * ```ts
 * import { defaultStoreDir } from "denobox/image";
 * console.log(defaultStoreDir().endsWith("denobox")); // true
 * ```
 */
export function defaultStoreDir(): string {
  if (Deno.uid() === 0) return "/var/lib/denobox";
  const xdg = Deno.env.get("XDG_DATA_HOME");
  if (xdg) return join(xdg, "denobox");
  const home = Deno.env.get("HOME");
  if (!home) {
    throw new Error("Cannot choose an image store directory: HOME is not set");
  }
  return join(home, ".local", "share", "denobox");
}

function pidAlive(pid: number): boolean {
  try {
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch {
    return false;
  }
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/**
 * A content-addressed image store in one directory.
 *
 * @example Open a store and list its images
 * ```ts
 * import { ImageStore } from "denobox/image";
 * const store = await ImageStore.open(await Deno.makeTempDir());
 * console.log(await store.list()); // []
 * ```
 */
export class ImageStore {
  /** The store's directory. */
  readonly root: string;

  private constructor(root: string) {
    this.root = root;
  }

  /** Opens (creating it if needed) the store in `dir` (default `defaultStoreDir()`). */
  static async open(dir: string = defaultStoreDir()): Promise<ImageStore> {
    for (const sub of ["blobs/sha256", "layers", "leases", "cache", "tmp"]) {
      await Deno.mkdir(join(dir, sub), { recursive: true, mode: 0o700 });
    }
    const store = new ImageStore(dir);
    await store.#cleanTmp();
    return store;
  }

  // Removes work left in tmp/ by processes that are gone (their names start with the pid).
  async #cleanTmp(): Promise<void> {
    for await (const e of Deno.readDir(join(this.root, "tmp"))) {
      const pid = Number(e.name.split("-")[0]);
      if (
        Number.isInteger(pid) && pid > 0 && pid !== Deno.pid && !pidAlive(pid)
      ) {
        await Deno.remove(join(this.root, "tmp", e.name), { recursive: true })
          .catch(() => {});
      }
    }
  }

  /** A fresh path under `tmp/` (same filesystem as the store). */
  tempPath(label: string): string {
    return join(
      this.root,
      "tmp",
      `${Deno.pid}-${label}-${crypto.randomUUID().slice(0, 8)}`,
    );
  }

  /**
   * Takes the store lock: shared for writers (many at once), exclusive for GC. Waits without
   * blocking the event loop. Released by disposing the result (or by process death).
   */
  async lock(
    options: { exclusive?: boolean; name?: string } = {},
  ): Promise<Disposable> {
    const file = await Deno.open(join(this.root, options.name ?? "lock"), {
      read: true,
      write: true,
      create: true,
      mode: 0o600,
    });
    try {
      // flock(2) through Deno: the wait happens on a blocking-pool thread.
      await file.lock(options.exclusive ?? false);
    } catch (e) {
      file.close();
      throw e;
    }
    return file;
  }

  // ---- blobs ----

  /** The path of a blob (whether or not it exists). */
  blobPath(digest: string): string {
    return join(this.root, "blobs", "sha256", digestHex(digest));
  }

  /** Whether the store holds a blob. */
  async hasBlob(digest: string): Promise<boolean> {
    try {
      await Deno.lstat(this.blobPath(digest));
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Writes a blob from a stream: hashed while written to `tmp/`, compared with `expected`
   * (when given) and renamed into place. Returns its descriptor fields.
   */
  async putBlob(
    src: ByteSource,
    options: { expected?: string; mediaType?: string } = {},
  ): Promise<Descriptor> {
    if (options.expected !== undefined) digestHex(options.expected);
    const tmp = this.tempPath("blob");
    const h = new Hasher();
    try {
      {
        using f = await Deno.open(tmp, {
          write: true,
          createNew: true,
          mode: 0o600,
        });
        for await (const c of chunks(src)) {
          h.update(c);
          for (let off = 0; off < c.length;) {
            off += await f.write(c.subarray(off));
          }
        }
      }
      const digest = h.digest();
      if (options.expected !== undefined && options.expected !== digest) {
        throw new DigestMismatchError("blob", options.expected, digest);
      }
      await Deno.rename(tmp, this.blobPath(digest));
      return {
        mediaType: options.mediaType ?? "application/octet-stream",
        digest,
        size: h.size,
      };
    } finally {
      await Deno.remove(tmp).catch(() => {});
    }
  }

  /** Where a download of `digest` keeps its bytes so far (whether or not it exists). */
  partialPath(digest: string): string {
    return join(this.root, "tmp", `partial-${digestHex(digest)}`);
  }

  /**
   * Takes the partial download of `digest` for this caller alone (flock(2), waiting for
   * another process or task that holds it), creating it empty if there is none. Returns null
   * when the blob arrived meanwhile (another holder finished it).
   */
  async holdPartial(digest: string): Promise<PartialDownload | null> {
    const path = this.partialPath(digest);
    for (;;) {
      if (await this.hasBlob(digest)) return null;
      const file = await Deno.open(path, {
        read: true,
        write: true,
        create: true,
        mode: 0o600,
      });
      try {
        await file.lock(true);
        // The holder before us may have renamed it into blobs/ (or GC removed it): only the
        // file still at `path` counts.
        const mine = await file.stat();
        const now = await Deno.lstat(path).catch(() => null);
        if (now === null || now.ino !== mine.ino || now.dev !== mine.dev) {
          file.close();
          continue;
        }
        if (await this.hasBlob(digest)) {
          await Deno.remove(path).catch(() => {});
          file.close();
          return null;
        }
      } catch (e) {
        file.close();
        throw e;
      }
      return {
        path,
        size: (await file.stat()).size,
        [Symbol.dispose]: () => file.close(),
      };
    }
  }

  /** Moves a finished download into the store after hashing it (verified on write). */
  async adoptBlobFile(path: string, expected: string): Promise<void> {
    const h = new Hasher();
    for await (const c of fileChunks(path)) h.update(c);
    const got = h.digest();
    if (got !== expected) {
      throw new DigestMismatchError(`blob ${expected}`, expected, got);
    }
    await Deno.rename(path, this.blobPath(expected));
  }

  /** Writes bytes as a blob. */
  async putBytes(bytes: Uint8Array, mediaType: string): Promise<Descriptor> {
    return await this.putBlob(bytes, { mediaType });
  }

  /** Writes a JSON document as a blob (compact, as registries expect). */
  async putJson(value: unknown, mediaType: string): Promise<Descriptor> {
    return await this.putBytes(enc.encode(JSON.stringify(value)), mediaType);
  }

  /** Streams a blob, verifying its digest: a mismatch is thrown at the end of the stream. */
  async *readBlob(digest: string): AsyncGenerator<Uint8Array> {
    const h = new Hasher();
    for await (const c of fileChunks(this.blobPath(digest))) {
      h.update(c);
      yield c;
    }
    const got = h.digest();
    if (got !== digest) {
      throw new DigestMismatchError(`stored blob ${digest}`, digest, got);
    }
  }

  /** A whole blob, verified. */
  async blobBytes(digest: string): Promise<Uint8Array> {
    const bytes = await Deno.readFile(this.blobPath(digest)).catch((e) => {
      if (e instanceof Deno.errors.NotFound) {
        throw new Error(`Cannot read blob ${digest}: not in the store`, {
          cause: e,
        });
      }
      throw e;
    });
    const h = new Hasher();
    h.update(bytes);
    if (h.digest() !== digest) {
      throw new DigestMismatchError(
        `stored blob ${digest}`,
        digest,
        h.digest(),
      );
    }
    return bytes;
  }

  /** A JSON blob, verified and parsed. */
  async blobJson<T>(digest: string): Promise<T> {
    return JSON.parse(dec.decode(await this.blobBytes(digest))) as T;
  }

  // ---- names ----

  async #readRefs(): Promise<Record<string, string>> {
    try {
      return JSON.parse(await Deno.readTextFile(join(this.root, "refs.json")));
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return {};
      throw e;
    }
  }

  async #updateRefs(fn: (refs: Record<string, string>) => void): Promise<void> {
    using _ = await this.lock({ exclusive: true, name: "refs.lock" });
    const refs = await this.#readRefs();
    fn(refs);
    const tmp = this.tempPath("refs");
    await Deno.writeTextFile(tmp, JSON.stringify(refs, null, 2) + "\n");
    await Deno.rename(tmp, join(this.root, "refs.json"));
  }

  /** Points `name` (`repo[:tag]`, tag default latest) at a stored manifest. */
  async tag(name: string, digest: string): Promise<string> {
    const parsed = parseReference(name);
    delete parsed.digest;
    const canonical = formatReference(parsed);
    if (!(await this.hasBlob(digest))) {
      throw new Error(
        `Cannot tag ${canonical}: manifest ${digest} is not in the store`,
      );
    }
    await this.#updateRefs((refs) => {
      refs[canonical] = digest;
    });
    return canonical;
  }

  /** Removes a name; returns whether it existed. Blobs go at the next `gc()`. */
  async untag(name: string): Promise<boolean> {
    const canonical = formatReference(parseReference(name));
    let had = false;
    await this.#updateRefs((refs) => {
      had = canonical in refs;
      delete refs[canonical];
    });
    return had;
  }

  /** `name:tag` → manifest digest. */
  async refs(): Promise<Record<string, string>> {
    return await this.#readRefs();
  }

  /**
   * Finds an image by `name[:tag]`, `name@digest`, a manifest digest or a unique hex prefix
   * of one. Throws when there is none.
   */
  async resolve(ref: string): Promise<StoredImage> {
    const refs = await this.#readRefs();
    let digest: string | undefined;
    if (/^sha256:[a-f0-9]{64}$/.test(ref)) digest = ref;
    else if (/^(sha256:)?[a-f0-9]{6,64}$/.test(ref)) {
      const p = ref.replace(/^sha256:/, "");
      const hits = new Set(
        Object.values(refs).filter((d) => d.slice(7).startsWith(p)),
      );
      if (hits.size > 1) {
        throw new Error(`Cannot find image ${ref}: the prefix is ambiguous`);
      }
      digest = [...hits][0];
    }
    if (digest === undefined) {
      const parsed = parseReference(ref);
      digest = parsed.digest ?? refs[formatReference(parsed)];
    }
    if (digest === undefined || !(await this.hasBlob(digest))) {
      throw new Error(`Cannot find image ${ref}: not in the store`);
    }
    const raw = await this.blobJson<Manifest & ImageIndex>(digest);
    if (raw.manifests !== undefined) {
      throw new Error(
        `Cannot use ${ref}: it is an image index, not a single image`,
      );
    }
    const manifest = raw as Manifest;
    const config = await this.blobJson<ImageConfig>(manifest.config.digest);
    if (config.rootfs.diff_ids.length !== manifest.layers.length) {
      throw new Error(
        `Cannot use ${ref}: config lists ${config.rootfs.diff_ids.length} layers, manifest ${manifest.layers.length}`,
      );
    }
    return {
      digest,
      mediaType: manifest.mediaType ?? MediaType.OCI_MANIFEST,
      manifest,
      config,
      names: Object.entries(refs).filter(([, d]) => d === digest).map(([n]) =>
        n
      ).sort(),
      store: this,
    };
  }

  /** The tagged images. */
  async list(): Promise<ImageSummary[]> {
    const out: ImageSummary[] = [];
    for (const [name, digest] of Object.entries(await this.#readRefs())) {
      try {
        const img = await this.resolve(digest);
        out.push({
          name,
          digest,
          size: img.manifest.layers.reduce((s, l) => s + l.size, 0),
          created: img.config.created,
        });
      } catch { /* dangling name: gc'd blob */ }
    }
    return out.sort((a, b) => a.name.localeCompare(b.name));
  }

  /**
   * Stores a manifest and config (given as objects) and returns the manifest digest. The
   * layers they name must already be in the store.
   */
  async putImage(
    config: ImageConfig,
    layers: readonly Descriptor[],
    options: { annotations?: Record<string, string> } = {},
  ): Promise<Descriptor> {
    for (const l of layers) {
      if (!(await this.hasBlob(l.digest))) {
        throw new Error(
          `Cannot store image: layer ${l.digest} is not in the store`,
        );
      }
    }
    const cfg = await this.putJson(config, MediaType.OCI_CONFIG);
    return await this.putJson(
      ociManifest(cfg, layers, options.annotations),
      MediaType.OCI_MANIFEST,
    );
  }

  // ---- unpacked layers ----

  /** The directory of an unpacked layer (whether or not it exists). */
  layerPath(diffId: string): string {
    return join(this.root, "layers", digestHex(diffId));
  }

  /**
   * Unpacks every layer of an image for overlayfs (whiteouts kept as overlay whiteouts), each
   * into `tmp/` then renamed into `layers/`; returns their directories, bottom first. The
   * blob is verified while read, the unpacked stream against the config's DiffID.
   */
  async unpackLayers(
    image: StoredImage,
    options: ApplyOptions = {},
  ): Promise<string[]> {
    using _ = await this.lock();
    const dirs: string[] = [];
    for (const [i, desc] of image.manifest.layers.entries()) {
      const diffId = image.config.rootfs.diff_ids[i]!;
      const dir = this.layerPath(diffId);
      dirs.push(dir);
      try {
        await Deno.lstat(dir);
        continue;
      } catch { /* unpack it */ }
      const tmp = this.tempPath("layer");
      await Deno.mkdir(tmp, { mode: 0o755 });
      try {
        const r = await applyLayer(tmp, this.readBlob(desc.digest), {
          ...options,
          whiteouts: "overlay",
        });
        if (r.diffId !== diffId) {
          throw new DigestMismatchError(
            `layer ${desc.digest}`,
            diffId,
            r.diffId,
          );
        }
        await Deno.rename(tmp, dir).catch(async (e) => {
          // Another process unpacked it first.
          if (!(await Deno.lstat(dir).then(() => true, () => false))) throw e;
        });
      } finally {
        await Deno.remove(tmp, { recursive: true }).catch(() => {});
      }
    }
    return dirs;
  }

  // ---- build cache ----

  /** The image a build step made last time (`key`: a digest of parent + step), if still whole. */
  async cacheGet(key: string): Promise<string | null> {
    try {
      const e = JSON.parse(
        await Deno.readTextFile(
          join(this.root, "cache", `${digestHex(key)}.json`),
        ),
      ) as { digest: string };
      const img = await this.resolve(e.digest);
      for (const l of img.manifest.layers) {
        if (!(await this.hasBlob(l.digest))) return null;
      }
      return e.digest;
    } catch {
      return null;
    }
  }

  /** Records the image a build step made. */
  async cachePut(key: string, digest: string): Promise<void> {
    const tmp = this.tempPath("cache");
    await Deno.writeTextFile(
      tmp,
      JSON.stringify({ digest, digests: [digest] }),
    );
    await Deno.rename(tmp, join(this.root, "cache", `${digestHex(key)}.json`));
  }

  // ---- leases and GC ----

  /**
   * Records that this process uses some blobs and layers (a mounted rootfs, a build), so GC
   * keeps them; disposing the lease releases them. Leases of dead processes are ignored.
   */
  async lease(
    digests: readonly string[],
  ): Promise<AsyncDisposable & { id: string }> {
    const id = `${Deno.pid}-${crypto.randomUUID().slice(0, 12)}`;
    const path = join(this.root, "leases", id);
    const tmp = this.tempPath("lease");
    await Deno.writeTextFile(tmp, JSON.stringify(digests));
    await Deno.rename(tmp, path);
    return {
      id,
      async [Symbol.asyncDispose]() {
        await Deno.remove(path).catch(() => {});
      },
    };
  }

  /**
   * Removes blobs and unpacked layers that no name, live lease or build-cache entry reaches
   * (`keepCache: false` empties the build cache first), and partial downloads not touched
   * for `partialMaxAgeMs` (default a day) or whose blob is already here. Holds the store
   * lock exclusively (waits for writers to finish).
   */
  async gc(
    options: { keepCache?: boolean; partialMaxAgeMs?: number } = {},
  ): Promise<GcResult> {
    using _ = await this.lock({ exclusive: true });
    if (options.keepCache === false) {
      await Deno.remove(join(this.root, "cache"), { recursive: true });
      await Deno.mkdir(join(this.root, "cache"), { mode: 0o700 });
    }
    const keep = new Set<string>();
    const markManifest = async (digest: string) => {
      if (keep.has(digest) || !(await this.hasBlob(digest))) return;
      keep.add(digest);
      const m = await this.blobJson<Manifest & ImageIndex>(digest).catch(() =>
        null
      );
      if (m === null) return;
      for (const c of m.manifests ?? []) await markManifest(c.digest);
      if (m.config) {
        keep.add(m.config.digest);
        const cfg = await this.blobJson<ImageConfig>(m.config.digest).catch(
          () => null,
        );
        for (const d of cfg?.rootfs?.diff_ids ?? []) keep.add(d);
      }
      for (const l of m.layers ?? []) keep.add(l.digest);
    };
    for (const d of Object.values(await this.#readRefs())) {
      await markManifest(d);
    }
    for await (const e of Deno.readDir(join(this.root, "leases"))) {
      const pid = Number(e.name.split("-")[0]);
      const path = join(this.root, "leases", e.name);
      if (!pidAlive(pid)) {
        await Deno.remove(path).catch(() => {});
        continue;
      }
      const list = JSON.parse(await Deno.readTextFile(path)) as string[];
      for (const d of list) await markManifest(d).then(() => keep.add(d));
    }
    for await (const e of Deno.readDir(join(this.root, "cache"))) {
      if (!e.name.endsWith(".json")) continue;
      const entry = JSON.parse(
        await Deno.readTextFile(join(this.root, "cache", e.name)),
      ) as {
        digests?: string[];
      };
      for (const d of entry.digests ?? []) {
        await markManifest(d).then(() => keep.add(d));
      }
    }
    const result: GcResult = { blobs: [], layers: [], bytes: 0, partials: [] };
    const maxAge = options.partialMaxAgeMs ?? 24 * 3600 * 1000;
    for await (const e of Deno.readDir(join(this.root, "tmp"))) {
      const hex = /^partial-([a-f0-9]{64})$/.exec(e.name)?.[1];
      if (hex === undefined) continue;
      const path = join(this.root, "tmp", e.name);
      const info = await Deno.lstat(path).catch(() => null);
      if (info === null) continue;
      const age = Date.now() - (info.mtime?.getTime() ?? 0);
      if (age > maxAge || await this.hasBlob(`sha256:${hex}`)) {
        await Deno.remove(path).catch(() => {});
        result.partials.push(`sha256:${hex}`);
      }
    }
    for await (const e of Deno.readDir(join(this.root, "blobs", "sha256"))) {
      const d = `sha256:${e.name}`;
      if (keep.has(d)) continue;
      const path = join(this.root, "blobs", "sha256", e.name);
      result.bytes += (await Deno.lstat(path)).size;
      await Deno.remove(path);
      result.blobs.push(d);
    }
    for await (const e of Deno.readDir(join(this.root, "layers"))) {
      const d = `sha256:${e.name}`;
      if (keep.has(d)) continue;
      await Deno.remove(join(this.root, "layers", e.name), { recursive: true });
      result.layers.push(d);
    }
    return result;
  }
}
