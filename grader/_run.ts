/**
 * One run, start to finish: a fresh cgroup with the limits, a fresh tmpfs work directory,
 * the sandbox, the CPU/wall watch, output capture, figures, copy-out, cleanup, and the check
 * that nothing of the run is left. Every failure of the grader itself ends as `XX`.
 * @module
 */
import { Cgroup, counters } from "denobox/cgroup";
import { type Hardening, type RootTemplate, spawn } from "denobox/sandbox";
import {
  open,
  OpenFlag,
  type OwnedFd,
  type SignalName,
  SyscallError,
} from "denobox/libc";
import type { GradePlan } from "./_options.ts";
import { type CaptureSink, OutputCapture } from "./_capture.ts";
import { CpuClock, type SlotCpuGroup } from "./_cpuclock.ts";
import { WorkDir } from "./_workdir.ts";
import { decideVerdict, type KillReason } from "./_verdict.ts";
import type { GradeResult, OutputTarget } from "./types.ts";

/** What a pool lends a run: its identity and reusable pieces. */
export interface Slot {
  /** Host uid and gid the program runs as. */
  uid: number;
  gid: number;
  /** An empty network namespace kept by the pool, or null for a fresh one per run. */
  netns: OwnedFd | null;
  /** The pool's cgroup; the run's group is made below it. */
  parent: Cgroup;
  /**
   * The slot's CPU accounting group, kept across its runs (cgroup v1), or null: the run's
   * own group then counts CPU time too.
   */
  cpu: SlotCpuGroup | null;
  /** A unique name for the run's cgroup. */
  name: string;
  /** The default hardening (its seccomp filter is used). */
  hardening: Hardening;
  /** The paths to mask inside (see `boxMaskedPaths`). */
  maskedPaths: readonly string[];
  /** The pool's prepared root, or null for spawn()'s host view per run. */
  root: RootTemplate | null;
  /**
   * The pool's turn to run a program: taken right before the sandbox is made, given back
   * once every process of it is gone. Preparing a run (its cgroup, work directory) and
   * cleaning up after it happen outside, so they overlap other runs' programs.
   */
  turn: Turn;
}

/** A counting gate: at most N holders at once. */
export interface Turn {
  /** Resolves once this caller holds a turn. */
  take(): Promise<void>;
  /** Gives a turn back. */
  give(): void;
}

/** Every capability bit (a bounding set left untouched). */
const ALL_CAPABILITIES = (1n << 64n) - 1n;

const round3 = (s: number) => Math.round(s * 1000) / 1000;
const NCPU = Math.max(1, navigator.hardwareConcurrency);
/** Longest pause between two CPU-time checks (ms); near a limit the pause shrinks to 1 ms. */
const MAX_POLL_MS = 100;
/** Promise steps from giving a turn back to the next run's clone(), with room to spare. */
const HANDOFF_STEPS = 12;
/** How long the output pipes may stay open after every process is gone (ms). */
const DRAIN_MS = 5000;

function sinkFor(
  target: OutputTarget,
  files: Deno.FsFile[],
): Promise<CaptureSink> | CaptureSink {
  if (target === "capture") return { kind: "memory" };
  if (target === "discard") return { kind: "discard" };
  return Deno.open(target.path, { write: true, create: true, truncate: true })
    .then((file) => {
      files.push(file);
      return { kind: "file", file } as const;
    });
}

/** A result for a run the grader could not carry out. */
export function failedResult(message: string): GradeResult {
  return {
    status: "XX",
    timeout: null,
    message,
    exitCode: null,
    signal: null,
    killed: false,
    cpuTime: 0,
    userTime: 0,
    sysTime: 0,
    wallTime: 0,
    memoryPeak: 0,
    maxRss: 0,
    oomKilled: false,
    outputTruncated: false,
    stdout: null,
    stderr: null,
    outputBytes: { stdout: 0, stderr: 0 },
    files: {},
    voluntarySwitches: null,
    involuntarySwitches: null,
  };
}

