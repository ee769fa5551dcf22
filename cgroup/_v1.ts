/**
 * The cgroup v1 driver: one directory per hierarchy (memory, cpu, cpuacct, cpuset, pids,
 * freezer, blkio; several controllers may share one), with the legacy file names.
 * @module
 */
import { SyscallError } from "denobox/libc";
import type { Driver, IoLimits } from "./_driver.ts";
import { exists, readOptional, readText, subdirs, writeText } from "./_fs.ts";
import {
  formatV1,
  formatV2,
  parseBlkioBytes,
  parseCounter,
  parseKeyed,
  parsePids,
  parseUsageAll,
  parseV1Limit,
  weightToShares,
} from "./_parse.ts";
import { removeTree } from "./_v2.ts";
import type { CgroupCounters, CounterName, CounterReading } from "./stats.ts";

/** The v1 controllers a denobox group uses. */
export const V1_USED = [
  "memory",
  "cpu",
  "cpuacct",
  "cpuset",
  "pids",
  "freezer",
  "blkio",
] as const;

/** One of the v1 controllers a denobox group uses. */
export type V1Controller = typeof V1_USED[number];

/** USER_HZ: the unit of cpuacct.stat (100 on every Linux architecture we support). */
const USER_HZ = 100;

/** The error for a swap limit where v1 has no memsw files (swap accounting off). */
function noSwapAccounting(memsw: string): SyscallError {
  return new SyscallError("open", 2, {
    path: memsw,
    hint:
      "swap accounting is off: boot with swapaccount=1 to limit swap on cgroup v1",
  });
}

/** Drives one group across v1 hierarchies: a directory per controller. */
export class V1Driver implements Driver {
  readonly version = 1 as const;
  readonly paths: readonly string[];
  readonly dirs: Readonly<Partial<Record<V1Controller, string>>>;

  constructor(dirs: Partial<Record<V1Controller, string>>) {
    this.dirs = Object.freeze({ ...dirs });
    this.paths = Object.freeze([...new Set(Object.values(dirs))]);
  }

  controllers(): string[] {
    return V1_USED.filter((c) => this.dirs[c] !== undefined);
  }

