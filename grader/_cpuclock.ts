/**
 * A cheap reader of a cgroup's total CPU time (every process and thread, user + system), for
 * polling many times a second: one file kept open and re-read from offset 0.
 * v1: `cpuacct.usage` (nanoseconds); v2: `usage_usec` of `cpu.stat`.
 * @module
 */
import { At, statxat } from "denobox/libc";

/** Reads the CPU time of one cgroup. */
export class CpuClock implements Disposable {
  readonly #file: Deno.FsFile;
  readonly #v1: boolean;
  readonly #buf = new Uint8Array(4096);
  readonly #decoder = new TextDecoder();

  /** Opens the CPU counter among the group's directories; throws when none has one. */
  constructor(paths: readonly string[]) {
    const found = CpuClock.#open(paths);
    this.#file = found.file;
    this.#v1 = found.v1;
  }

  static #open(paths: readonly string[]): { file: Deno.FsFile; v1: boolean } {
    // v1's cpu hierarchy has a cpu.stat too (throttling only): look for cpuacct first.
    for (
      const [name, v1] of [["cpuacct.usage", true], [
        "cpu.stat",
        false,
      ]] as const
    ) {
      // v1: the cpuacct hierarchy's directory first (the usual answer, found at once)
      const ordered = v1
        ? [
          ...paths.filter((d) => d.includes("cpuacct")),
          ...paths.filter((d) => !d.includes("cpuacct")),
        ]
        : paths;
      for (const dir of ordered) {
        // statx first: a missing file is the usual answer, and an exception costs more.
        if (statxat(At.AT_FDCWD, `${dir}/${name}`) === null) continue;
        const file = Deno.openSync(`${dir}/${name}`);
        if (
          v1 ||
          new TextDecoder().decode(Deno.readFileSync(`${dir}/${name}`))
            .includes("usage_usec")
        ) {
          return { file, v1 };
        }
        file.close();
      }
    }
    throw new Error(
      `Cannot measure CPU time: no cpuacct.usage, nor a cpu.stat with usage_usec, in ${
        paths.join(", ")
      }`,
    );
  }

  /** CPU seconds used so far. */
  read(): number {
    this.#file.seekSync(0, Deno.SeekMode.Start);
    let len = 0;
    for (;;) {
      const n = this.#file.readSync(this.#buf.subarray(len));
      if (n === null || n === 0) break;
      len += n;
      if (len === this.#buf.length) break;
    }
    const text = this.#decoder.decode(this.#buf.subarray(0, len));
    if (this.#v1) return Number(text.trim()) / 1e9;
    const m = /^usage_usec (\d+)$/m.exec(text);
    if (!m) {
      throw new Error(`Cannot measure CPU time: no usage_usec in cpu.stat`);
    }
    return Number(m[1]) / 1e6;
  }

  /** Closes the counter file. */
  [Symbol.dispose](): void {
    try {
      this.#file.close();
    } catch { /* already closed */ }
  }
}
