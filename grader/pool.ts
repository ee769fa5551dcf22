/**
 * `GraderPool`: many runs at once, reusing what carries no trace of a submission.
 * @module
 */
import { Cgroup } from "denobox/cgroup";
import {
  DEFAULT_SECCOMP_PROFILE,
  defaultHardening,
  type Hardening,
  RootTemplate,
  type SeccompProfile,
  type SeccompSyscallRule,
} from "denobox/sandbox";
import { open, type OwnedFd, setns, unshare } from "denobox/libc";
import { DEFAULTS, planGrade } from "./_options.ts";
import {
  failedResult,
  RUN_CONTROLLERS,
  runPlan,
  type Slot,
  type Turn,
} from "./_run.ts";
import type { GradeOptions, GradeResult } from "./types.ts";
import { SlotCpuGroup } from "./_cpuclock.ts";

/** Options of `new GraderPool()`. */
export interface GraderPoolOptions {
  /**
   * Programs running at once; more wait their turn. Default: the number of CPUs. Up to twice
   * as many runs are under way: while `concurrency` programs run, the next runs are prepared
   * (cgroup, work directory) and finished ones cleaned up, so the CPUs never wait for the
   * grader's own bookkeeping.
   */
  concurrency?: number;
  /**
   * Slot `i` (from 0 to 2 × concurrency - 1) runs its programs as host uid and gid
   * `uidBase + i`, so two runs under way never share an identity. Default 60000 (isolate's
   * default first uid).
   */
  uidBase?: number;
  /**
   * Keep one empty network namespace per slot (loopback only, down) and let every run of that
   * slot join it, instead of making (and tearing down, which the kernel serializes) one per
   * run. Runs of one slot never overlap, a run holds no capability, and the pool's seccomp
   * filter lets it create AF_UNIX sockets only, which die with their processes: so a run can
   * change nothing in the namespace, not even its per-namespace counters (a failed IP send
   * counts in /proc/net/snmp, which is why IP sockets are refused). A run with its own
   * `seccomp` option gets a fresh namespace. Default true.
   */
  reuseNetworkNamespace?: boolean;
  /**
   * Build the default root (the host view `spawn()` shows: system directories read-only, a
   * curated /etc, a /dev) once for the pool as a `RootTemplate`, and let every run copy its
   * mount namespace instead of making its dozens of mounts. It exists on the host only as an
   * fd of this process: nothing to clean if the process dies. A run whose mount targets are
   * not in it (a `workDir` or `dirs` target other than /box, /tmp, /home, /root) gets the host
   * view of its own. Default true.
   */
  prepareRoot?: boolean;
}

/** Cleans the pool's cgroups (the arguments) when this process dies without closing the pool. */
const WATCHDOG = `
while read -r _; do :; done
for round in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
  left=0
  for d in "$@"; do
    [ -d "$d" ] || continue
    for f in $(find "$d" -name cgroup.procs 2>/dev/null); do
      for p in $(cat "$f" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
    done
    find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
    [ -d "$d" ] && left=1
  done
  [ "$left" = 0 ] && exit 0
  sleep 0.1
done
exit 1
`;

const POOL_GROUP = /^grader-(\d+)-(\d+)-[0-9a-f]+$/;

/** The start time of a process (clock ticks since boot), or null when it does not exist. */
function startTime(pid: number): string | null {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19] ?? null;
  } catch {
    return null;
  }
}

/** Whether the pool named `name` (`grader-<pid>-<start>-<random>`) belongs to a dead process. */
function stale(name: string): boolean {
  const m = POOL_GROUP.exec(name);
  return m !== null && startTime(Number(m[1])) !== m[2];
}

/** Removes the groups of pools whose process died without cleaning up. */
async function sweepStale(poolDir: string): Promise<void> {
  const parent = poolDir.slice(0, poolDir.lastIndexOf("/"));
  for await (const e of Deno.readDir(parent)) {
    if (!e.isDirectory || `${parent}/${e.name}` === poolDir) continue;
    if (!stale(e.name)) continue;
    try {
      await Cgroup.open(`${parent}/${e.name}`).destroy();
    } catch { /* another process swept it first */ }
  }
}

/** A gate that lets `n` holders through at once, the others in arrival order. */
function gate(n: number): Turn {
  let free = n;
  const waiting: (() => void)[] = [];
  return {
    take() {
      if (free > 0) {
        free--;
        return Promise.resolve();
      }
      return new Promise<void>((resolve) => waiting.push(resolve));
    },
    give() {
      const next = waiting.shift();
      if (next) next();
      else free++;
    },
  };
}

/** AF_UNIX, the one socket family a run may create. */
const AF_UNIX = 1;

/**
 * The pool's seccomp profile: denobox's default, with `socket()` allowed for AF_UNIX only. A
 * box has no network anyway (its loopback is down or alone), and an IP socket could still
 * bump a per-namespace counter that the next run of a shared namespace would read.
 */