/**
 * The user and system parts of `cpu`: the kernel counts the total exactly but splits it by
 * sampling, so the split is scaled to add up to the total. The split is the cgroup's, not the
 * sandbox's rusage: a process whose parent ignores SIGCHLD is reaped without adding its times
 * to the parent's, so rusage can miss processes of the run; the cgroup counts every one.
 */
function splitCpu(
  cpu: number,
  user: number,
  system: number,
): { userTime: number; sysTime: number } {
  const sum = user + system;
  const userTime = sum > 0 ? round3((cpu * user) / sum) : round3(cpu);
  return { userTime, sysTime: Math.max(0, round3(round3(cpu) - userTime)) };
}

/**
 * The controllers of a run's cgroup (and the pool's): on v1 only the hierarchies that limit or
 * measure a run are used, since each is a directory to make, a migration at the join and a
 * directory to remove. Processes and threads are counted by RLIMIT_NPROC instead of a pids
 * group: the kernel counts every task of the run's uid, which belongs to its slot alone (no
 * two runs under way share one) and to nothing else of the host.
 */
export const RUN_CONTROLLERS = ["memory", "cpuacct"] as const;

/**
 * The cgroup counters a run's figures come from besides the CPU clock: three files on v1
 * (cpuacct.usage_all, memory.max_usage_in_bytes, memory.oom_control) and on v2.
 */
const CPU_COUNTERS = ["cpu.user", "cpu.system"] as const;
const MEMORY_COUNTERS = ["memory.peak", "memory.oomKills"] as const;
const RUN_COUNTERS = [...CPU_COUNTERS, ...MEMORY_COUNTERS] as const;

let swapAccounting = true;

/**
 * The run's cgroup: fresh, so no charge or counter of an earlier run is in it, with its limits
 * (memory with no swap on top, or just memory where swap is not accounted) written as it is
 * made, with no read first. With a slot CPU group (v1), only the memory hierarchy.
 */
function createRunGroup(plan: GradePlan, slot: Slot): Cgroup {
  const create = (noSwap: boolean) =>
    Cgroup.create(slot.name, {
      parent: slot.parent,
      controllers: slot.cpu === null ? RUN_CONTROLLERS : ["memory"],
      limits: {
        memory: noSwap ? { max: plan.memoryLimit, swap: 0 } : plan.memoryLimit,
      },
    });
  if (swapAccounting) {
    try {
      return create(true);
    } catch (e) {
      // v1 without swapaccount=1 has no memsw files (v2 without swap accounting no
      // memory.swap.max); with no swap there is nothing to forbid. The failed group is gone.
      if (
        !(e instanceof SyscallError && e.code === "ENOENT" &&
          /\/memory\.(memsw\.limit_in_bytes|swap\.max)$/.test(e.path ?? ""))
      ) throw e;
      swapAccounting = false;
    }
  }
  return create(false);
}

const errText = (e: unknown) => e instanceof Error ? e.message : String(e);

/**
 * The pool's root template when every mount target of the run is an empty directory of it
 * (it is read-only: nothing can be made in it), else null (spawn()'s own host view).
 */
function preparedRoot(
  plan: GradePlan,
  root: RootTemplate | null,
): RootTemplate | null {
  if (root === null || !root.mountPoints.has(plan.workDir)) return null;
  for (const d of plan.dirs) if (!root.mountPoints.has(d.inside)) return null;
  return root;
}

