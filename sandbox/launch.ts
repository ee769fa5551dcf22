import {
  ARCH,
  CArena,
  CloneFlag,
  cloneRoutine,
  fdAtLeast,
  NAMESPACE_FLAGS,
  type NamespaceName,
  OwnedFd,
  pidfdGetfd,
  pidfdOpen,
  pidfdSendSignal,
  pipe,
  readNonblocking,
  waitPidfd,
  write,
} from "denobox/libc";
import { reactor } from "./_reactor.ts";
import { initMemfd, routineBytes } from "./_init.ts";
import { type Program, recycleProgram, type StepResult } from "./program.ts";
import { SandboxSetupError } from "./errors.ts";
import { type Sandbox, SandboxHandle } from "./sandbox.ts";
import { mark } from "./_trace.ts";

/** What `setup` hooks get: the sandbox's first process, still waiting on its sync fd. */
export interface ChildInfo {
  /** Host pid. */
  pid: number;
  /** A pidfd for it. */
  pidfd: number;
}

/** A parent-side hook run while the child waits; what it returns is disposed after the reap. */
export type SetupHook = (
  child: ChildInfo,
) =>
  | Promise<void | Disposable | AsyncDisposable>
  | void
  | Disposable
  | AsyncDisposable;

/** Options of `launch()`. */
export interface LaunchOptions {
  /** Namespaces that clone() itself creates (names or CLONE_NEW* bits). */
  namespaces?: readonly NamespaceName[] | number;
  /**
   * Parent-side hooks run in order while the child waits: the program must contain
   * `p.syncPoint()`, placed where the child should wait.
   */
  setup?: readonly SetupHook[];
  /**
   * Run synchronously right after the clone, before anything else: the caller finishes the
   * program there while the child runs its first steps up to a gate it waits at (see
   * `spawn()`'s early start). If it throws, the child is killed and `launch()` rejects.
   */
  afterClone?: () => void;
  /**
   * Run right after the clone, while the child sets itself up (nothing waits for it: the
   * command may start before it ends). `launch()` resolves once the command started and the
   * hook ended; if the hook throws, the child is killed and `launch()` rejects with that error.
   */
  whileStarting?: SetupHook;
  /**
   * The program execs the sandbox's init (`appendInitTail`), whose vforked child runs the
   * steps from `Program.setInitEntry` on.
   */
  init?: boolean;
  /**
   * Where a `Program.forkSibling` step stores its sibling's pid: that process, our child too
   * (CLONE_PARENT), becomes the sandbox (its `pid`, `pidfd` and status), and the first
   * process, which only exits after the fork, is reaped here. Sync points after the fork are
   * the sibling's.
   */
  sibling?: bigint;
}

/** Parent-side pieces `spawn()` hands over (stdio ends, fds to close after clone). */
export interface LaunchExtras {
  /** Fds the child inherits and the parent closes after clone. */
  childFds?: OwnedFd[];
  /** Our end of the child's stdin pipe, handed out as `sandbox.stdin`. */
  stdin?: OwnedFd | null;
  /** Our end of the child's stdout pipe, handed out as `sandbox.stdout`. */
  stdout?: OwnedFd | null;
  /** Our end of the child's stderr pipe, handed out as `sandbox.stderr`. */
  stderr?: OwnedFd | null;
  /** A pty master opened here, handed out as `sandbox.pty`. */
  pty?: OwnedFd | null;
  /** Disposed after the reap (or on failure). */
  cleanup?: AsyncDisposableStack;
  /**
   * A pty master the program opened inside the sandbox (this step's result is its fd there):
   * taken with pidfd_getfd at the program's last sync point (after the `setup` hooks' one).
   */
  ptyFrom?: StepResult | (() => StepResult);
  /** Hint added to errors of a given step label prefix. */
  hints?: (step: string, code: string) => string | undefined;
}

let code: CArena | null = null;

function routine(): CArena {
  if (code) return code;
  const bytes = routineBytes(ARCH);
  const c = new CArena(bytes.length);
  c.bytes.set(bytes);
  c.makeExecutable();
  code = c;
  return c;
}

