import { At, SyscallError, unlinkat } from "denobox/libc";
import type { Driver } from "./_driver.ts";
import {
  checkControllers,
  checkName,
  type ControllerName,
  createChild,
  createGroup,
  openGroup,
} from "./_create.ts";
import { sleep } from "./_fs.ts";
import { classifyCgroups } from "./_layout.ts";
import { driverOf, register } from "./_private.ts";
import { type CpuLimit, cpuPlan, cpusetPlan, cpuWeightPlan } from "./cpu.ts";
import { killGroup } from "./kill.ts";
import { type MemoryLimitOptions, memoryPlan } from "./memory.ts";
import { pidsPlan } from "./pids.ts";

export type { ControllerName } from "./_create.ts";

/** Limits applied while a group is created (a failure removes the group again). */
export interface CgroupLimits {
  /** Memory limit, or the limit with swap and high (see `setMemoryLimit`). */
  memory?: number | string | ({ max: number | string } & MemoryLimitOptions);
  /** CPU bandwidth (see `setCpuLimit`). */
  cpu?: CpuLimit;
  /** CPU weight, 1 to 10000 (see `setCpuWeight`). */
  cpuWeight?: number;
  /** CPUs and memory nodes (see `setCpuset`). */
  cpuset?: { cpus?: string; mems?: string };
  /** Task limit (see `setPidsLimit`). */
  pids?: number | "max";
}

/** Options of `Cgroup.create`. */
export interface CgroupCreateOptions {
  /**
   * Where the group goes instead of the default: an absolute cgroup path (`/mybox`, relative to
   * each hierarchy's root) or a directory inside a cgroup mount (`/sys/fs/cgroup/mybox`), or
   * a `Cgroup`: the new group is made inside its directories (on v1 in its hierarchies only)
   * without reading the machine's cgroup layout again, the cheap way to make many groups.
   * Default: v1 `/denobox` in each hierarchy; v2 `<this process's cgroup>/denobox`.
   */
  parent?: string | Cgroup;
  /**
   * The controllers the group needs (`"memory"`, `"pids"`, `"cpuacct"`, `"cpu"`, `"cpuset"`,
   * `"freezer"`, `"blkio"` or `"io"`). On v1 the group is made only in the hierarchies that
   * hold them, which makes creating, joining and removing it cheaper (each hierarchy is a
   * directory to make, a migration and a directory to remove); a limit or counter of a
   * controller left out is then unavailable. On v2 a group is one directory whatever this says.
   * Default: every hierarchy denobox uses.
   */
  controllers?: readonly ControllerName[];
  /**
   * Limits to apply before the group is handed out. Written without reading the current
   * values first (a new group has the kernel's defaults), so cheaper than the setters after
   * `create()`: on v1, `setMemoryLimit` reads both memory limits to keep them in order.
   */
  limits?: CgroupLimits;
}

const KEY = Symbol("Cgroup");
let wrap: ((d: Driver) => Cgroup) | undefined;

/** A handle over a driver (tests point drivers at temp dirs); not part of the public API. */
export function cgroupFromDriver(driver: Driver): Cgroup {
  return wrap!(driver);
}

