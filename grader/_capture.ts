/**
 * Reads one output pipe of a run and keeps exactly `limit` bytes: the first byte past the limit
 * stops the reading and reports an overflow (the caller kills the run).
 * @module
 */

/** Where the kept bytes go. */
export type CaptureSink =
  | { kind: "memory" }
  | { kind: "discard" }
  | { kind: "file"; file: Deno.FsFile };

/** One stream's capture. */
export class OutputCapture {
  readonly limit: number;
  readonly #sink: CaptureSink;
  readonly #chunks: Uint8Array[] = [];
  #kept = 0;
  #truncated = false;

  /** Keeps up to `limit` bytes into `sink`. */
  constructor(limit: number, sink: CaptureSink) {
    this.limit = limit;
    this.#sink = sink;
  }

  /** Bytes kept so far. */
  get kept(): number {
    return this.#kept;
  }

  /** True once the stream went past the limit. */
  get truncated(): boolean {
    return this.#truncated;
  }

  /**
   * Reads `source` until its end, or until it goes past the limit: then `onOverflow` runs
   * (once, synchronously, before anything else is read) and the reading stops (a stream is
   * cancelled; a reader function is simply not called again, its owner closes the pipe).
   * A reader function (such as a sandbox's `read("stdout")`) returns the next chunk, or null
   * at the end: it costs less than a Web stream, which matters for many short runs.
   */
  async pump(
    source: ReadableStream<Uint8Array> | (() => Promise<Uint8Array | null>),
    onOverflow: () => void,
  ): Promise<void> {
    if (typeof source === "function") {
      for (let chunk; (chunk = await source()) !== null;) {
        if (!await this.#take(chunk, onOverflow)) return;
      }
      return;
    }
    const reader = source.getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        if (!await this.#take(value, onOverflow)) {
          await reader.cancel().catch(() => {});
          return;
        }
      }
    } finally {
      reader.releaseLock();
    }
  }

  /** Keeps `chunk` up to the limit; false (after `onOverflow`) when it went past it. */
  async #take(chunk: Uint8Array, onOverflow: () => void): Promise<boolean> {
    const room = this.limit - this.#kept;
    if (chunk.length > room) {
      if (room > 0) await this.#keep(chunk.subarray(0, room));
      this.#truncated = true;
      onOverflow();
      return false;
    }
    await this.#keep(chunk);
    return true;
  }

  async #keep(chunk: Uint8Array): Promise<void> {
    this.#kept += chunk.length;
    if (this.#sink.kind === "memory") this.#chunks.push(chunk.slice());
    else if (this.#sink.kind === "file") {
      let off = 0;
      while (off < chunk.length) {
        off += await this.#sink.file.write(chunk.subarray(off));
      }
    }
  }

  /** The kept bytes when the sink is memory; otherwise null. */
  bytes(): Uint8Array | null {
    if (this.#sink.kind !== "memory") return null;
    if (this.#chunks.length === 1) return this.#chunks[0]!;
    const out = new Uint8Array(this.#kept);
    let off = 0;
    for (const c of this.#chunks) {
      out.set(c, off);
      off += c.length;
    }
    return out;
  }
}