const STACK_SIZE = 16384;
/** Child stacks kept for the next launches (a child leaves its stack at its exec). */
const spareStacks: CArena[] = [];
const MAX_SPARE_STACKS = 8;

/**
 * Starts `program` in a new process made by clone(): the machine-code routine runs its steps
 * (no JS runs in the child) and ends in execve. Resolves once the command runs; a failing step
 * rejects with a `SandboxSetupError` naming it. The program is owned (and freed) from here on.
 *
 * @example A hand-built container (root; see examples/minimal_container.ts)
 * ```ts ignore
 * import { launch, Program } from "denobox/sandbox";
 * const p = new Program();
 * p.sethostname("box");
 * p.execve("/bin/hostname", ["hostname"], {});
 * await using box = await launch(p, { namespaces: ["uts"] });
 * console.log((await box.status).code); // 0 (it printed "box")
 * ```
 */
export async function launch(
  program: Program,
  options: LaunchOptions = {},
  extras: LaunchExtras = {},
): Promise<Sandbox> {
  if (program.arch !== ARCH) {
    program[Symbol.dispose]();
    throw new TypeError(`Cannot launch a ${program.arch} program on ${ARCH}`);
  }
  const cleanup = extras.cleanup ?? new AsyncDisposableStack();
  const parentOwned: OwnedFd[] = [];
  const own = <T extends OwnedFd | null | undefined>(fd: T): T => {
    if (fd) parentOwned.push(fd);
    return fd;
  };
  let childFds = extras.childFds ?? [];
  let stack: CArena | null = null;
  let memoryFreed = false;
  /**
   * The program's memory and the child's stack, once the child left them (it exec'd or is
   * gone). Both are kept for the next launch; the program's only after `initGone` when an
   * init maps it in its own address space too.
   */
  const freeMemory = (initGone: Promise<unknown> | null = null) => {
    if (memoryFreed) return;
    memoryFreed = true;
    if (initGone === null) recycleProgram(program);
    else {
      const done = () => recycleProgram(program);
      initGone.then(done, done);
    }
    if (stack !== null) {
      if (spareStacks.length < MAX_SPARE_STACKS) spareStacks.push(stack);
      else stack[Symbol.dispose]();
    }
  };
  let pid = -1;
  let pidfd: OwnedFd | null = null;
  let control: OwnedFd | null = null;
  // the successor made by a forkSibling step: known once the kernel stored its pid
  let sibling: { pid: number; pidfd: OwnedFd } | null = null;
  const takeSibling = () => {
    if (sibling || options.sibling === undefined || memoryFreed) return sibling;
    const n = program.siblingPid(options.sibling);
    // our child until we reap it through this pidfd: the pid cannot be reused meanwhile
    if (n > 0) sibling = { pid: n, pidfd: pidfdOpen(n) };
    return sibling;
  };
  const current = (): ChildInfo => {
    const s = takeSibling();
    return s ? { pid: s.pid, pidfd: s.pidfd.fd } : { pid, pidfd: pidfd!.fd };
  };
  try {
    const ctl = pipe();
    control = own(ctl.read);
    const ctlWrite = fdAtLeast(ctl.write, 5);
    childFds = [...childFds, ctlWrite];
    program.setHeaderFd("control", ctlWrite.fd);
    const hooks = options.setup ?? [];
    let syncWrite: OwnedFd | null = null;
    let pty = extras.pty ?? null;
    const rounds: ((child: ChildInfo) => Promise<void>)[] = [];
    if (hooks.length > 0) {
      rounds.push(async (child) => {
        for (const hook of hooks) {
          const r = await hook(child);
          if (r && Symbol.asyncDispose in r) cleanup.use(r as AsyncDisposable);
          else if (r && Symbol.dispose in r) cleanup.use(r as Disposable);
        }
      });
    }
    if (extras.ptyFrom) {
      const from = extras.ptyFrom;
      rounds.push((child) => {
        const at = program.memory.offsetOf(
          (typeof from === "function" ? from() : from).address,
        );
        const fd = Number(program.memory.view.getBigInt64(at, true));
        pty = own(pidfdGetfd(child.pidfd, fd));
        return Promise.resolve();
      });
    }
    if (rounds.length > 0) {
      const s = pipe();
      const r = fdAtLeast(s.read, 5);
      syncWrite = own(fdAtLeast(s.write, 5));
      childFds.push(r);
      program.setHeaderFd("syncRead", r.fd);
      program.setHeaderFd("syncWrite", syncWrite.fd);
    }
    if (options.init) program.setHeaderFd("initMemfd", initMemfd());
    for (const f of [extras.stdin, extras.stdout, extras.stderr, pty]) {
      own(f);
    }

    const ns = typeof options.namespaces === "number"
      ? options.namespaces
      : (options.namespaces ?? []).reduce((f, n) => f | NAMESPACE_FLAGS[n], 0);
    const flags = ns | CloneFlag.CLONE_VM | CloneFlag.CLONE_PIDFD |
      17 /* SIGCHLD */;
    mark("launch: pipes and header");
    stack = spareStacks.pop() ?? new CArena(STACK_SIZE, { stack: true });
    const slot = program.alloc(8);
    try {
      pid = cloneRoutine({
        code: routine(),
        entry: 0,
        stack,
        arg: program.memory,
        flags,
        pidfdAddress: slot,
      });
    } catch (e) {
      const errno = (e as { errno?: number }).errno ?? 22;
      const step = `clone(${nsNames(ns)})`;
      throw new SandboxSetupError({
        step,
        errno,
        hint: extras.hints?.(step, (e as { code?: string }).code ?? "") ??
          cloneHint(ns, errno),
      });
    }
    pidfd = new OwnedFd(
      Number(program.memory.view.getInt32(program.memory.offsetOf(slot), true)),
    );
    for (const f of childFds) f.close();
    childFds = [];
    mark("launch: clone");
    options.afterClone?.();
    // the caller's work, done while the child works (its synchronous part runs right here)
    let started: Promise<void> | null = null;
    if (options.whileStarting) {
      const hook = options.whileStarting;
      const child = { pid, pidfd: pidfd.fd };
      started = (async () => {
        const r = await hook(child);
        if (r && Symbol.asyncDispose in r) cleanup.use(r as AsyncDisposable);
        else if (r && Symbol.dispose in r) cleanup.use(r as Disposable);
      })();
      // a failure is taken below, after the child's own outcome
      started.catch(() => {});
    }
    try {
      // parent-side rounds, each once the child waits at a sync point ({0, -3} on the control
      // pipe): the setup hooks, then taking the pty master
      if (syncWrite) {
        try {
          for (const round of rounds) {
            await reactor.readable(control.fd);
            const ready = readNonblocking(control.fd, 16) ?? new Uint8Array(0);
            checkRecord(program, ready, extras);
            if (ready.length !== 16) {
              throw new SandboxSetupError({
                step: "sync",
                errno: 4,
                hint: "the sandbox exited before its sync point",
              });
            }
            await round(current());
            write(syncWrite.fd, new Uint8Array([1]));
          }
        } finally {
          syncWrite.close();
        }
      }

      // first record on the control pipe: an error {errno, step}, "started" {0, -1}, or EOF
      await reactor.readable(control.fd);
      const rec = readNonblocking(control.fd, 16) ?? new Uint8Array(0);
      checkRecord(program, rec, extras);
      if (rec.length !== 16 && options.init) {
        throw new SandboxSetupError({
          step: "init",
          errno: 4,
          hint: "the sandbox was killed while starting",
        });
      }
    } catch (e) {
      // the caller's failure comes first: it may explain the child's
      if (started) await started;
      throw e;
    }
    if (started) await started;
    mark("launch: child started (control record)");
    if (options.sibling !== undefined) {
      // the first process exits right after the fork: reap it, then the sibling is the sandbox
      await reapNow(pidfd);
      pidfd = null;
      const s = takeSibling();
      if (!s) {
        throw new SandboxSetupError({
          step: "clone(CLONE_PARENT)",
          errno: 10,
          hint: "the sandbox's first process exited before it forked",
        });
      }
      sibling = null;
      pid = s.pid;
      pidfd = s.pidfd;
    }
    if (!options.init) {
      control.close();
      control = null;
    }
    const handle = new SandboxHandle({
      pid,
      pidfd,
      control,
      stdin: extras.stdin ?? null,
      stdout: extras.stdout ?? null,
      stderr: extras.stderr ?? null,
      pty,
      cleanup,
    });
    // the child now runs its own code: our program and stack are free (the program once
    // the init, which maps it too, is gone)
    freeMemory(options.init ? handle.status : null);
    mark("launch: handle built");
    return handle;
  } catch (e) {
    for (const f of childFds) f.close();
    if (sibling || (pidfd && options.sibling !== undefined)) {
      // the first process (if alive) and its sibling: once the first is gone, the pid slot
      // is final (the kernel fills it before the sibling runs)
      if (pidfd) {
        try {
          pidfdSendSignal(pidfd.fd, "SIGKILL");
        } catch { /* gone already */ }
        await reapNow(pidfd);
        pidfd = null;
      }
      const s = takeSibling();
      if (s) {
        pid = s.pid;
        pidfd = s.pidfd;
        sibling = null;
      }
    }
    if (pidfd) {
      try {
        pidfdSendSignal(pidfd.fd, "SIGKILL");
      } catch { /* gone already */ }
      // reap it so no zombie stays; the memory it may still use is freed after
      const h = new SandboxHandle({
        pid,
        pidfd,
        control,
        stdin: null,
        stdout: null,
        stderr: null,
        pty: null,
        cleanup,
      });
      control = null;
      await h.status.catch(() => {});
    } else {
      await cleanup.disposeAsync();
    }
    for (const f of parentOwned) f.close();
    freeMemory();
    throw e;
  }
}