function randomName(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(6));
  return "box-" +
    [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** What applies one limit; `fresh`: to a group just made, whose limits are the defaults. */
type LimitPlan = (d: Driver, fresh: boolean) => void;

function limitPlans(limits: CgroupLimits): LimitPlan[] {
  const plans: LimitPlan[] = [];
  const m = limits.memory;
  if (m !== undefined) {
    if (typeof m === "object") {
      const { max, ...options } = m;
      plans.push(memoryPlan(max, options));
    } else {
      plans.push(memoryPlan(m));
    }
  }
  if (limits.cpu !== undefined) plans.push(cpuPlan(limits.cpu));
  if (limits.cpuWeight !== undefined) {
    plans.push(cpuWeightPlan(limits.cpuWeight));
  }
  if (limits.cpuset !== undefined) plans.push(cpusetPlan(limits.cpuset));
  if (limits.pids !== undefined) plans.push(pidsPlan(limits.pids));
  return plans;
}

/**
 * rmdir(2) of one group directory: true when it is gone, false when it is busy or not empty.
 * Synchronous: removing a group costs the kernel tens of microseconds (a v1 memory group is
 * taken offline), but handing that to Deno's blocking pool costs more CPU time than it saves
 * (measured: three async removes took about 80 µs more CPU per group than three sync ones).
 * unlinkat(AT_REMOVEDIR) rather than `Deno.removeSync`, which looks the path up once more
 * (a statx) to choose between rmdir and unlink.
 */
function rmdirIfIdle(dir: string): boolean {
  try {
    unlinkat(At.AT_FDCWD, dir, { dir: true });
    return true;
  } catch (e) {
    if (!(e instanceof SyscallError)) throw e;
    if (e.code === "ENOENT") return true;
    if (e.code === "EBUSY" || e.code === "ENOTEMPTY") return false;
    throw e;
  }
}

function layout() {
  return classifyCgroups(
    Deno.readTextFileSync("/proc/self/mountinfo"),
    Deno.readTextFileSync("/proc/self/cgroup"),
  );
}

/**
 * A control group on cgroup v1 or v2: create or open one, hand its `paths` to
 * `spawn({ cgroup })`, set limits with the functions of this module, read `stats()`, and
 * `destroy()` it (kill every member, wait until empty, remove the directories).
 *
 * @example A group with limits, destroyed at scope end
 * ```ts ignore
 * import { Cgroup, setMemoryLimit, setPidsLimit, stats } from "denobox/cgroup";
 * await using cg = Cgroup.create();
 * setMemoryLimit(cg, "256M");
 * setPidsLimit(cg, 64);
 * console.log(cg.version, cg.paths, stats(cg).memory.current);
 * ```
 */
export class Cgroup implements AsyncDisposable {
  /** 1 (legacy hierarchies) or 2 (unified). */
  readonly version: 1 | 2;
  /** The directories a process joins: v2 one; v1 one per hierarchy used. */
  readonly paths: readonly string[];
  #driver: Driver;
  #destroying: Promise<void> | null = null;

  /** Use `Cgroup.create` or `Cgroup.open`. */
  private constructor(key: symbol, driver: Driver) {
    if (key !== KEY) {
      throw new TypeError("Use Cgroup.create() or Cgroup.open()");
    }
    this.#driver = driver;
    this.version = driver.version;
    this.paths = driver.paths;
    register(this, driver);
  }

  /**
   * Creates a group (synchronously: cgroupfs writes are immediate) named `name` (random if
   * omitted) in the default parent or `options.parent`, and applies `options.limits`. Bad
   * arguments are a `RangeError` before anything is created; if a step fails, the directories
   * made so far are removed.
   *
   * @throws {SyscallError} e.g. `EACCES` without the right to create groups there (with a
   *   hint saying what to do), `EEXIST` when the name is taken.
   * @example
   * ```ts ignore
   * import { Cgroup } from "denobox/cgroup";
   * await using cg = Cgroup.create("web-1", { limits: { memory: "512m", pids: 128 } });
   * ```
   * @example Many small groups inside one parent, in three v1 hierarchies only
   * ```ts ignore
   * import { Cgroup } from "denobox/cgroup";
   * const controllers = ["memory", "pids", "cpuacct"] as const;
   * await using pool = Cgroup.create("judge", { controllers });
   * for (let i = 0; i < 100; i++) {
   *   await using run = Cgroup.create(`run-${i}`, { parent: pool, controllers, limits: { pids: 64 } });
   * }
   * ```
   */
  static create(name?: string, options: CgroupCreateOptions = {}): Cgroup {
    const n = checkName(name ?? randomName());
    const plans = limitPlans(options.limits ?? {});
    const wanted = checkControllers(options.controllers);
    const parent = options.parent;
    const driver = typeof parent === "object" && parent !== null
      ? createChild(driverOf(parent), n, wanted)
      : createGroup(layout(), n, parent, wanted);
    using stack = new DisposableStack();
    stack.defer(() => driver.remove());
    for (const apply of plans) apply(driver, true);
    stack.move();
    return new Cgroup(KEY, driver);
  }

  /**
   * Opens an existing group: a name in the default parent (`"box-1"`), a cgroup path
   * (`"/denobox/box-1"`) or a directory (`"/sys/fs/cgroup/memory/denobox/box-1"`; on v1 the
   * same group in every hierarchy is used).
   *
   * @throws {SyscallError} `ENOENT` when there is no such group.
   * @example
   * ```ts ignore
   * import { Cgroup, processes } from "denobox/cgroup";
   * console.log(processes(Cgroup.open("web-1")));
   * ```
   */
  static open(pathOrName: string): Cgroup {
    return new Cgroup(KEY, openGroup(layout(), pathOrName));
  }

  /**
   * Kills every process of the group and its sub-groups, waits until it is empty and removes
   * its directories (in every hierarchy). Idempotent: later calls return the first call's
   * result; after a failure, a new call tries again.
   */
  destroy(): Promise<void> {
    this.#destroying ??= this.#destroy().catch((e) => {
      this.#destroying = null;
      throw e;
    });
    return this.#destroying;
  }

  async #destroy(): Promise<void> {
    const d = this.#driver;
    // The common case, an empty group without sub-groups: rmdir succeeds at once (the kernel
    // refuses it with EBUSY while a process or a sub-group is in it).
    const removed = d.paths.map(rmdirIfIdle);
    if (removed.every(Boolean)) return;
    await killGroup(d, 9, 10_000);
    // rmdir can report EBUSY for a moment after the last member is gone.
    const end = performance.now() + 5000;
    for (let delay = 1; !d.remove(); delay = Math.min(delay * 2, 50)) {
      if (performance.now() >= end) {
        throw new Error(
          `Cannot remove cgroup ${d.paths.join(", ")}: still busy after 5 s`,
        );
      }
      if (d.populated()) await killGroup(d, 9, 10_000);
      await sleep(delay);
    }
  }

  static {
    wrap = (d) => new Cgroup(KEY, d);
  }

  /** `destroy()`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.destroy();
  }
}