/** Runs `plan` in `slot`; never throws: a failure of the grader is an `XX` result. */
export async function runPlan(
  plan: GradePlan,
  slot: Slot,
): Promise<GradeResult> {
  const cleanups: (() => unknown)[] = [];
  const cleanupErrors: string[] = [];
  const held = { turn: false };
  let result: GradeResult;
  try {
    result = await runInside(plan, slot, cleanups, held);
  } catch (e) {
    result = failedResult(errText(e));
  }
  for (const fn of cleanups.reverse()) {
    try {
      await fn();
    } catch (e) {
      cleanupErrors.push(errText(e));
    }
  }
  // a process of the run may be left in the slot's CPU group: never reused
  if (cleanupErrors.length > 0) slot.cpu?.spoil();
  // a run that failed while its program ran gives its turn back only now, when its
  // sandbox is surely gone
  if (held.turn) slot.turn.give();
  // The guarantee: nothing of the run is left. Checked, not assumed: the cgroup's destroy()
  // resolves only once rmdir(2) succeeded for each of its directories (the kernel refuses it
  // while a process or a sub-group is in it), and otherwise its error is reported here.
  if (cleanupErrors.length > 0) {
    const msg = `Cleanup failed: ${cleanupErrors.join("; ")}`;
    result = {
      ...result,
      status: "XX",
      timeout: null,
      message: result.status === "XX" ? `${result.message}; ${msg}` : msg,
    };
  }
  return result;
}

