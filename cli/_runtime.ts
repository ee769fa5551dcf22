/**
 * Running a container: the owner process (the detached monitor, or the CLI itself for a
 * foreground `run`) takes the container's monitor lock, makes its cgroup, root filesystem and
 * network, spawns the sandbox, records its state and output, waits, records the exit, and
 * releases everything. Nothing is left behind on any path: every resource is registered on
 * an AsyncDisposableStack the moment it exists.
 * @module
 */
import { join } from "node:path";
import type { SpawnOptions } from "denobox/sandbox";
import type { Store } from "./_store.ts";
import type { ContainerConfig } from "./_store.ts";
import { LogWriter } from "./_log.ts";
import { CliError, Exit } from "./_errors.ts";
import { attachRootfs, openImageStore, removeRuntimeDir } from "./_rootfs.ts";
import { signalNo } from "./_format.ts";
import { trace } from "./_trace.ts";

/** How the owner is connected to the user. */
export interface Attachment {
  /** Copy output to this process's stdout/stderr too (foreground). */
  foreground: boolean;
  /** Feed this process's stdin to the container (`-i`). */
  stdin: boolean;
  /** Called once the container runs (the detached monitor reports to its launcher here). */
  onStarted?: (pid: number) => void;
}

/** What happened. */
export interface RunOutcome {
  /** The exit status a shell reports: the code, 128 + signal, or 125/126/127 for set-up failures. */
  status: number;
}

/** The mount list of a container (bind volumes, tmpfs) in spawn's shape. */
function mountSpecs(
  config: ContainerConfig,
): NonNullable<SpawnOptions["mounts"]> {
  return config.mounts.map((m) =>
    m.type === "bind"
      ? {
        type: "bind" as const,
        source: m.source,
        target: m.target,
        readOnly: m.readOnly,
      }
      : {
        type: "tmpfs" as const,
        target: m.target,
        ...(m.size ? { size: m.size } : {}),
        ...(m.mode ? { mode: parseInt(m.mode, 8) } : {}),
      }
  );
}

function bridgeName(): string {
  return Deno.env.get("DENOBOX_BRIDGE") ?? "denobox0";
}

/**
 * Runs container `id` to its end as its owner. Returns the exit status; set-up failures are
 * recorded in the state and thrown as a `CliError` with Docker's status (125, 126, 127).
 */
