/**
 * A registry client for the OCI distribution API: pull and push with anonymous, bearer-token
 * (from `WWW-Authenticate`) or basic auth; OCI and Docker schema 2 manifests, image indexes
 * and manifest lists with platform selection; parallel, verified, resumable layer downloads;
 * chunked uploads.
 * @module
 */
import { fileChunks, Hasher, sha256 } from "./_stream.ts";
import { Progress, type ProgressOption } from "./_progress.ts";
import { type PlatformWanted, selectPlatform } from "./platform.ts";
import {
  formatReference,
  type ImageReference,
  parseReference,
} from "./reference.ts";
import {
  DigestMismatchError,
  type ImageStore,
  type StoredImage,
} from "./store.ts";
import {
  type Descriptor,
  type ImageIndex,
  type Manifest,
  MediaType,
} from "./types.ts";

/** Credentials for a registry. */
export type RegistryCredentials =
  | { username: string; password: string }
  | { token: string };

/** Options shared by `pull`, `push` and `RegistryClient`. */
export interface RegistryOptions {
  /** Credentials (used for basic auth and to obtain bearer tokens). */
  auth?: RegistryCredentials;
  /** Use plain http (default: for loopback addresses only). */
  insecure?: boolean;
  /** Parallel blob transfers (default 3). */
  concurrency?: number;
  /**
   * Progress: `true` draws a bar on a terminal (plain lines otherwise) on stderr; a function
   * receives events; default none.
   */
  progress?: ProgressOption;
  /** Attempts per blob download before giving up (default 5); retries resume with Range. */
  retries?: number;
}

/**
 * An HTTP error from the registry, with its OCI error code when it sent one.
 *
 * @example Tell "no such tag" apart
 * ```ts
 * import { RegistryError } from "denobox/image";
 * const e = new RegistryError("get manifest x:y", 404, "MANIFEST_UNKNOWN", "unknown");
 * console.log(e.status, e.code); // 404 MANIFEST_UNKNOWN
 * ```
 */
export class RegistryError extends Error {
  /** Always `"RegistryError"`: the class name survives logging and structured cloning. */
  override name = "RegistryError";
  /** HTTP status. */
  readonly status: number;
  /** First OCI error code (`MANIFEST_UNKNOWN`, `UNAUTHORIZED`...), if any. */
  readonly code: string | undefined;
  /** Makes the error. */
  constructor(
    action: string,
    status: number,
    code: string | undefined,
    detail: string,
  ) {
    super(
      `Cannot ${action}: ${status}${code ? ` ${code}` : ""}${
        detail ? `: ${detail}` : ""
      }`,
    );
    this.status = status;
    this.code = code;
  }
}

/** The manifest media types a client accepts, in preference order. */
export const MANIFEST_ACCEPT: readonly string[] = [
  MediaType.OCI_INDEX,
  MediaType.OCI_MANIFEST,
  MediaType.DOCKER_LIST,
  MediaType.DOCKER_MANIFEST,
];

function isLoopback(host: string): boolean {
  const h = host.replace(/:\d+$/, "");
  return h === "localhost" || h.startsWith("127.") || h === "[::1]";
}

function parseChallenge(
  header: string,
): { scheme: string; params: Record<string, string> } {
  const sp = header.indexOf(" ");
  const scheme = (sp < 0 ? header : header.slice(0, sp)).toLowerCase();
  const params: Record<string, string> = {};
  const re = /(\w+)=(?:"([^"]*)"|([^,\s]*))/g;
  for (const m of header.slice(sp + 1).matchAll(re)) {
    params[m[1]!.toLowerCase()] = m[2] ?? m[3] ?? "";
  }
  return { scheme, params };
}

async function errorOf(action: string, res: Response): Promise<RegistryError> {
  const text = await res.text().catch(() => "");
  let code: string | undefined;
  let detail = text.slice(0, 300).trim();
  try {
    const j = JSON.parse(text) as {
      errors?: { code?: string; message?: string }[];
    };
    code = j.errors?.[0]?.code;
    detail = j.errors?.[0]?.message ?? detail;
  } catch { /* not JSON */ }
  return new RegistryError(action, res.status, code, detail);
}

/**
 * A client for one registry (`host[:port]`). Requests retry once after a 401 with the
 * credentials the challenge asks for (basic, or a bearer token fetched from the realm and
 * cached per scope).
 *
 * @example Read a tag list
 * ```ts ignore
 * import { RegistryClient } from "denobox/image";
 * using c = new RegistryClient("127.0.0.1:5000");
 * const r = await c.request("GET", "busybox", "tags/list");
 * console.log(await r.json());
 * ```
 */