/** Waits (without blocking the event loop) for a child of ours to exit, reaps it, closes its pidfd. */
async function reapNow(pidfd: OwnedFd): Promise<void> {
  try {
    while (true) {
      await reactor.readable(pidfd.fd);
      if (waitPidfd(pidfd.fd) !== null) return;
    }
  } finally {
    reactor.forget(pidfd.fd);
    pidfd.close();
  }
}

/** Throws the `SandboxSetupError` an error record {errno, step} on the control pipe stands for. */
function checkRecord(
  program: Program,
  rec: Uint8Array,
  extras: LaunchExtras,
): void {
  if (rec.length !== 16) return;
  const v = new DataView(rec.buffer, rec.byteOffset, 16);
  const a = Number(v.getBigInt64(0, true)), b = Number(v.getBigInt64(8, true));
  if (a <= 0) return;
  // -5: the init's own set-up (mapping the program, vforking the command)
  const step = b === -5 ? "init" : program.label(b);
  throw new SandboxSetupError({
    step,
    errno: a,
    path: b === -5 ? undefined : program.path(b),
    index: b,
    hint: extras.hints?.(step, "") ?? stepHint(step, a),
  });
}

function nsNames(flags: number): string {
  const names = Object.entries(NAMESPACE_FLAGS).filter(([, f]) => flags & f)
    .map(([n]) => n);
  return names.length ? names.join(",") : "no new namespaces";
}

function cloneHint(ns: number, errno: number): string | undefined {
  if (errno === 1 || errno === 13) {
    if (ns & CloneFlag.CLONE_NEWUSER) {
      return "user namespaces may be disabled: check sysctl user.max_user_namespaces and kernel.unprivileged_userns_clone";
    }
    if (ns) {
      return "new namespaces need root, or a user namespace (namespaces: { user: true })";
    }
  }
  if (errno === 28) {
    return "the namespace limit is reached (user.max_*_namespaces)";
  }
  return undefined;
}

function stepHint(step: string, errno: number): string | undefined {
  if (step.startsWith("execve(") && errno === 2) {
    return "the command was not found inside the sandbox";
  }
  if (step.startsWith("execve(") && errno === 13) {
    return "the command is not executable inside the sandbox (or its filesystem is noexec)";
  }
  if (step.startsWith("mount(") && errno === 1) {
    return "mounting needs CAP_SYS_ADMIN in the sandbox's user namespace";
  }
  if (step.startsWith("pivot_root(") && errno === 22) {
    return "the new root must be a mount point and not on a shared mount";
  }
  if (step === "ppoll(lifeline)") {
    return "the parent process exited while the sandbox was starting";
  }
  return undefined;
}
