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
import type { CgroupStats } from "./stats.ts";

/** Drives one cgroup v2 directory. */
export class V2Driver implements Driver {
  readonly version = 2 as const;
  readonly paths: readonly string[];
  readonly dir: string;
  #peakSeen = 0;

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
  ): void {
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

  stats(): CgroupStats {
    const read = (f: string) => readOptional(`${this.dir}/${f}`);
    const num = (f: string) => {
      const t = read(f);
      return t === null ? null : parseCounter(t);
    };
    const cpu = parseKeyed(read("cpu.stat") ?? "");
    const events = parseKeyed(read("memory.events") ?? "");
    const current = num("memory.current") ?? 0;
    const kernelPeak = num("memory.peak");
    // memory.peak arrived in Linux 5.19; before it the best we have is the highest
    // memory.current that stats() has seen on this handle.
    this.#peakSeen = Math.max(this.#peakSeen, current);
    const io = read("io.stat") ?? "";
    return {
      cpu: {
        usage: cpu.get("usage_usec") ?? 0,
        user: cpu.get("user_usec") ?? 0,
        system: cpu.get("system_usec") ?? 0,
      },
      memory: {
        current,
        peak: kernelPeak ?? this.#peakSeen,
        peakSource: kernelPeak === null ? "sampled" : "kernel",
        swap: num("memory.swap.current"),
        oomEvents: events.get("oom") ?? 0,
        oomKills: events.get("oom_kill") ?? 0,
      },
      pids: { current: num("pids.current") ?? 0, peak: num("pids.peak") },
      io: {
        readBytes: sumIoStat(io, "rbytes"),
        writeBytes: sumIoStat(io, "wbytes"),
      },
    };
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