export async function runAsOwner(
  store: Store,
  id: string,
  attach: Attachment,
): Promise<RunOutcome> {
  const monitorLock = store.tryMonitorLock(id);
  if (!monitorLock) {
    throw new CliError(`Container ${id.slice(0, 12)} is already running`);
  }
  const config = store.readConfig(id);
  if (!config) {
    monitorLock.release();
    throw new CliError(`No such container: ${id}`);
  }
  const paths = store.paths;
  let failure: CliError | null = null;
  let outcome: RunOutcome = { status: 0 };
  try {
    await using stack = new AsyncDisposableStack();
    trace("runAsOwner");
    const [{ spawn, SandboxSetupError }, cgroupMod] = await Promise.all([
      import("denobox/sandbox"),
      import("denobox/cgroup"),
    ]);
    trace("modules loaded");
    // cgroup (limits applied before any process joins)
    const limits: import("denobox/cgroup").CgroupLimits = {};
    if (config.memory !== null) limits.memory = { max: config.memory, swap: 0 };
    if (config.cpus !== null) limits.cpu = { cpus: config.cpus };
    if (config.pidsLimit !== null) limits.pids = config.pidsLimit;
    let cg: import("denobox/cgroup").Cgroup;
    try {
      cg = cgroupMod.Cgroup.create(`ctr-${id.slice(0, 32)}`, { limits });
    } catch (e) {
      if ((e as { code?: string }).code !== "EEXIST") throw e;
      // left by an owner that died: empty it and start afresh
      await cgroupMod.Cgroup.open(`ctr-${id.slice(0, 32)}`).destroy();
      cg = cgroupMod.Cgroup.create(`ctr-${id.slice(0, 32)}`, { limits });
    }
    stack.defer(async () => {
      await cg.destroy();
      store.updateState(id, { cgroup: null });
    });
    store.updateState(id, { cgroup: [...cg.paths] });

    trace("cgroup created");
    // root filesystem
    let rootfs: string | undefined;
    if (config.image) {
      const images = await openImageStore(paths);
      const image = await images.resolve(config.imageId ?? config.image);
      const r = stack.use(await attachRootfs(paths, id, image));
      stack.defer(() => removeRuntimeDir(paths, id));
      rootfs = r.path;
      store.updateState(id, { rootfsMount: r.path });
      stack.defer(() => {
        store.updateState(id, { rootfsMount: null });
      });
    } else if (config.rootfs) rootfs = config.rootfs;

    // network
    let setup: SpawnOptions["setup"];
    let ip: string | null = null;
    if (config.network === "bridge") {
      const { networkSetup } = await import("denobox/net");
      const hook = networkSetup({
        bridge: bridgeName(),
        ...(Deno.env.get("DENOBOX_SUBNET")
          ? { subnet: Deno.env.get("DENOBOX_SUBNET")! }
          : {}),
        stateDir: join(paths.run, "net"),
        nat: Deno.env.get("DENOBOX_NAT") !== "0",
        ports: config.ports.map((p) => ({
          hostPort: p.host,
          containerPort: p.container,
          protocol: p.protocol,
          ...(p.hostIp ? { hostIp: p.hostIp } : {}),
        })),
      });
      setup = async (child) => {
        const att = await hook(child);
        ip = att.address;
        return att;
      };
    }

    trace("rootfs and network prepared");
    const hardening = await containerHardening(config);

    // /proc entries the kernel lacks (no CONFIG_MAGIC_SYSRQ: no /proc/sysrq-trigger) cannot be
    // made read-only; they cannot be written either
    const readonlyPaths = hardening.readonlyPaths.filter((p) =>
      !p.startsWith("/proc/") || exists(p)
    );
    const env = { HOSTNAME: config.hostname, HOME: "/root", ...config.env };
    const tty = config.tty;
    const size = tty && attach.foreground
      ? terminalSize()
      : { rows: 24, cols: 80 };
    const options: SpawnOptions = {
      argv: config.argv,
      env,
      cwd: config.workdir,
      ...(rootfs !== undefined ? { rootfs } : {}),
      readOnly: config.readOnly || rootfs === undefined,
      hostname: config.hostname,
      namespaces: {
        user: paths.rootless,
        mnt: true,
        pid: true,
        uts: true,
        ipc: true,
        net: config.network !== "host",
        cgroup: true,
      },
      mounts: mountSpecs(config),
      ...(config.user
        ? { user: { uid: config.user.uid, gid: config.user.gid } }
        : {}),
      rlimits: config.ulimits,
      cgroup: cg,
      ...(setup ? { setup } : {}),
      ...hardening,
      readonlyPaths,
      ...(tty ? { pty: size } : {
        stdin: attach.stdin ? "pipe" as const : "null" as const,
        stdout: "pipe" as const,
        stderr: "pipe" as const,
      }),
    };
    trace("hardening compiled");
    const log = stack.use(await LogWriter.open(join(store.dir(id), "ctr.log")));
    let sandbox: import("denobox/sandbox").Sandbox;
    try {
      sandbox = await spawn(options);
    } catch (e) {
      if (e instanceof SandboxSetupError) {
        const isExec = /^execve?\b/.test(e.step);
        const code = isExec && e.code === "ENOENT" ? Exit.NOT_FOUND : isExec &&
            ["EACCES", "ENOEXEC", "EISDIR", "ENOTDIR", "ELOOP"].includes(
              e.code,
            )
          ? Exit.CANNOT_EXECUTE
          : Exit.FAILED;
        const msg = code === Exit.NOT_FOUND
          ? `Cannot run ${
            JSON.stringify(config.argv[0])
          } in container ${config.name}: ` +
            `executable file not found (${e.message})`
          : `Cannot start container ${config.name}: ${e.message}`;
        store.updateState(id, {
          status: "exited",
          exitCode: code,
          error: msg,
          startedAt: new Date().toISOString(),
          finishedAt: new Date().toISOString(),
        });
        throw new CliError(msg, code, { cause: e });
      }
      throw e;
    }
    trace("spawned");
    stack.use(sandbox);
    await Deno.remove(store.pausedMarker(id)).catch(() => {/* not paused */});
    store.updateState(id, {
      status: "running",
      pid: sandbox.pid,
      monitorPid: Deno.pid,
      startedAt: new Date().toISOString(),
      finishedAt: null,
      exitCode: null,
      signal: null,
      error: null,
      oomKilled: false,
      ip,
    });
    attach.onStarted?.(sandbox.pid);

    const pumps: Promise<void>[] = [];
    let restoreTerminal: (() => void) | null = null;
    if (sandbox.pty) {
      const pty = sandbox.pty;
      const out = attach.foreground ? Deno.stdout : null;
      pumps.push(pump(pty.readable, async (c) => {
        await log.write("stdout", c);
        if (out) await writeAll(out, c);
      }));
      if (attach.foreground) {
        if (Deno.stdin.isTerminal()) {
          Deno.stdin.setRaw(true, { cbreak: false });
          restoreTerminal = () => Deno.stdin.setRaw(false);
          const onWinch = () => {
            const s = terminalSize();
            try {
              pty.resize(s.rows, s.cols);
            } catch { /* exited */ }
          };
          Deno.addSignalListener("SIGWINCH", onWinch);
          stack.defer(() => Deno.removeSignalListener("SIGWINCH", onWinch));
        }
        if (attach.stdin) forwardStdin(pty.writable);
      }
    } else {
      if (sandbox.stdout) {
        pumps.push(pump(sandbox.stdout, async (c) => {
          await log.write("stdout", c);
          if (attach.foreground) await writeAll(Deno.stdout, c);
        }));
      }
      if (sandbox.stderr) {
        pumps.push(pump(sandbox.stderr, async (c) => {
          await log.write("stderr", c);
          if (attach.foreground) await writeAll(Deno.stderr, c);
        }));
      }
      if (sandbox.stdin) {
        if (attach.stdin && attach.foreground) forwardStdin(sandbox.stdin);
        else await sandbox.stdin.close().catch(() => {});
      }
    }
    // Without a terminal of its own, Ctrl-C on ours goes to the container (as docker run does).
    const forward: [Deno.Signal, () => void][] = [];
    if (attach.foreground && !sandbox.pty) {
      for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
        const f = () => {
          try {
            sandbox.kill(sig);
          } catch { /* gone */ }
        };
        Deno.addSignalListener(sig, f);
        forward.push([sig, f]);
      }
    }
    let status: import("denobox/sandbox").SandboxStatus;
    try {
      status = await sandbox.status;
      await Promise.allSettled(pumps);
    } finally {
      restoreTerminal?.();
      for (const [s, f] of forward) Deno.removeSignalListener(s, f);
    }
    trace("exited");
    let oomKilled = false;
    try {
      oomKilled = cgroupMod.stats(cg).memory.oomKills > 0;
    } catch { /* counters unavailable */ }
    store.updateState(id, {
      status: "exited",
      pid: null,
      exitCode: status.code,
      signal: status.signal,
      finishedAt: new Date().toISOString(),
      oomKilled,
    });
    outcome = {
      status: status.code ??
        (status.signal ? 128 + signalNo(status.signal) : Exit.FAILED),
    };
  } catch (e) {
    if (e instanceof CliError) failure = e;
    else {
      const msg = `Cannot start container ${config.name}: ${
        e instanceof Error ? e.message : e
      }`;
      try {
        const s = store.readState(id);
        if (s.status !== "exited") {
          store.updateState(id, {
            status: "exited",
            exitCode: Exit.FAILED,
            error: msg,
            finishedAt: new Date().toISOString(),
            pid: null,
          });
        }
      } catch { /* removed meanwhile */ }
      failure = new CliError(msg, Exit.FAILED, { cause: e });
    }
  } finally {
    await Deno.remove(store.pausedMarker(id)).catch(() => {/* not paused */});
    if (config.autoRemove) {
      try {
        store.removeRecord(id);
      } catch { /* already gone */ }
    }
    monitorLock.release();
    trace("released");
  }
  if (failure) throw failure;
  return outcome;
}

