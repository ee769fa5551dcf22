/**
 * A cheap reader of a cgroup's total CPU time (every process and thread, user + system), for
 * polling many times a second: one file kept open and re-read from offset 0.
 * v1: `cpuacct.usage` (nanoseconds); v2: `usage_usec` of `cpu.stat`.
 * @module
 */
import { Cgroup } from "denobox/cgroup";

const ZERO = new TextEncoder().encode("0");

/** Reads the CPU time of one cgroup. */
export class CpuClock implements Disposable {
  readonly #file: Deno.FsFile;
  readonly #v1: boolean;
  readonly #resettable: boolean;
  readonly #buf = new Uint8Array(4096);
  readonly #decoder = new TextDecoder();

  /**
   * Opens the CPU counter among the group's directories; throws when none has one.
   * `resettable` (v1 only): opened for writing too, for `reset()`.
   */
  constructor(
    cg: Pick<Cgroup, "paths" | "version">,
    options: { resettable?: boolean } = {},
  ) {
    this.#v1 = cg.version === 1;
    this.#resettable = options.resettable ?? false;
    if (this.#resettable && !this.#v1) {
      throw new TypeError(
        "Cannot reset a cgroup v2 CPU clock: cpu.stat only counts up",
      );
    }
    this.#file = this.#v1
      ? CpuClock.#openV1(cg.paths, this.#resettable)
      : CpuClock.#open(`${cg.paths[0]}/cpu.stat`, false, false)!;
  }

  static #openV1(paths: readonly string[], write: boolean): Deno.FsFile {
    // The cpuacct hierarchy's directory first: the usual answer, found at once (v1's cpu
    // hierarchy has a cpu.stat too, with throttling figures only).
    const ordered = [
      ...paths.filter((d) => d.includes("cpuacct")),
      ...paths.filter((d) => !d.includes("cpuacct")),
    ];
    for (const dir of ordered) {
      const file = CpuClock.#open(`${dir}/cpuacct.usage`, true, write);
      if (file !== null) return file;
    }
    throw new Error(
      `Cannot measure CPU time: no cpuacct.usage in ${paths.join(", ")}`,
    );
  }

  /** Opens a counter file; null when `optional` and it does not exist. */
  static #open(
    path: string,
    optional: boolean,
    write: boolean,
  ): Deno.FsFile | null {
    try {
      return Deno.openSync(path, { read: true, write });
    } catch (e) {
      if (optional && e instanceof Deno.errors.NotFound) return null;
      throw new Error(
        `Cannot measure CPU time: open ${path}: ${(e as Error).message}`,
      );
    }
  }

  /**
   * Sets the group's CPU counters to zero (v1's `cpuacct.usage`, and with it the user and
   * system halves in `cpuacct.usage_all` and `cpuacct.stat`). Only while the group is empty:
   * a member's time could otherwise land on either side of the reset.
   */
  reset(): void {
    if (!this.#resettable) {
      throw new TypeError("Cannot reset a CPU clock not opened as resettable");
    }
    this.#file.writeSync(ZERO);
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

/**
 * A slot's CPU accounting group on cgroup v1, kept across the slot's runs: on v1 the CPU
 * figures come from their own hierarchy (cpuacct), whose counters can be set to zero, so a
 * slot needs no new group there per run (a directory to make, and one to remove, each taking
 * the kernel's global cgroup lock). Memory keeps a fresh group per run: its charges (page
 * cache, kernel objects, per-CPU charge batches) outlive the run's processes, and would be in
 * the next run's peak.
 *
 * Reuse rests on one invariant: a run's processes are all in its memory group too, so once
 * that group is removed (the kernel refuses while a process is in it), this one is empty. A
 * run whose clean-up failed spoils the group: the pool then destroys it and makes a new one.
 */
export class SlotCpuGroup implements AsyncDisposable {
  readonly group: Cgroup;
  /** The group's CPU clock, reset before each run. */
  readonly clock: CpuClock;
  #spoiled = false;

  /** Makes the group `name` (cpuacct only) in `parent`, a v1 group. */
  constructor(parent: Cgroup, name: string) {
    if (parent.version !== 1) {
      throw new TypeError("Invalid parent: a slot CPU group is for cgroup v1");
    }
    this.group = Cgroup.create(name, { parent, controllers: ["cpuacct"] });
    try {
      this.clock = new CpuClock(this.group, { resettable: true });
    } catch (e) {
      this.group.destroy().catch(() => {});
      throw e;
    }
  }

  /** Whether a run's clean-up failed while it used this group (then it is not reused). */
  get spoiled(): boolean {
    return this.#spoiled;
  }

  /** Marks the group as not to be reused. */
  spoil(): void {
    this.#spoiled = true;
  }

  /** Zeroes the counters for the next run (between runs, when the group is empty). */
  reset(): void {
    if (this.#spoiled) throw new Error("Cannot reuse a spoiled CPU group");
    this.clock.reset();
  }

  /** Closes the clock and destroys the group (killing anything left in it). */
  async [Symbol.asyncDispose](): Promise<void> {
    this.clock[Symbol.dispose]();
    await this.group.destroy();
  }
}
