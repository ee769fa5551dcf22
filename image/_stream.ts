// Byte-stream plumbing shared by the store, the registry client and the layer code:
// decompression by magic number, hashing while streaming.
import { createHash, type Hash } from "node:crypto";
import { Readable } from "node:stream";
import * as zlib from "node:zlib";

/**
 * Bytes the image code reads (layers, blobs): a web stream, a Node-style async iterable, a
 * list of chunks or one buffer, so callers hand over what they have without converting it.
 */
export type ByteSource =
  | ReadableStream<Uint8Array>
  | AsyncIterable<Uint8Array>
  | Iterable<Uint8Array>
  | Uint8Array;

/** Layer compression, as the media types name it. */
export type Compression = "gzip" | "zstd" | "none";

/** `sha256:<hex>` of some bytes. */
export function sha256(data: Uint8Array | string): string {
  return `sha256:${createHash("sha256").update(data).digest("hex")}`;
}

/** A running sha256 over the bytes that pass through `update`. */
export class Hasher {
  #h: Hash = createHash("sha256");
  #digest: string | null = null;
  /** Bytes hashed so far. */
  size = 0;
  /** Adds bytes. */
  update(b: Uint8Array): void {
    this.#h.update(b);
    this.size += b.length;
  }
  /** `sha256:<hex>` (final: no updates after it). */
  digest(): string {
    return this.#digest ??= `sha256:${this.#h.digest("hex")}`;
  }
}

/** Iterates any `ByteSource` as Uint8Array chunks. */
export async function* chunks(src: ByteSource): AsyncGenerator<Uint8Array> {
  if (src instanceof Uint8Array) {
    yield src;
    return;
  }
  if (src instanceof ReadableStream) {
    const reader = src.getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        yield value;
      }
    } finally {
      reader.releaseLock();
      await src.cancel().catch(() => {});
    }
  }
  yield* src as AsyncIterable<Uint8Array>;
}

/** Reads a file in large chunks (1 MiB), closing it at the end or on error. */
export async function* fileChunks(
  path: string,
  size = 1 << 20,
): AsyncGenerator<Uint8Array> {
  using f = await Deno.open(path);
  for (;;) {
    const buf = new Uint8Array(size);
    const n = await f.read(buf);
    if (n === null) return;
    yield n === size ? buf : buf.subarray(0, n);
  }
}

/** The compression of a blob, from its first bytes. */
export function sniffCompression(head: Uint8Array): Compression {
  if (head[0] === 0x1f && head[1] === 0x8b) return "gzip";
  if (
    head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd
  ) {
    return "zstd";
  }
  return "none";
}

/**
 * Decompresses a stream (gzip, zstd or none), detecting which from its magic number. zlib's
 * native streams run decompression off the JS thread; output comes in 1 MiB chunks.
 */
export async function* decompress(src: ByteSource): AsyncGenerator<Uint8Array> {
  const it = chunks(src)[Symbol.asyncIterator]();
  const first = await it.next();
  if (first.done) return;
  const kind = sniffCompression(first.value);
  async function* rest(): AsyncGenerator<Uint8Array> {
    yield first.value!;
    for (;;) {
      const r = await it.next();
      if (r.done) return;
      yield r.value;
    }
  }
  if (kind === "none") {
    yield* rest();
    return;
  }
  const z = kind === "gzip"
    ? zlib.createGunzip({ chunkSize: 1 << 20 })
    : zlib.createZstdDecompress({ chunkSize: 1 << 20 });
  const input = Readable.from(rest(), { objectMode: false });
  input.on("error", (e) => z.destroy(e));
  input.pipe(z);
  try {
    for await (const c of z as AsyncIterable<Uint8Array>) {
      yield new Uint8Array(c.buffer, c.byteOffset, c.byteLength);
    }
  } catch (e) {
    throw new Error(
      `Cannot decompress ${kind} stream: ${(e as Error).message}`,
      { cause: e },
    );
  } finally {
    input.destroy();
    z.destroy();
  }
}

/** Compresses a stream with gzip (level 6 by default; 1 is much faster). */
export async function* gzip(
  src: ByteSource,
  level = 6,
): AsyncGenerator<Uint8Array> {
  const z = zlib.createGzip({ level, chunkSize: 1 << 20 });
  const input = Readable.from(chunks(src), { objectMode: false });
  input.on("error", (e) => z.destroy(e));
  input.pipe(z);
  try {
    for await (const c of z as AsyncIterable<Uint8Array>) {
      yield new Uint8Array(c.buffer, c.byteOffset, c.byteLength);
    }
  } finally {
    input.destroy();
    z.destroy();
  }
}