/** The capabilities, seccomp filter and masked paths of a container (from its config). */
export async function containerHardening(
  config: ContainerConfig,
): Promise<import("denobox/sandbox").Hardening> {
  const { defaultHardening } = await import("denobox/sandbox");
  const seccomp = config.seccomp === null
    ? "default" as const
    : config.seccomp === "unconfined"
    ? "unconfined" as const
    : JSON.parse(await Deno.readTextFile(config.seccomp));
  try {
    return defaultHardening({
      capAdd: config.capAdd,
      capDrop: config.capDrop,
      seccomp,
    });
  } catch (e) {
    throw new CliError(
      `Cannot confine container ${config.name}: ${
        e instanceof Error ? e.message : e
      }`,
    );
  }
}

function exists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

function terminalSize(): { rows: number; cols: number } {
  try {
    const { rows, columns } = Deno.consoleSize();
    return { rows, cols: columns };
  } catch {
    return { rows: 24, cols: 80 };
  }
}

async function pump(
  stream: ReadableStream<Uint8Array>,
  sink: (chunk: Uint8Array) => Promise<void>,
): Promise<void> {
  try {
    for await (const chunk of stream) await sink(chunk);
  } catch { /* the other side closed (EIO on a pty whose child exited) */ }
}

async function writeAll(
  w: { write(p: Uint8Array): Promise<number> },
  data: Uint8Array,
): Promise<void> {
  let off = 0;
  while (off < data.length) off += await w.write(data.subarray(off));
}

function forwardStdin(target: WritableStream<Uint8Array>): void {
  // Not awaited: stdin may never end; the pipe closes when the container exits.
  Deno.stdin.readable.pipeTo(target).catch(() => {});
}