export class RegistryClient implements Disposable {
  /** `host[:port]`. */
  readonly registry: string;
  /** `http://host:port` or `https://host`. */
  readonly base: string;
  #options: RegistryOptions;
  #tokens = new Map<string, string>();
  #basic = false;
  // Its own connection pool, closed by dispose: no keep-alive socket outlives a pull.
  #http: Deno.HttpClient = Deno.createHttpClient({});

  /** Makes a client for `registry`. */
  constructor(registry: string, options: RegistryOptions = {}) {
    this.registry = registry;
    this.#options = options;
    const http = options.insecure ?? isLoopback(registry);
    this.base = `${http ? "http" : "https"}://${registry}`;
  }

  #authHeader(scope: string): string | undefined {
    const token = this.#tokens.get(scope);
    if (token) return `Bearer ${token}`;
    const a = this.#options.auth;
    if (this.#basic && a && "username" in a) {
      return `Basic ${btoa(`${a.username}:${a.password}`)}`;
    }
    return undefined;
  }

  async #authenticate(res: Response, scope: string): Promise<boolean> {
    const header = res.headers.get("www-authenticate");
    await res.body?.cancel();
    if (!header) return false;
    const { scheme, params } = parseChallenge(header);
    const a = this.#options.auth;
    if (scheme === "basic") {
      if (!a || !("username" in a) || this.#basic) return false;
      this.#basic = true;
      return true;
    }
    if (scheme !== "bearer" || !params.realm) return false;
    if (a && "token" in a) {
      this.#tokens.set(scope, a.token);
      return true;
    }
    const url = new URL(params.realm);
    if (params.service) url.searchParams.set("service", params.service);
    url.searchParams.set("scope", params.scope ?? scope);
    const headers: Record<string, string> = {};
    if (a && "username" in a) {
      headers.authorization = `Basic ${btoa(`${a.username}:${a.password}`)}`;
    }
    const t = await fetch(url, { headers, client: this.#http });
    if (!t.ok) {
      throw await errorOf(`get a token from ${url.origin}${url.pathname}`, t);
    }
    const body = await t.json() as { token?: string; access_token?: string };
    const token = body.token ?? body.access_token;
    if (!token) {
      throw new Error(
        `Cannot authenticate to ${this.registry}: token response without a token`,
      );
    }
    this.#tokens.set(scope, token);
    return true;
  }

  /**
   * Sends a request to `/v2/<repo>/<path>` (or an absolute URL the registry gave, such as an
   * upload location), authenticating on a 401. `body` must be re-sendable (bytes or none).
   */
  async request(
    method: string,
    repo: string,
    path: string,
    init: {
      headers?: Record<string, string>;
      body?: Uint8Array;
      push?: boolean;
    } = {},
  ): Promise<Response> {
    const url = /^https?:\/\//.test(path)
      ? path
      : `${this.base}/v2/${repo}/${path}`;
    const scope = `repository:${repo}:${init.push ? "pull,push" : "pull"}`;
    for (let attempt = 0;; attempt++) {
      const headers: Record<string, string> = { ...init.headers };
      const auth = this.#authHeader(scope);
      if (auth) headers.authorization = auth;
      const res = await fetch(url, {
        method,
        headers,
        ...(init.body ? { body: init.body as Uint8Array<ArrayBuffer> } : {}),
        redirect: "follow",
        client: this.#http,
      });
      if (
        res.status === 401 && attempt === 0 &&
        (await this.#authenticate(res, scope))
      ) continue;
      return res;
    }
  }

  /**
   * Fetches a manifest (or index) by tag or digest, with the Accept header every supported
   * type needs (a registry answers an OCI manifest with 404 without it). Verifies the bytes
   * against the digest asked for, or against the registry's `Docker-Content-Digest`.
   */
  async getManifest(
    repo: string,
    reference: string,
  ): Promise<{ bytes: Uint8Array; mediaType: string; digest: string }> {
    const res = await this.request("GET", repo, `manifests/${reference}`, {
      headers: { accept: MANIFEST_ACCEPT.join(", ") },
    });
    if (!res.ok) throw await errorOf(`get manifest ${repo}:${reference}`, res);
    const bytes = new Uint8Array(await res.arrayBuffer());
    const digest = sha256(bytes);
    const expected = reference.startsWith("sha256:")
      ? reference
      : res.headers.get("docker-content-digest") ?? digest;
    if (expected !== digest) {
      throw new DigestMismatchError(
        `manifest ${repo}:${reference}`,
        expected,
        digest,
      );
    }
    let mediaType = (res.headers.get("content-type") ?? "").split(";")[0]!
      .trim();
    const parsed = JSON.parse(new TextDecoder().decode(bytes)) as {
      mediaType?: string;
      manifests?: unknown;
    };
    if (parsed.mediaType) mediaType = parsed.mediaType;
    else if (!MANIFEST_ACCEPT.includes(mediaType)) {
      mediaType = parsed.manifests
        ? MediaType.OCI_INDEX
        : MediaType.OCI_MANIFEST;
    }
    if (!MANIFEST_ACCEPT.includes(mediaType)) {
      throw new Error(
        `Cannot use manifest ${repo}:${reference}: unsupported media type ${mediaType}`,
      );
    }
    return { bytes, mediaType, digest };
  }

  /** Whether the repository has a blob (HEAD). */
  async hasBlob(repo: string, digest: string, push = false): Promise<boolean> {
    const res = await this.request("HEAD", repo, `blobs/${digest}`, { push });
    await res.body?.cancel();
    if (res.status === 200) return true;
    if (res.status === 404) return false;
    throw await errorOf(`check blob ${digest}`, res);
  }

  /**
   * Downloads a blob into `file`, resuming with `Range` from the bytes already in it (left by
   * a broken transfer, in this process or an earlier one), until `size` bytes are there. A
   * registry that ignores Range (200), refuses it (416) or answers another range makes it
   * start over from byte 0. The caller verifies the digest.
   */
  async downloadBlob(
    repo: string,
    desc: Descriptor,
    file: string,
    onBytes: (n: number) => void = () => {},
  ): Promise<void> {
    const retries = this.#options.retries ?? 5;
    let lastError: unknown;
    for (let attempt = 0; attempt < retries; attempt++) {
      let have = await Deno.stat(file).then((s) => s.size, () => 0);
      if (have === desc.size && desc.size > 0) return;
      if (have > desc.size) {
        have = 0; // longer than the blob: not a prefix of it
        await Deno.truncate(file, 0);
      }
      const headers: Record<string, string> = {};
      if (have > 0) headers.range = `bytes=${have}-`;
      try {
        const res = await this.request("GET", repo, `blobs/${desc.digest}`, {
          headers,
        });
        if (res.status === 416 && have > 0) {
          await res.body?.cancel();
          await Deno.truncate(file, 0);
          lastError = new Error(
            `Cannot resume blob ${desc.digest} at byte ${have}: 416`,
          );
          continue;
        }
        if (res.status === 200 && have > 0) {
          have = 0; // no range support: start over
          await Deno.truncate(file, 0);
        } else if (res.status === 206) {
          const from = /^bytes (\d+)-/.exec(
            res.headers.get("content-range") ?? "",
          )?.[1];
          if (Number(from) !== have) {
            await res.body?.cancel();
            await Deno.truncate(file, 0);
            lastError = new Error(
              `Cannot resume blob ${desc.digest}: asked for byte ${have}, got range ${
                res.headers.get("content-range")
              }`,
            );
            continue;
          }
        } else if (!res.ok) {
          throw await errorOf(`download blob ${desc.digest}`, res);
        }
        using f = await Deno.open(file, {
          write: true,
          create: true,
          append: true,
        });
        for await (const c of res.body!) {
          for (let off = 0; off < c.length;) {
            off += await f.write(c.subarray(off));
          }
          have += c.length;
          onBytes(c.length);
        }
        if (have === desc.size || desc.size === 0) return;
        lastError = new Error(
          `Cannot download blob ${desc.digest}: got ${have} of ${desc.size} bytes`,
        );
      } catch (e) {
        if (e instanceof RegistryError && e.status < 500) throw e;
        lastError = e;
      }
      await new Promise((r) => setTimeout(r, 100 * 2 ** attempt));
    }
    throw new Error(
      `Cannot download blob ${desc.digest} after ${retries} attempts`,
      { cause: lastError },
    );
  }

  /**
   * Uploads a blob in chunks (POST, PATCH per chunk with `Content-Range`, PUT with the digest),
   * unless the repository already has it. Returns whether it was sent.
   */
  async uploadBlob(
    repo: string,
    desc: Descriptor,
    source: () => AsyncIterable<Uint8Array>,
    options: { chunkSize?: number; onBytes?: (n: number) => void } = {},
  ): Promise<boolean> {
    if (await this.hasBlob(repo, desc.digest, true)) return false;
    const start = await this.request("POST", repo, "blobs/uploads/", {
      push: true,
    });
    if (start.status !== 202) {
      throw await errorOf(`start upload of ${desc.digest}`, start);
    }
    await start.body?.cancel();
    let location = new URL(start.headers.get("location") ?? "", this.base)
      .toString();
    const chunkSize = options.chunkSize ?? 8 << 20;
    let offset = 0;
    let pending: Uint8Array[] = [];
    let pendingSize = 0;
    const send = async () => {
      const body = new Uint8Array(pendingSize);
      let o = 0;
      for (const p of pending) {
        body.set(p, o);
        o += p.length;
      }
      pending = [];
      pendingSize = 0;
      const res = await this.request("PATCH", repo, location, {
        push: true,
        body,
        headers: {
          "content-type": "application/octet-stream",
          "content-range": `${offset}-${offset + body.length - 1}`,
        },
      });
      if (res.status !== 202) {
        throw await errorOf(`upload chunk of ${desc.digest}`, res);
      }
      await res.body?.cancel();
      location = new URL(res.headers.get("location") ?? location, this.base)
        .toString();
      offset += body.length;
      options.onBytes?.(body.length);
    };
    for await (const c of source()) {
      pending.push(c);
      pendingSize += c.length;
      if (pendingSize >= chunkSize) await send();
    }
    if (pendingSize > 0) await send();
    const url = new URL(location);
    url.searchParams.set("digest", desc.digest);
    const done = await this.request("PUT", repo, url.toString(), {
      push: true,
      headers: { "content-type": "application/octet-stream" },
    });
    if (done.status !== 201) {
      throw await errorOf(`finish upload of ${desc.digest}`, done);
    }
    await done.body?.cancel();
    return true;
  }

  /** Closes the client's connections. */
  [Symbol.dispose](): void {
    this.#http.close();
  }

  /** Stores a manifest under a tag or digest; returns the digest the registry reports. */
  async putManifest(
    repo: string,
    reference: string,
    bytes: Uint8Array,
    mediaType: string,
  ): Promise<string> {
    const res = await this.request("PUT", repo, `manifests/${reference}`, {
      push: true,
      body: bytes,
      headers: { "content-type": mediaType },
    });
    if (res.status !== 201) {
      throw await errorOf(`put manifest ${repo}:${reference}`, res);
    }
    await res.body?.cancel();
    return res.headers.get("docker-content-digest") ?? sha256(bytes);
  }
}

function remote(ref: string): ImageReference & { registry: string } {
  const r = parseReference(ref);
  if (r.registry === undefined) {
    throw new TypeError(
      `Invalid remote reference: ${ref} names no registry (host[:port]/repository)`,
    );
  }
  return r as ImageReference & { registry: string };
}

async function pool<T>(
  items: readonly T[],
  n: number,
  fn: (t: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const errors: unknown[] = [];
  const worker = async () => {
    while (next < items.length && errors.length === 0) {
      const item = items[next++]!;
      await fn(item).catch((e) => errors.push(e));
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
  if (errors.length > 0) throw errors[0];
}

/** Options of `pull`. */
export interface PullOptions extends RegistryOptions {
  /** Platform to pick from an index (default linux and this machine's architecture). */
  platform?: PlatformWanted;
  /** Local name to tag (default the reference itself; none for a digest-only reference). */
  tag?: string;
}

/**
 * Pulls an image (`host[:port]/repo[:tag|@digest]`) into the store: manifest (an index is
 * resolved to the wanted platform), config and layers, each verified against its digest;
 * layers download in parallel and resume after a broken connection. Tags it locally under
 * the full reference. Returns the stored image.
 *
 * @example Pull with a progress bar
 * ```ts ignore
 * import { ImageStore, pull } from "denobox/image";
 * const store = await ImageStore.open();
 * const img = await pull(store, "127.0.0.1:5000/busybox:latest", { progress: true });
 * console.log(img.digest);
 * ```
 */
export async function pull(
  store: ImageStore,
  ref: string,
  options: PullOptions = {},
): Promise<StoredImage> {
  const r = remote(ref);
  using client = new RegistryClient(r.registry, options);
  using _ = await store.lock();
  let m = await client.getManifest(r.repository, r.digest ?? r.tag ?? "latest");
  if (
    m.mediaType === MediaType.OCI_INDEX || m.mediaType === MediaType.DOCKER_LIST
  ) {
    const index = JSON.parse(new TextDecoder().decode(m.bytes)) as ImageIndex;
    const pick = selectPlatform(index.manifests, options.platform);
    m = await client.getManifest(r.repository, pick.digest);
  }
  if (
    m.mediaType !== MediaType.OCI_MANIFEST &&
    m.mediaType !== MediaType.DOCKER_MANIFEST
  ) {
    throw new Error(
      `Cannot pull ${ref}: nested index or unsupported manifest ${m.mediaType}`,
    );
  }
  const manifest = JSON.parse(new TextDecoder().decode(m.bytes)) as Manifest;
  const blobs = [manifest.config, ...manifest.layers];
  const missing: Descriptor[] = [];
  for (const b of blobs) if (!(await store.hasBlob(b.digest))) missing.push(b);
  const progress = new Progress(
    options.progress ?? false,
    `Pulling ${formatReference(r)}`,
  );
  for (const b of missing) progress.add(b.digest, b.size);
  try {
    await pool(missing, options.concurrency ?? 3, async (b) => {
      // The bytes so far live in the store under the digest: a broken pull, even in a
      // process that died, leaves them for the next one to resume from.
      using part = await store.holdPartial(b.digest);
      if (part === null) return progress.finish(b.digest);
      const get = () =>
        client.downloadBlob(
          r.repository,
          b,
          part.path,
          (n) => progress.advance(b.digest, n),
        );
      progress.advance(b.digest, part.size);
      await get();
      try {
        await store.adoptBlobFile(part.path, b.digest);
      } catch (e) {
        await Deno.truncate(part.path, 0);
        // Resumed from kept bytes that were bad: one full download more.
        if (!(e instanceof DigestMismatchError) || part.size === 0) throw e;
        await get();
        await store.adoptBlobFile(part.path, b.digest).catch(async (e) => {
          await Deno.remove(part.path).catch(() => {});
          throw e;
        });
      }
      progress.finish(b.digest);
    });
  } finally {
    progress.close();
  }
  await store.putBlob(m.bytes, { expected: m.digest });
  const tag = options.tag ??
    (r.tag !== undefined || r.digest === undefined
      ? formatReference(r)
      : undefined);
  if (tag !== undefined) await store.tag(tag, m.digest);
  return await store.resolve(m.digest);
}

/** Options of `push`. */
export interface PushOptions extends RegistryOptions {
  /** Upload chunk size in bytes (default 8 MiB). */
  chunkSize?: number;
}

/**
 * Pushes a stored image (by name or digest) to `dest` (`host[:port]/repo[:tag]`): blobs the
 * repository lacks are uploaded in chunks, then the manifest, byte for byte (so the digest is
 * kept). Returns the manifest digest.
 *
 * @example Push under another name
 * ```ts ignore
 * import { ImageStore, push } from "denobox/image";
 * const store = await ImageStore.open();
 * const digest = await push(store, "busybox:hello", "127.0.0.1:5000/busybox:hello");
 * console.log(digest);
 * ```
 */
export async function push(
  store: ImageStore,
  source: string,
  dest: string,
  options: PushOptions = {},
): Promise<string> {
  const r = remote(dest);
  const img = await store.resolve(source);
  using client = new RegistryClient(r.registry, options);
  const blobs = [img.manifest.config, ...img.manifest.layers];
  const progress = new Progress(
    options.progress ?? false,
    `Pushing ${formatReference(r)}`,
  );
  for (const b of blobs) progress.add(b.digest, b.size);
  try {
    await pool(blobs, options.concurrency ?? 3, async (b) => {
      const h = new Hasher();
      const source = async function* () {
        for await (const c of fileChunks(store.blobPath(b.digest))) {
          h.update(c);
          yield c;
        }
        if (h.digest() !== b.digest) {
          throw new DigestMismatchError(
            `stored blob ${b.digest}`,
            b.digest,
            h.digest(),
          );
        }
      };
      await client.uploadBlob(r.repository, b, source, {
        ...(options.chunkSize ? { chunkSize: options.chunkSize } : {}),
        onBytes: (n) => progress.advance(b.digest, n),
      });
      progress.finish(b.digest);
    });
  } finally {
    progress.close();
  }
  const bytes = await store.blobBytes(img.digest);
  return await client.putManifest(
    r.repository,
    r.digest ?? r.tag ?? "latest",
    bytes,
    img.mediaType,
  );
}
