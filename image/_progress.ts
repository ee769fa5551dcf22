// Transfer progress: a bar redrawn in place on a terminal, one line per finished blob
// otherwise, or events to a callback.

/** A progress event for one blob. */
export interface ProgressEvent {
  /** The blob. */
  digest: string;
  /** Bytes transferred so far. */
  done: number;
  /** Expected size. */
  total: number;
  /** True once the blob is complete. */
  finished: boolean;
}

/** `true`: draw on stderr; a function: receive events; `false`: nothing. */
export type ProgressOption = boolean | ((event: ProgressEvent) => void);

const enc = new TextEncoder();

function mb(n: number): string {
  return `${(n / 1e6).toFixed(1)} MB`;
}

export class Progress {
  #items = new Map<string, { done: number; total: number }>();
  #option: ProgressOption;
  #title: string;
  #tty: boolean;
  #last = 0;
  #drawn = false;

  constructor(option: ProgressOption, title: string) {
    this.#option = option;
    this.#title = title;
    this.#tty = option === true && Deno.stderr.isTerminal();
  }

  add(digest: string, total: number): void {
    this.#items.set(digest, { done: 0, total });
  }

  advance(digest: string, n: number): void {
    const it = this.#items.get(digest);
    if (!it) return;
    it.done += n;
    if (typeof this.#option === "function") {
      this.#option({ digest, done: it.done, total: it.total, finished: false });
    } else if (this.#tty && Date.now() - this.#last > 100) this.#draw();
  }

  finish(digest: string): void {
    const it = this.#items.get(digest);
    if (!it) return;
    it.done = it.total;
    if (typeof this.#option === "function") {
      this.#option({ digest, done: it.done, total: it.total, finished: true });
    } else if (this.#tty) this.#draw();
    else if (this.#option === true) {
      this.#write(
        `${this.#title}: ${digest.slice(0, 19)} done (${mb(it.total)})\n`,
      );
    }
  }

  #draw(): void {
    this.#last = Date.now();
    let done = 0, total = 0, complete = 0;
    for (const it of this.#items.values()) {
      done += it.done;
      total += it.total;
      if (it.done >= it.total) complete++;
    }
    const width = 30;
    const frac = total > 0 ? Math.min(1, done / total) : 1;
    const fill = Math.round(frac * width);
    const bar = "=".repeat(fill) + (fill < width ? ">" : "") +
      " ".repeat(Math.max(0, width - fill - 1));
    this.#write(
      `\r\x1b[2K${this.#title} [${bar}] ${(frac * 100).toFixed(0)}% ${
        mb(done)
      }/${mb(total)} (${complete}/${this.#items.size} blobs)`,
    );
    this.#drawn = true;
  }

  close(): void {
    if (this.#tty && this.#drawn) {
      this.#draw();
      this.#write("\n");
    }
  }

  #write(s: string): void {
    Deno.stderr.writeSync(enc.encode(s));
  }
}