function graderSeccompProfile(): SeccompProfile {
  const rules: SeccompSyscallRule[] = [];
  let found = false;
  for (const r of DEFAULT_SECCOMP_PROFILE.syscalls ?? []) {
    const names = r.names ?? (r.name === undefined ? [] : [r.name]);
    if (!names.includes("socket")) {
      rules.push(r);
      continue;
    }
    found = true;
    const others = names.filter((n) => n !== "socket");
    if (others.length > 0) rules.push({ ...r, names: others });
    rules.push({
      ...r,
      names: ["socket"],
      comment: "sockets: AF_UNIX only (a grader's box has no network)",
      args: [{ index: 0, value: AF_UNIX, op: "SCMP_CMP_EQ" }],
    });
  }
  if (!found) throw new Error("The default seccomp profile has no socket rule");
  return { ...DEFAULT_SECCOMP_PROFILE, syscalls: rules };
}

/** An empty network namespace (loopback only, down), as an fd. */
function emptyNetns(): OwnedFd {
  // unshare/setns move only the calling thread, and this runs synchronously on it: the
  // thread is back in its own namespace before any other code of this process runs on it.
  using mine = open("/proc/thread-self/ns/net");
  unshare(["net"]);
  try {
    return open("/proc/thread-self/ns/net");
  } finally {
    setns(mine.fd, ["net"]);
  }
}

/**
 * Of the default masked paths, those a box can reach and read: the program runs as an
 * unprivileged uid with no capabilities, so a root-only file (/proc/kcore, /proc/timer_list)
 * is closed to it already, the box has no /sys, and paths this kernel lacks need nothing.
 * (The default read-only paths are root-writable only, so they need nothing either.) Each mask
 * costs two mounts per run, so only the useful ones are made.
 */
function boxMaskedPaths(paths: readonly string[]): string[] {
  return paths.filter((p) => {
    if (!p.startsWith("/proc/")) return false;
    try {
      return (Deno.statSync(p).mode! & 0o004) !== 0;
    } catch {
      return false;
    }
  });
}

interface Shared {
  cgroup: Cgroup;
  root: RootTemplate | null;
  hardening: Hardening;
  maskedPaths: readonly string[];
  watchdog: Deno.ChildProcess;
  watchdogStdin: WritableStreamDefaultWriter<Uint8Array>;
}

/**
 * A pool of grader slots: `grade()` runs at most `concurrency` submissions at once, each in
 * its own fresh sandbox, cgroup and tmpfs work directory. What is reused carries nothing a
 * submission could write to: the pool's parent cgroup, one empty network namespace per slot
 * (runs of a slot never overlap), the slot's uid and, on cgroup v1, the slot's CPU
 * accounting group (zeroed before each run; memory always gets a fresh group). If this process is killed, a small
 * watchdog process (`/bin/sh`) removes the pool's cgroups; sandboxes die with their parent.
 *
 * @example Grade two runs at once
 * ```ts ignore
 * import { GraderPool } from "denobox/grader";
 * await using pool = new GraderPool({ concurrency: 2 });
 * const [a, b] = await Promise.all([
 *   pool.grade({ argv: ["/bin/true"], timeLimit: 1 }),
 *   pool.grade({ argv: ["/bin/sh", "-c", "exit 3"], timeLimit: 1 }),
 * ]);
 * console.log(a.status, b.status); // OK RE
 * ```
 */
export class GraderPool implements AsyncDisposable {
  /** Runs at once. */
  readonly concurrency: number;
  readonly #uidBase: number;
  readonly #reuseNetns: boolean;
  readonly #prepareRoot: boolean;
  readonly #free: number[] = [];
  readonly #waiting: ((slot: number) => void)[] = [];
  readonly #netns = new Map<number, OwnedFd>();
  readonly #cpu = new Map<number, SlotCpuGroup>();
  #shared: Promise<Shared> | null = null;
  #runs = 0;
  #active = new Set<Promise<unknown>>();
  #closed = false;
  #turn: Turn;

  /** Checks the options; nothing is created until the first `grade()`. */
  constructor(options: GraderPoolOptions = {}) {
    const c = options.concurrency ?? Math.max(1, navigator.hardwareConcurrency);
    if (!Number.isInteger(c) || c < 1 || c > 4096) {
      throw new RangeError(
        `Invalid concurrency: expected an integer from 1 to 4096, got ${c}`,
      );
    }
    const base = options.uidBase ?? 60000;
    if (!Number.isInteger(base) || base < 1 || base + 2 * c > 2 ** 32 - 2) {
      throw new RangeError(`Invalid uidBase: ${base}`);
    }
    this.concurrency = c;
    this.#uidBase = base;
    this.#reuseNetns = options.reuseNetworkNamespace ?? true;
    this.#prepareRoot = options.prepareRoot ?? true;
    for (let i = 0; i < 2 * c; i++) this.#free.push(i);
    this.#turn = gate(c);
  }

