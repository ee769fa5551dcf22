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
   * Reads `stream` until its end, or until it goes past the limit: then `onOverflow` runs
   * (once, synchronously, before anything else is read) and the stream is cancelled.
   */
  async pump(
    stream: ReadableStream<Uint8Array>,
    onOverflow: () => void,
  ): Promise<void> {
    const reader = stream.getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        const room = this.limit - this.#kept;
        if (value.length > room) {
          if (room > 0) await this.#keep(value.subarray(0, room));
          this.#truncated = true;
          onOverflow();
          await reader.cancel().catch(() => {});
          return;
        }
        await this.#keep(value);
      }
    } finally {
      reader.releaseLock();
    }
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
