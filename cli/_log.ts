/**
 * Container logs as json-lines, the shape of Docker's json-file driver: one object per line,
 * `{"log":"text\n","stream":"stdout","time":"2024-01-01T00:00:00.000Z"}`. Concatenating the
 * `log` fields of one stream gives back its exact output.
 * @module
 */

/** One log entry. */
export interface LogEntry {
  log: string;
  stream: "stdout" | "stderr";
  time: string;
}

const enc = new TextEncoder();

/**
 * Appends output chunks to a log file as json-lines, one entry per line of output. The file
 * is made (or opened for appending) with the first output: a container that prints nothing
 * costs no file (making one is the dearest file operation of a container's start), and a
 * missing log reads as an empty one.
 */
export class LogWriter implements AsyncDisposable {
  #path: string;
  #file: Deno.FsFile | null = null;
  #decoders = { stdout: new TextDecoder(), stderr: new TextDecoder() };
  #queue: Promise<void> = Promise.resolve();

  private constructor(path: string) {
    this.#path = path;
  }

  /** A writer appending to `path` (made with the first output). */
  static open(path: string): Promise<LogWriter> {
    return Promise.resolve(new LogWriter(path));
  }

  /** Records a chunk of `stream`'s output. Writes are serialised. */
  write(stream: "stdout" | "stderr", chunk: Uint8Array): Promise<void> {
    const text = this.#decoders[stream].decode(chunk, { stream: true });
    if (!text) return this.#queue;
    const time = new Date().toISOString();
    let out = "";
    for (const part of text.split(/(?<=\n)/)) {
      out += JSON.stringify({ log: part, stream, time }) + "\n";
    }
    const data = enc.encode(out);
    this.#queue = this.#queue.then(async () => {
      const file = this.#opened();
      let off = 0;
      while (off < data.length) {
        off += await file.write(data.subarray(off));
      }
    });
    return this.#queue;
  }

  /** The file, opened now if it is not yet (synchronously: no trip to the blocking pool). */
  #opened(): Deno.FsFile {
    return this.#file ??= Deno.openSync(this.#path, {
      append: true,
      create: true,
      mode: 0o600,
    });
  }

  /** Waits for pending writes and closes the file. */
  async close(): Promise<void> {
    await this.#queue.catch(() => {});
    try {
      this.#file?.close();
    } catch { /* already closed */ }
    this.#file = null;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** Parses json-lines log text; malformed lines (a torn last write) are skipped. */
export function parseLog(text: string): LogEntry[] {
  const out: LogEntry[] = [];
  for (const line of text.split("\n")) {
    if (!line) continue;
    try {
      const e = JSON.parse(line) as LogEntry;
      if (
        typeof e.log === "string" &&
        (e.stream === "stdout" || e.stream === "stderr")
      ) out.push(e);
    } catch { /* torn line */ }
  }
  return out;
}