  async #init(): Promise<Shared> {
    const name = `grader-${Deno.pid}-${startTime(Deno.pid)}-${
      crypto.getRandomValues(new Uint32Array(1))[0]!.toString(16)
    }`;
    const cgroup = Cgroup.create(name, { controllers: RUN_CONTROLLERS });
    let watchdog: Deno.ChildProcess;
    let root: RootTemplate | null = null;
    try {
      await sweepStale(cgroup.paths[0]!);
      if (this.#prepareRoot) {
        root = await RootTemplate.create({ mountPoints: [DEFAULTS.workDir] });
      }
      watchdog = new Deno.Command("/bin/sh", {
        args: [
          "-c",
          WATCHDOG,
          "denobox-grader-watchdog",
          ...cgroup.paths,
        ],
        stdin: "piped",
        stdout: "null",
        stderr: "null",
        clearEnv: true,
        env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin" },
      }).spawn();
    } catch (e) {
      root?.close();
      await cgroup.destroy();
      throw e;
    }
    watchdog.unref();
    // No capabilities at all: the program runs as an unprivileged uid.
    const hardening = defaultHardening({
      capDrop: ["ALL"],
      seccomp: graderSeccompProfile(),
    });
    return {
      cgroup,
      root,
      hardening,
      maskedPaths: boxMaskedPaths(hardening.maskedPaths),
      watchdog,
      watchdogStdin: watchdog.stdin.getWriter(),
    };
  }

  async #acquire(): Promise<number> {
    const slot = this.#free.shift();
    if (slot !== undefined) return slot;
    return await new Promise((resolve) => this.#waiting.push(resolve));
  }

  #release(slot: number): void {
    const next = this.#waiting.shift();
    if (next !== undefined) next(slot);
    // first out next time: a pool used one run at a time keeps to one slot (and namespace)
    else this.#free.unshift(slot);
  }

  /**
   * Runs one submission (see `grade()` for the options and the result). Bad options reject
   * with a `TypeError` or `RangeError` before anything runs; anything that goes wrong in the
   * grader afterwards is an `XX` result, never a rejection.
   */
  grade(options: GradeOptions): Promise<GradeResult> {
    if (this.#closed) {
      return Promise.reject(new TypeError("Cannot grade: the pool is closed"));
    }
    let plan;
    try {
      plan = planGrade(options);
    } catch (e) {
      return Promise.reject(e);
    }
    const p = this.#run(plan);
    this.#active.add(p);
    p.finally(() => this.#active.delete(p)).catch(() => {});
    return p;
  }

  async #run(plan: ReturnType<typeof planGrade>): Promise<GradeResult> {
    this.#shared ??= this.#init();
    let shared: Shared;
    try {
      shared = await this.#shared;
    } catch (e) {
      this.#shared = null;
      return failedResult(`Cannot prepare the grader: ${(e as Error).message}`);
    }
    const index = await this.#acquire();
    try {
      let netns: OwnedFd | null = null;
      // Only a run under the pool's own filter may share (see reuseNetworkNamespace).
      if (this.#reuseNetns && plan.seccomp === null) {
        netns = this.#netns.get(index) ?? null;
        if (netns === null) {
          netns = emptyNetns();
          this.#netns.set(index, netns);
        }
      }
      let cpu: SlotCpuGroup | null = null;
      if (shared.cgroup.version === 1) {
        cpu = this.#cpu.get(index) ?? null;
        if (cpu === null) {
          cpu = new SlotCpuGroup(shared.cgroup, `slot-${index}`);
          this.#cpu.set(index, cpu);
        }
      }
      const slot: Slot = {
        uid: this.#uidBase + index,
        gid: this.#uidBase + index,
        netns,
        parent: shared.cgroup,
        cpu,
        name: `run-${++this.#runs}`,
        hardening: shared.hardening,
        maskedPaths: shared.maskedPaths,
        root: shared.root,
        turn: this.#turn,
      };
      return await runPlan(plan, slot);
    } catch (e) {
      return failedResult((e as Error).message);
    } finally {
      const cpu = this.#cpu.get(index);
      if (cpu?.spoiled) {
        this.#cpu.delete(index);
        // killed and removed now; the pool's own removal would also catch it
        await cpu[Symbol.asyncDispose]().catch(() => {});
      }
      this.#release(index);
    }
  }

  /** Waits for the runs under way, then removes the pool's cgroups and namespaces. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.allSettled([...this.#active]);
    for (const fd of this.#netns.values()) fd.close();
    this.#netns.clear();
    const shared = this.#shared;
    this.#shared = null;
    if (shared === null) return;
    const s = await shared.catch(() => null);
    if (s === null) return;
    try {
      s.root?.close();
      for (const cpu of this.#cpu.values()) {
        await cpu[Symbol.asyncDispose]().catch(() => {});
      }
      this.#cpu.clear();
      await s.cgroup.destroy();
    } finally {
      await s.watchdogStdin.close().catch(() => {});
      // unref'd so that a forgotten pool never keeps this process alive; waited for here
      s.watchdog.ref();
      await s.watchdog.status;
    }
  }

  /** Same as `close()`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
