/**
 * A cheap reader of a cgroup's total CPU time (every process and thread, user + system), for
 * polling many times a second: one file kept open and re-read from offset 0.
 * v1: `cpuacct.usage` (nanoseconds); v2: `usage_usec` of `cpu.stat`.
 * @module
 */
import type { Cgroup } from "denobox/cgroup";

/** Reads the CPU time of one cgroup. */
export class CpuClock implements Disposable {
  readonly #file: Deno.FsFile;
  readonly #v1: boolean;
  readonly #buf = new Uint8Array(4096);
  readonly #decoder = new TextDecoder();

  /** Opens the CPU counter among the group's directories; throws when none has one. */
  constructor(cg: Pick<Cgroup, "paths" | "version">) {
    this.#v1 = cg.version === 1;
    this.#file = this.#v1
      ? CpuClock.#openV1(cg.paths)
      : CpuClock.#open(`${cg.paths[0]}/cpu.stat`, false)!;
  }

  static #openV1(paths: readonly string[]): Deno.FsFile {
    // The cpuacct hierarchy's directory first: the usual answer, found at once (v1's cpu
    // hierarchy has a cpu.stat too, with throttling figures only).
    const ordered = [
      ...paths.filter((d) => d.includes("cpuacct")),
      ...paths.filter((d) => !d.includes("cpuacct")),
    ];
    for (const dir of ordered) {
      const file = CpuClock.#open(`${dir}/cpuacct.usage`, true);
      if (file !== null) return file;
    }
    throw new Error(
      `Cannot measure CPU time: no cpuacct.usage in ${paths.join(", ")}`,
    );
  }

  /** Opens a counter file; null when `optional` and it does not exist. */
  static #open(path: string, optional: boolean): Deno.FsFile | null {
    try {
      return Deno.openSync(path);
    } catch (e) {
      if (optional && e instanceof Deno.errors.NotFound) return null;
      throw new Error(
        `Cannot measure CPU time: open ${path}: ${(e as Error).message}`,
      );
    }
  }

  /** CPU seconds used so far. */
  read(): number {
    this.#file.seekSync(0, Deno.SeekMode.Start);
    let len = 0;
    // One read(2) returns the whole of such a small cgroup file; a second one (end of file)
    // is made only when the first left the figure's line unfinished.
    for (;;) {
      const n = this.#file.readSync(this.#buf.subarray(len));
      if (n === null || n === 0) break;
      len += n;
      if (len === this.#buf.length) break;
      const text = this.#decoder.decode(this.#buf.subarray(0, len));
      const cpu = this.#parse(text);
      if (cpu !== null) return cpu;
    }
    const cpu = this.#parse(this.#decoder.decode(this.#buf.subarray(0, len)));
    if (cpu === null) {
      throw new Error(
        `Cannot measure CPU time: no ${
          this.#v1 ? "number in cpuacct.usage" : "usage_usec in cpu.stat"
        }`,
      );
    }
    return cpu;
  }

  /** The CPU seconds in what was read so far, or null while its line is unfinished. */
  #parse(text: string): number | null {
    if (this.#v1) {
      return /^\d+\n/.test(text) ? Number(text.trim()) / 1e9 : null;
    }
    const m = /^usage_usec (\d+)\n/m.exec(text);
    return m ? Number(m[1]) / 1e6 : null;
  }

  /** Closes the counter file. */
  [Symbol.dispose](): void {
    try {
      this.#file.close();
    } catch { /* already closed */ }
  }
}