async function runInside(
  plan: GradePlan,
  slot: Slot,
  cleanups: (() => unknown)[],
  held: { turn: boolean },
): Promise<GradeResult> {
  const cg = createRunGroup(plan, slot);
  cleanups.push(() => cg.destroy());
  let clock: CpuClock;
  if (slot.cpu !== null) {
    // empty: the slot's previous run is gone with its memory group (see SlotCpuGroup)
    slot.cpu.reset();
    clock = slot.cpu.clock;
  } else {
    const own = clock = new CpuClock(cg);
    cleanups.push(() => own[Symbol.dispose]());
  }

  const work = new WorkDir(plan.workDirSize, slot.uid, slot.gid);
  cleanups.push(() => work[Symbol.dispose]());
  await work.copyIn(plan.files);

  let stdinFd: OwnedFd | null = null;
  if ("path" in plan.stdin) {
    stdinFd = open(plan.stdin.path, { flags: OpenFlag.O_RDONLY });
    const fd = stdinFd;
    cleanups.push(() => fd.close());
  }
  const files: Deno.FsFile[] = [];
  cleanups.push(() => files.forEach((f) => f.close()));
  const outCap = new OutputCapture(
    plan.outputLimit,
    await sinkFor(plan.stdout, files),
  );
  const errCap = new OutputCapture(
    plan.outputLimit,
    await sinkFor(plan.stderr, files),
  );

  const cpuBackstop = plan.timeLimit === null
    ? undefined
    : Math.ceil(plan.timeLimit + plan.extraTime) + 1;
  // `false` must reach spawn() as is: there, an absent filter means the default one.
  const seccomp = plan.seccomp === false
    ? false
    : plan.seccomp ?? slot.hardening.seccomp;

  // Wall time starts when the run's turn comes, right before the sandbox is made, so it never
  // misses a moment of the program (it includes the child's set-up, as the CPU time does).
  let t0 = 0;
  const rootfs = plan.rootfs ?? preparedRoot(plan, slot.root);
  const sandbox = await spawn({
    // built while other programs run; started on the run's turn
    beforeStart: async () => {
      await slot.turn.take();
      held.turn = true;
      t0 = performance.now();
    },
    argv: plan.argv,
    env: plan.env,
    cwd: plan.cwd,
    ...(rootfs === null ? {} : { rootfs }),
    readOnly: true,
    hostname: "box",
    namespaces: {
      user: false,
      mnt: true,
      pid: true,
      ipc: true,
      uts: true,
      cgroup: true,
      // no use to a run (the figures are taken outside), and one more namespace per run
      time: false,
      net: slot.netns === null
        ? true
        : { path: `/proc/self/fd/${slot.netns.fd}` },
    },
    mounts: [
      // this tmpfs itself, attached (no copy of it, so every kernel allows it)
      { type: "detached", fd: work.fd, target: plan.workDir },
      { type: "tmpfs", target: "/tmp", size: plan.workDirSize, mode: 0o1777 },
      {
        type: "tmpfs",
        target: "/dev/shm",
        size: plan.workDirSize,
        mode: 0o1777,
      },
      ...plan.dirs.map((d) => ({
        type: "bind" as const,
        source: d.outside,
        target: d.inside,
        readOnly: !d.rw,
      })),
    ],
    maskedPaths: slot.maskedPaths,
    // The default read-only paths (/proc/sys, /proc/sysrq-trigger...) are writable by root
    // only, and the program runs as an unprivileged uid without capabilities.
    readonlyPaths: [],
    user: { uid: slot.uid, gid: slot.gid, groups: [] },
    rlimits: {
      ...(cpuBackstop === undefined
        ? {}
        : { cpu: { soft: cpuBackstop, hard: cpuBackstop + 1 } }),
      // tasks of the run's uid (see RUN_CONTROLLERS); the init, as root, is not counted
      nproc: plan.processLimit,
      fsize: plan.fileSizeLimit,
      nofile: plan.openFilesLimit,
      stack: plan.stackLimit,
      core: 0,
      memlock: 0,
    },
    noNewPrivs: true,
    parentDeathSignal: "SIGKILL",
    newSession: true,
    stdin: stdinFd !== null
      ? stdinFd.fd
      : "data" in plan.stdin && plan.stdin.data.length === 0
      ? "null"
      : "pipe",
    stdout: "pipe",
    stderr: "pipe",
    cgroup: slot.cpu === null
      ? cg
      : { paths: [...cg.paths, ...slot.cpu.group.paths] },
    seccomp,
    // No capability at all, and none to be had: the program runs as an unprivileged uid with
    // no_new_privs, so no execve can grant one (setuid bits and file capabilities are
    // ignored), and a user namespace it might make starts with a full set whatever the
    // bounding set is. Clearing the bounding set would change nothing it can do, and costs
    // ~40 prctl(PR_CAPBSET_DROP) per run (about 5% of a run's CPU time): it is left as is.
    capabilities: {
      bounding: ALL_CAPABILITIES,
      effective: 0n,
      permitted: 0n,
      inheritable: 0n,
    },
  });
  cleanups.push(() => sandbox[Symbol.asyncDispose]());
  stdinFd?.close();

  let killedFor: KillReason | null = null;
  let oomKillsBeforeKill = 0;
  let overflowStream: "stdout" | "stderr" | null = null;
  let finished = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const stop = (reason: KillReason) => {
    if (killedFor !== null || finished) return;
    killedFor = reason;
    try {
      oomKillsBeforeKill = counters(cg, ["memory.oomKills"])["memory.oomKills"];
    } catch { /* read again at the end */ }
    sandbox.kill("SIGKILL");
  };

  // Standard input: the bytes, then end of file; a program that stops reading is fine.
  let feeding: Promise<void> = Promise.resolve();
  if (sandbox.stdin !== null) {
    const data = "data" in plan.stdin ? plan.stdin.data : new Uint8Array(0);
    const w = sandbox.stdin.getWriter();
    feeding = (async () => {
      try {
        if (data.length > 0) await w.write(data);
        await w.close();
      } catch { /* EPIPE: the program closed its stdin or ended */ }
    })();
  }
  // Read with the sandbox's own reader (cheaper than its Web streams); the pipes it leaves
  // open on an overflow are closed when the sandbox is released.
  let pumped = false;
  const pumps = Promise.all([
    outCap.pump(() => sandbox.read("stdout"), () => {
      overflowStream ??= "stdout";
      stop("output");
    }),
    errCap.pump(() => sandbox.read("stderr"), () => {
      overflowStream ??= "stderr";
      stop("output");
    }),
  ]).then(() => {
    pumped = true;
  });

  // The time watch. CPU time cannot grow faster than NCPU seconds per second, so sleeping
  // (left / NCPU) never oversleeps a limit; the pause shrinks as the limit nears.
  const cpuEnd = plan.timeLimit === null
    ? Infinity
    : plan.timeLimit + plan.extraTime;
  const wallEnd = plan.wallTimeLimit + plan.extraTime;
  const tick = () => {
    timer = undefined;
    if (finished || killedFor !== null) return;
    const wall = (performance.now() - t0) / 1000;
    if (wall >= wallEnd) return stop("wall");
    let cpuLeft = Infinity;
    if (cpuEnd !== Infinity) {
      const cpu = clock.read();
      if (cpu >= cpuEnd) return stop("cpu");
      cpuLeft = (cpuEnd - cpu) / NCPU;
    }
    const wait = Math.min(cpuLeft * 1000, (wallEnd - wall) * 1000, MAX_POLL_MS);
    timer = setTimeout(tick, Math.max(1, Math.ceil(wait)));
  };
  tick();
  const onAbort = () => stop("abort");
  plan.signal?.addEventListener("abort", onAbort);
  if (plan.signal?.aborted) stop("abort");

  const status = await sandbox.status;
  const wallTime = (performance.now() - t0) / 1000;
  finished = true;
  if (timer !== undefined) clearTimeout(timer);
  plan.signal?.removeEventListener("abort", onAbort);

  // The first process (the sandbox's init) ended: the run is over. The kernel has killed
  // every other process of its pid namespace by now, which closes the output pipes; the
  // cgroup's removal (in the cleanup) checks that none is left.
  let drained = pumped;
  if (!drained) {
    let drainTimer: ReturnType<typeof setTimeout> | undefined;
    drained = await Promise.race([
      pumps.then(() => true),
      new Promise<false>((r) =>
        drainTimer = setTimeout(() => r(false), DRAIN_MS)
      ),
    ]);
    clearTimeout(drainTimer);
  }
  if (!drained) {
    throw new Error(
      "The output pipes stayed open after every process had ended",
    );
  }
  await feeding;
  // every process of the run is gone (its init ended, the pipes closed): the next program
  // may start while this run's figures are taken and its pieces removed
  held.turn = false;
  slot.turn.give();
  // The run that takes the turn clones its sandbox in a few promise steps (its program is
  // built): let it do so before this run's figures are read and its pieces removed.
  for (let i = 0; i < HANDOFF_STEPS; i++) await null;

  const cpuTime = clock.read();
  const st = slot.cpu === null ? counters(cg, RUN_COUNTERS) : {
    ...counters(cg, MEMORY_COUNTERS),
    ...counters(slot.cpu.group, CPU_COUNTERS),
  };
  const copied = await work.copyOut(plan.copyOut);
  const oomKills = st["memory.oomKills"];
  const signal = status.signal as SignalName | null;
  const v = decideVerdict({
    exitCode: status.code,
    signal,
    killedFor,
    overflowStream,
    oomKills,
    oomKillsBeforeKill: killedFor === null ? oomKills : oomKillsBeforeKill,
    cpuTime,
    wallTime,
    timeLimit: plan.timeLimit,
    wallTimeLimit: plan.wallTimeLimit,
    internalError: null,
  });
  return {
    status: v.status,
    timeout: v.timeout,
    message: v.message,
    exitCode: status.code,
    signal,
    killed: killedFor !== null,
    cpuTime: round3(cpuTime),
    ...splitCpu(cpuTime, st["cpu.user"], st["cpu.system"]),
    wallTime: round3(wallTime),
    memoryPeak: st["memory.peak"],
    maxRss: status.rusage.maxRss,
    oomKilled: oomKills > 0,
    outputTruncated: outCap.truncated || errCap.truncated,
    stdout: outCap.bytes(),
    stderr: errCap.bytes(),
    outputBytes: { stdout: outCap.kept, stderr: errCap.kept },
    files: copied,
    voluntarySwitches: status.rusage.voluntarySwitches,
    involuntarySwitches: status.rusage.involuntarySwitches,
  };
}