  #dir(controller: V1Controller, what: string): string {
    const dir = this.dirs[controller];
    if (dir === undefined) {
      throw new SyscallError("open", 2, {
        path: `<${controller} hierarchy>`,
        detail: what,
        hint:
          `no cgroup v1 ${controller} hierarchy is mounted (mount -t cgroup -o ${controller} cgroup /sys/fs/cgroup/${controller})`,
      });
    }
    return dir;
  }

  #write(controller: V1Controller, file: string, value: string): void {
    writeText(`${this.#dir(controller, file)}/${file}`, value);
  }

  setMemory(
    max: number,
    swap: number | undefined,
    high: number | undefined,
    fresh: boolean,
  ): void {
    const dir = this.#dir("memory", "memory.limit_in_bytes");
    const memsw = `${dir}/memory.memsw.limit_in_bytes`;
    if (fresh) return this.#setFreshMemory(dir, max, swap, high);
    const hasMemsw = exists(memsw);
    if (!hasMemsw && swap !== undefined) throw noSwapAccounting(memsw);
    if (high !== undefined) {
      writeText(`${dir}/memory.soft_limit_in_bytes`, formatV1(high));
    }
    if (!hasMemsw) {
      writeText(`${dir}/memory.limit_in_bytes`, formatV1(max));
      return;
    }
    // v1 keeps memory.limit <= memory.memsw.limit (memory + swap) at every step: raise the
    // pair from the top, lower it from the bottom. Without `swap`, the swap allowance stays.
    const curMem = parseV1Limit(readText(`${dir}/memory.limit_in_bytes`));
    const curSw = parseV1Limit(readText(memsw));
    const allowance = swap ?? (curSw === Infinity ? Infinity : curSw - curMem);
    const total = max === Infinity || allowance === Infinity
      ? Infinity
      : max + allowance;
    if (max > curSw) {
      writeText(memsw, formatV1(total));
      writeText(`${dir}/memory.limit_in_bytes`, formatV1(max));
    } else {
      writeText(`${dir}/memory.limit_in_bytes`, formatV1(max));
      writeText(memsw, formatV1(total));
    }
  }

  /**
   * A new group starts with both limits unlimited, so the order is known without reading
   * them: memory first (under an unlimited memsw), then memsw. Without `swap` the swap
   * allowance stays unlimited, and memsw is not touched.
   */
  #setFreshMemory(
    dir: string,
    max: number,
    swap: number | undefined,
    high: number | undefined,
  ): void {
    if (high !== undefined) {
      writeText(`${dir}/memory.soft_limit_in_bytes`, formatV1(high));
    }
    writeText(`${dir}/memory.limit_in_bytes`, formatV1(max));
    if (swap === undefined) return;
    const memsw = `${dir}/memory.memsw.limit_in_bytes`;
    try {
      writeText(
        memsw,
        formatV1(max === Infinity || swap === Infinity ? Infinity : max + swap),
      );
    } catch (e) {
      if (e instanceof SyscallError && e.code === "ENOENT") {
        throw noSwapAccounting(memsw);
      }
      throw e;
    }
  }

  setCpuMax(quota: number, period: number): void {
    this.#write("cpu", "cpu.cfs_period_us", String(period));
    this.#write("cpu", "cpu.cfs_quota_us", formatV1(quota));
  }

  setCpuWeight(weight: number): void {
    this.#write("cpu", "cpu.shares", String(weightToShares(weight)));
  }

  setCpuset(cpus: string | undefined, mems: string | undefined): void {
    if (cpus !== undefined) this.#write("cpuset", "cpuset.cpus", cpus);
    if (mems !== undefined) this.#write("cpuset", "cpuset.mems", mems);
  }

  setPidsMax(max: number): void {
    this.#write("pids", "pids.max", formatV2(max));
  }

  setIoMax(device: string, limits: IoLimits): void {
    const files = {
      rbps: "blkio.throttle.read_bps_device",
      wbps: "blkio.throttle.write_bps_device",
      riops: "blkio.throttle.read_iops_device",
      wiops: "blkio.throttle.write_iops_device",
    } as const;
    for (const k of ["rbps", "wbps", "riops", "wiops"] as const) {
      const v = limits[k];
      // 0 removes the rule: v1's spelling of "no limit".
      if (v !== undefined) {
        this.#write("blkio", files[k], `${device} ${v === Infinity ? 0 : v}`);
      }
    }
  }

  setIoWeight(weight: number, device: string | undefined): void {
    const dir = this.#dir("blkio", "blkio.weight");
    // CFQ (gone since 5.0) had blkio.weight; BFQ has blkio.bfq.weight.
    const base = exists(`${dir}/blkio.bfq.weight`)
      ? "blkio.bfq.weight"
      : "blkio.weight";
    if (device === undefined) writeText(`${dir}/${base}`, String(weight));
    else writeText(`${dir}/${base}_device`, `${device} ${weight}`);
  }

  requestFreeze(frozen: boolean): void {
    this.#write("freezer", "freezer.state", frozen ? "FROZEN" : "THAWED");
  }

  freezeSettled(frozen: boolean): boolean {
    const state = readText(
      `${this.#dir("freezer", "freezer.state")}/freezer.state`,
    ).trim();
    return state === (frozen ? "FROZEN" : "THAWED");
  }

  killAll(): boolean {
    return false;
  }

  procs(): number[] {
    const all = new Set<number>();
    const walk = (dir: string) => {
      const text = readOptional(`${dir}/cgroup.procs`);
      if (text === null) return;
      for (const p of parsePids(text)) all.add(p);
      for (const d of subdirs(dir)) walk(d);
    };
    for (const dir of this.paths) walk(dir);
    return [...all];
  }

  populated(): boolean {
    return this.procs().length > 0;
  }

  addProcess(pid: number): void {
    for (const dir of this.paths) writeText(`${dir}/cgroup.procs`, String(pid));
  }

  counters(names: readonly CounterName[]): CounterReading {
    // Each file is read once however many of its counters are asked for.
    const texts = new Map<string, string | null>();
    const read = (c: V1Controller, f: string): string | null => {
      const dir = this.dirs[c];
      if (dir === undefined) return null;
      const path = `${dir}/${f}`;
      let t = texts.get(path);
      if (t === undefined) {
        t = readOptional(path);
        texts.set(path, t);
      }
      return t;
    };
    const num = (c: V1Controller, f: string) => {
      const t = read(c, f);
      return t === null ? null : parseCounter(t);
    };
    let split: { user: number; system: number } | undefined;
    const cpuSplit = () => {
      if (split !== undefined) return split;
      // usage_all (4.7+) holds both halves in ns; before it, USER_HZ ticks in cpuacct.stat.
      const all = read("cpuacct", "cpuacct.usage_all");
      if (all !== null) {
        const ns = parseUsageAll(all);
        split = {
          user: Math.floor(ns.user / 1000),
          system: Math.floor(ns.system / 1000),
        };
      } else {
        const ticks = parseKeyed(read("cpuacct", "cpuacct.stat") ?? "");
        split = {
          user: ((ticks.get("user") ?? 0) * 1e6) / USER_HZ,
          system: ((ticks.get("system") ?? 0) * 1e6) / USER_HZ,
        };
      }
      return split;
    };
    // v1 counts OOM kills in memory.oom_control (4.13+) and has no separate OOM event
    // counter: every OOM in a group ends in a kill unless oom_kill_disable is set.
    const oomKills = () =>
      parseKeyed(read("memory", "memory.oom_control") ?? "").get("oom_kill") ??
        0;
    const io = () =>
      parseBlkioBytes(
        read("blkio", "blkio.throttle.io_service_bytes_recursive") ??
          read("blkio", "blkio.bfq.io_service_bytes_recursive") ?? "",
      );
    const values: Partial<CgroupCounters> = {};
    for (const n of names) {
      switch (n) {
        case "cpu.usage": {
          const ns = num("cpuacct", "cpuacct.usage");
          values[n] = ns === null ? 0 : Math.floor(ns / 1000);
          break;
        }
        case "cpu.user":
          values[n] = cpuSplit().user;
          break;
        case "cpu.system":
          values[n] = cpuSplit().system;
          break;
        case "memory.current":
          values[n] = num("memory", "memory.usage_in_bytes") ?? 0;
          break;
        case "memory.peak":
          values[n] = num("memory", "memory.max_usage_in_bytes") ?? 0;
          break;
        case "memory.swap": {
          const memsw = num("memory", "memory.memsw.usage_in_bytes");
          values[n] = memsw === null ? null : Math.max(
            0,
            memsw - (num("memory", "memory.usage_in_bytes") ?? 0),
          );
          break;
        }
        case "memory.oomEvents":
        case "memory.oomKills":
          values[n] = oomKills();
          break;
        case "pids.current":
          values[n] = num("pids", "pids.current") ?? 0;
          break;
        case "pids.peak":
          values[n] = num("pids", "pids.peak");
          break;
        case "io.readBytes":
          values[n] = io().read;
          break;
        case "io.writeBytes":
          values[n] = io().write;
          break;
      }
    }
    return { values, peakSource: "kernel" };
  }

  remove(): boolean {
    let done = true;
    for (const dir of this.paths) done = removeTree(dir) && done;
    return done;
  }
}
