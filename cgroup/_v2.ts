/**
 * The cgroup v2 driver: one directory, the unified file names (memory.max, cpu.max, ...).
 * @module
 */
import { SyscallError } from "denobox/libc";
import type { Driver, IoLimits } from "./_driver.ts";
import {
  exists,
  readOptional,
  readText,
  subdirs,
  toSyscallError,
  writeText,
} from "./_fs.ts";
import {
  formatV2,
  parseControllerList,
  parseCounter,
  parseKeyed,
  parsePids,
  sumIoStat,
} from "./_parse.ts";
import type { CgroupCounters, CounterName, CounterReading } from "./stats.ts";

/** Drives one cgroup v2 directory. */
export class V2Driver implements Driver {
  readonly version = 2 as const;
  readonly paths: readonly string[];
  readonly dir: string;
  #peakSeen = 0;
  /**
   * Set once this handle has turned on denobox's controllers for its children (its
   * cgroup.subtree_control), so that making many children does not read it each time.
   */
  childControllersEnabled = false;

  constructor(dir: string) {
    this.dir = dir;
    this.paths = Object.freeze([dir]);
  }

  controllers(): string[] {
    return parseControllerList(
      readOptional(`${this.dir}/cgroup.controllers`) ?? "",
    );
  }

  #write(file: string, value: string): void {
    try {
      writeText(`${this.dir}/${file}`, value);
    } catch (e) {
      const controller = file.split(".")[0]!;
      if (
        e instanceof SyscallError && e.code === "ENOENT" &&
        controller !== "cgroup" &&
        exists(this.dir) && !this.controllers().includes(controller)
      ) {
        throw e.withHint(
          `the ${controller} controller is not enabled for this group: write "+${controller}" to its parent's cgroup.subtree_control`,
        );
      }
      throw e;
    }
  }

  setMemory(
    max: number,
    swap: number | undefined,
    high: number | undefined,
    _fresh: boolean,
  ): void {
    // v2's files are independent of each other: nothing to read first, fresh or not.
    if (high !== undefined) this.#write("memory.high", formatV2(high));
    if (swap !== undefined) {
      try {
        this.#write("memory.swap.max", formatV2(swap));
      } catch (e) {
        if (
          e instanceof SyscallError && e.code === "ENOENT" &&
          e.hint === undefined
        ) {
          throw e.withHint(
            "swap accounting is off in this kernel (CONFIG_MEMCG_SWAP, swapaccount=1)",
          );
        }
        throw e;
      }
    }
    this.#write("memory.max", formatV2(max));
  }

  setCpuMax(quota: number, period: number): void {
    this.#write("cpu.max", `${formatV2(quota)} ${period}`);
  }

  setCpuWeight(weight: number): void {
    this.#write("cpu.weight", String(weight));
  }

  setCpuset(cpus: string | undefined, mems: string | undefined): void {
    if (cpus !== undefined) this.#write("cpuset.cpus", cpus);
    if (mems !== undefined) this.#write("cpuset.mems", mems);
  }

  setPidsMax(max: number): void {
    this.#write("pids.max", formatV2(max));
  }

  setIoMax(device: string, limits: IoLimits): void {
    const parts = (["rbps", "wbps", "riops", "wiops"] as const)
      .filter((k) => limits[k] !== undefined)
      .map((k) => `${k}=${formatV2(limits[k]!)}`);
    this.#write("io.max", `${device} ${parts.join(" ")}`);
  }

  setIoWeight(weight: number, device: string | undefined): void {
    // io.weight is the io.cost model's file; with BFQ as the scheduler only io.bfq.weight exists.
    const file = exists(`${this.dir}/io.weight`)
      ? "io.weight"
      : "io.bfq.weight";
    this.#write(
      file,
      device === undefined ? `default ${weight}` : `${device} ${weight}`,
    );
  }

  requestFreeze(frozen: boolean): void {
    this.#write("cgroup.freeze", frozen ? "1" : "0");
  }

  freezeSettled(frozen: boolean): boolean {
    const events = parseKeyed(readText(`${this.dir}/cgroup.events`));
    return (events.get("frozen") === 1) === frozen;
  }

  killAll(): boolean {
    if (!exists(`${this.dir}/cgroup.kill`)) return false;
    this.#write("cgroup.kill", "1");
    return true;
  }

  procs(): number[] {
    const out: number[] = [];
    const walk = (dir: string) => {
      const text = readOptional(`${dir}/cgroup.procs`);
      if (text === null) return;
      out.push(...parsePids(text));
      for (const d of subdirs(dir)) walk(d);
    };
    walk(this.dir);
    return out;
  }

  populated(): boolean {
    const text = readOptional(`${this.dir}/cgroup.events`);
    return text !== null && parseKeyed(text).get("populated") === 1;
  }

  addProcess(pid: number): void {
    this.#write("cgroup.procs", String(pid));
  }

  counters(names: readonly CounterName[]): CounterReading {
    // Each file is read once however many of its counters are asked for.
    const texts = new Map<string, string | null>();
    const read = (f: string): string | null => {
      let t = texts.get(f);
      if (t === undefined) {
        t = readOptional(`${this.dir}/${f}`);
        texts.set(f, t);
      }
      return t;
    };
    const num = (f: string) => {
      const t = read(f);
      return t === null ? null : parseCounter(t);
    };
    const keyed = (f: string, key: string) =>
      parseKeyed(read(f) ?? "").get(key) ?? 0;
    const current = () => {
      const c = num("memory.current") ?? 0;
      this.#peakSeen = Math.max(this.#peakSeen, c);
      return c;
    };
    let peakSource: "kernel" | "sampled" = "kernel";
    const values: Partial<CgroupCounters> = {};
    for (const n of names) {
      switch (n) {
        case "cpu.usage":
          values[n] = keyed("cpu.stat", "usage_usec");
          break;
        case "cpu.user":
          values[n] = keyed("cpu.stat", "user_usec");
          break;
        case "cpu.system":
          values[n] = keyed("cpu.stat", "system_usec");
          break;
        case "memory.current":
          values[n] = current();
          break;
        case "memory.peak": {
          // memory.peak arrived in Linux 5.19; before it the best we have is the highest
          // memory.current that this handle has seen.
          const kernelPeak = num("memory.peak");
          if (kernelPeak === null) {
            current();
            peakSource = "sampled";
          }
          values[n] = kernelPeak ?? this.#peakSeen;
          break;
        }
        case "memory.swap":
          values[n] = num("memory.swap.current");
          break;
        case "memory.oomEvents":
          values[n] = keyed("memory.events", "oom");
          break;
        case "memory.oomKills":
          values[n] = keyed("memory.events", "oom_kill");
          break;
        case "pids.current":
          values[n] = num("pids.current") ?? 0;
          break;
        case "pids.peak":
          values[n] = num("pids.peak");
          break;
        case "io.readBytes":
          values[n] = sumIoStat(read("io.stat") ?? "", "rbytes");
          break;
        case "io.writeBytes":
          values[n] = sumIoStat(read("io.stat") ?? "", "wbytes");
          break;
      }
    }
    return { values, peakSource };
  }

  remove(): boolean {
    return removeTree(this.dir);
  }
}

/** rmdir of a cgroup and its sub-cgroups, deepest first; false while one is still busy. */
export function removeTree(dir: string): boolean {
  let done = true;
  for (const d of subdirs(dir)) done = removeTree(d) && done;
  if (!done) return false;
  try {
    Deno.removeSync(dir);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return true;
    if (
      e instanceof Deno.errors.Busy || (e as { code?: string }).code === "EBUSY"
    ) return false;
    throw toSyscallError(e, "rmdir", dir);
  }
}
