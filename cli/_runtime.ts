/**
 * Running a container: the owner process (the detached monitor, or the CLI itself for a
 * foreground `run`) takes the container's monitor lock, makes its cgroup, root filesystem and
 * network, spawns the sandbox, records its state and output, waits, records the exit, and
 * releases everything. Nothing is left behind on any path: every resource is registered on
 * an AsyncDisposableStack the moment it exists.
 * @module
 */
import { join } from "./_path.ts";
import type {
  Hardening,
  Sandbox,
  SandboxStatus,
  SpawnOptions,
} from "denobox/sandbox";
// The narrow public entry points (deno.json exports), not denobox/sandbox: its module graph
// holds the seccomp compiler and Docker's profile (~35 KB), which a run whose filter comes from
// the cache never needs (defaultHardening is imported from denobox/sandbox when a filter must
// be compiled).
import { spawn } from "denobox/sandbox/spawn";
import { SandboxSetupError } from "denobox/sandbox/errors";
import {
  baseHardening,
  DEFAULT_MASKED_PATHS,
  DEFAULT_READONLY_PATHS,
} from "denobox/sandbox/base_hardening";
import type { Lock, Store } from "./_store.ts";
import {
  type ContainerConfig,
  type ContainerState,
  INITIAL_STATE,
} from "./_store.ts";
import { LogWriter } from "./_log.ts";
import { CliError, Exit } from "./_errors.ts";
import { signalNo } from "./_format.ts";
import { processStartTime } from "./_proc.ts";
import { trace } from "./_trace.ts";
import { followTerminalSize, terminalSize } from "./_tty.ts";

/** How the owner is connected to the user. */
export interface Attachment {
  /** Copy output to this process's stdout/stderr too (foreground). */
  foreground: boolean;
  /** Feed this process's stdin to the container (`-i`). */
  stdin: boolean;
  /** Called once the container runs (the detached monitor reports to its launcher here). */
  onStarted?: (pid: number) => void;
  /**
   * The container was created by this process just now (`Store.createOwned`), which holds
   * its monitor lock and passes it on with the config: no lock to take, no config to read
   * back, no state written yet, and no `paused` marker that an earlier run can have left to
   * clear.
   * (A removal attempt of a missing file throws inside Deno, and the first error a process
   * throws costs about a millisecond.)
   */
  created?:
    | { config: ContainerConfig; monitorLock: Lock }
    /**
     * Not on disk yet (`Store.prepareOwned`): its record is made while the sandbox sets itself
     * up (spawn's `whileStarting`), and the state so far is written then.
     */
    | { config: ContainerConfig; commit: () => Lock };
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
  const created = attach.created;
  const fresh = created !== undefined;
  const commit = created && "commit" in created ? created.commit : null;
  let monitorLock = created && "monitorLock" in created
    ? created.monitorLock
    : commit
    ? null
    : store.tryMonitorLock(id);
  if (!monitorLock && !commit) {
    throw new CliError(`Container ${id.slice(0, 12)} is already running`);
  }
  const config = created?.config ?? store.readConfig(id);
  if (!config) {
    monitorLock?.release();
    throw new CliError(`No such container: ${id}`);
  }
  const paths = store.paths;
  // While it holds the monitor lock the owner is the only writer of the state (ps's repair
  // and rm take that lock first), so it keeps the state in memory and writes it without
  // reading it back; a container this process has just created starts from the initial one,
  // with no state.json on disk until the first write. A container not yet on disk keeps its
  // changes in memory until `onDisk()` makes its record.
  let state: ContainerState | null = fresh ? { ...INITIAL_STATE } : null;
  let stateOnDisk = !fresh;
  let pending = false;
  const update = (patch: Partial<ContainerState>) => {
    if (!monitorLock) {
      state = { ...state!, ...patch };
      pending = true;
    } else if (state) {
      store.writeState(id, state = { ...state, ...patch }, !stateOnDisk);
      stateOnDisk = true;
    } else {
      state = store.updateState(id, patch);
      stateOnDisk = true;
    }
  };
  const onDisk = () => {
    if (monitorLock) return;
    monitorLock = commit!();
    if (pending) update({});
  };
  let failure: CliError | null = null;
  let outcome: RunOutcome = { status: 0 };
  try {
    await using stack = new AsyncDisposableStack();
    trace("runAsOwner");
    const useCgroup = config.cgroup !== false;
    const cgroupMod = useCgroup ? await import("denobox/cgroup") : null;
    trace("modules loaded");
    // cgroup (limits applied before any process joins)
    let cg: import("denobox/cgroup").Cgroup | null = null;
    if (cgroupMod) {
      const limits: import("denobox/cgroup").CgroupLimits = {};
      if (config.memory !== null) {
        limits.memory = { max: config.memory, swap: 0 };
      }
      if (config.cpus !== null) limits.cpu = { cpus: config.cpus };
      if (config.pidsLimit !== null) limits.pids = config.pidsLimit;
      const name = `ctr-${id.slice(0, 32)}`;
      let made: import("denobox/cgroup").Cgroup;
      try {
        made = cgroupMod.Cgroup.create(name, { limits });
      } catch (e) {
        if ((e as { code?: string }).code !== "EEXIST") throw e;
        // left by an owner that died: empty it and start afresh
        await cgroupMod.Cgroup.open(name).destroy();
        made = cgroupMod.Cgroup.create(name, { limits });
      }
      cg = made;
      stack.defer(async () => {
        await made.destroy();
        if (!config.autoRemove) update({ cgroup: null });
      });
      update({ cgroup: [...made.paths] });
    }

    trace("cgroup created");
    // root filesystem
    let rootfs: SpawnOptions["rootfs"];
    // a rootless overlay exists only inside the sandbox: its merged view is /proc/<pid>/root
    let viewThroughPid = false;
    if (config.image) {
      // image code only for image containers (the host view and --rootfs never load it)
      const { attachRootfs, openImageStore, removeRuntimeDir } = await import(
        "./_rootfs.ts"
      );
      const images = await openImageStore(paths);
      const image = await images.resolve(config.imageId ?? config.image);
      const r = stack.use(await attachRootfs(paths, id, image));
      stack.defer(() => removeRuntimeDir(paths, id));
      rootfs = r.spawnRootfs ?? r.path;
      viewThroughPid = r.mode === "sandbox";
      if (!viewThroughPid) update({ rootfsMount: r.path });
      stack.defer(() => {
        update({ rootfsMount: null });
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
    const hardening = await containerHardening(config, paths.run);

    const env = { HOSTNAME: config.hostname, HOME: "/root", ...config.env };
    const tty = config.tty;
    const size = tty && attach.foreground
      ? terminalSize()
      : { rows: 24, cols: 80 };
    const options: SpawnOptions = {
      ...(commit ? { whileStarting: onDisk } : {}),
      argv: config.argv,
      env,
      cwd: config.workdir,
      ...(rootfs !== undefined ? { rootfs } : {}),
      readOnly: config.readOnly || rootfs === undefined,
      // what spawn learns about the host (the default rootfs's layout), kept between runs
      cacheDir: join(paths.run, "spawn"),
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
      ...(cg ? { cgroup: cg } : {}),
      ...(setup ? { setup } : {}),
      ...hardening,
      ...(tty ? { pty: size } : {
        stdin: attach.stdin ? "pipe" as const : "null" as const,
        stdout: "pipe" as const,
        stderr: "pipe" as const,
      }),
    };
    trace("hardening compiled");
    const log = stack.use(await LogWriter.open(join(store.dir(id), "ctr.log")));
    let sandbox: Sandbox;
    try {
      sandbox = await spawn(options);
    } catch (e) {
      // not on disk: the sandbox never started, or the record's own making failed (the
      // outer catch records the former)
      if (!monitorLock) throw e;
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
        update({
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
    if (!fresh) removeQuietly(store.pausedMarker(id));
    update({
      status: "running",
      pid: sandbox.pid,
      pidStartTime: processStartTime(sandbox.pid),
      monitorPid: Deno.pid,
      startedAt: new Date().toISOString(),
      finishedAt: null,
      exitCode: null,
      signal: null,
      error: null,
      oomKilled: false,
      ip,
      ...(viewThroughPid ? { rootfsMount: `/proc/${sandbox.pid}/root` } : {}),
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
          stack.defer(followTerminalSize(pty));
        }
        if (attach.stdin) forwardStdin(pty.writable);
      }
    } else {
      // read chunk by chunk, without Web streams (their first use costs a few ms)
      for (
        const [name, out] of [["stdout", Deno.stdout], [
          "stderr",
          Deno.stderr,
        ]] as const
      ) {
        pumps.push(pumpPipe(sandbox, name, async (c) => {
          await log.write(name, c);
          if (attach.foreground) await writeAll(out, c);
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
    let status: SandboxStatus;
    try {
      status = await sandbox.status;
      await Promise.allSettled(pumps);
    } finally {
      restoreTerminal?.();
      for (const [s, f] of forward) Deno.removeSignalListener(s, f);
    }
    trace("exited");
    let oomKilled = false;
    if (cg && cgroupMod) {
      try {
        oomKilled =
          cgroupMod.counters(cg, ["memory.oomKills"])["memory.oomKills"] > 0;
      } catch { /* counters unavailable */ }
    }
    // an --rm record is deleted right below: no exit to record for anyone
    if (!config.autoRemove) {
      update({
        status: "exited",
        pid: null,
        pidStartTime: null,
        exitCode: status.code,
        signal: status.signal,
        finishedAt: new Date().toISOString(),
        oomKilled,
      });
    }
    outcome = {
      status: status.code ??
        (status.signal ? 128 + signalNo(status.signal) : Exit.FAILED),
    };
  } catch (e) {
    if (e instanceof CliError) failure = e;
    else {
      // a container that never got its record gets one to keep the failure in (not with --rm)
      try {
        if (!config.autoRemove) onDisk();
      } catch { /* its making failed: nothing to keep it in */ }
      const msg = `Cannot start container ${config.name || id.slice(0, 12)}: ${
        e instanceof Error ? e.message : e
      }`;
      try {
        const s = state ?? store.readState(id);
        if (s.status !== "exited") {
          update({
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
    // (a record never made has nothing to remove)
    if (monitorLock) {
      if (config.autoRemove) {
        // the record goes as a whole, its paused marker with it
        try {
          store.removeOwnedRecord(id);
        } catch { /* already gone */ }
      } else removeQuietly(store.pausedMarker(id));
      monitorLock.release();
    }
    trace("released");
  }
  if (failure) throw failure;
  return outcome;
}

/**
 * The capabilities, seccomp filter and masked paths of a container (from its config). With
 * `cacheDir`, compiled seccomp filters are kept there (see `cachedFilter`).
 */
export async function containerHardening(
  config: ContainerConfig,
  cacheDir?: string,
): Promise<Hardening> {
  const profileText = config.seccomp === null ||
      config.seccomp === "unconfined"
    ? null
    : await Deno.readTextFile(config.seccomp);
  const caps = { capAdd: config.capAdd, capDrop: config.capDrop };
  // The seccomp compiler and Docker's profile load only when a filter must be compiled: a
  // filter from the on-disk cache needs just the capability masks and paths.
  const build = async (
    seccomp: "default" | "unconfined" | string,
  ): Promise<Hardening> => {
    if (seccomp === "unconfined") {
      return { ...baseHardening(caps), seccomp: false };
    }
    const { defaultHardening } = await import("denobox/sandbox");
    return defaultHardening({
      ...caps,
      seccomp: seccomp === "default" ? seccomp : JSON.parse(seccomp),
    });
  };
  try {
    const choice = config.seccomp === "unconfined"
      ? "unconfined"
      : profileText ?? "default";
    if (choice === "unconfined" || cacheDir === undefined) {
      return await build(choice);
    }
    return await cachedFilter(cacheDir, config, choice, build);
  } catch (e) {
    throw new CliError(
      `Cannot confine container ${config.name}: ${
        e instanceof Error ? e.message : e
      }`,
    );
  }
}

const encoder = new TextEncoder();

/** The bundle this code runs from (`b-<time>-<pid>`, new for each rebuild), or null from source. */
const BUNDLE = /\/\.cache\/cli\/(b-[^/]+)\//.exec(import.meta.url)?.[1] ?? null;

/**
 * Compiling the seccomp profile is the costliest step of a container's start that JS does
 * (a few ms in a fresh process), and its result only depends on the code, the kernel, the
 * capabilities and the profile. The compiled filter is kept in `<run>/seccomp/`, in a file
 * named by a hash of the capabilities and the profile, with the full key (the bundle, the
 * kernel and both of these) stored in the file and compared on reading: a hash collision or
 * another bundle's file can never hand out another filter. Only from a bundle, whose name
 * changes with every rebuild; from source, the filter is compiled every time.
 *
 * The rest of the hardening is kept with it: the capability masks and the read-only paths
 * that this kernel has. Probing those paths and resolving the capabilities cost a fresh
 * process about 0.5 ms, and under one key they cannot differ: the five /proc entries are
 * built into the kernel or not (its configuration, the same for one release), never made by
 * a module, and spawn still skips a path that is absent inside.
 */
async function cachedFilter(
  dir: string,
  config: ContainerConfig,
  choice: string,
  build: (seccomp: string) => Promise<Hardening>,
): Promise<Hardening> {
  if (BUNDLE === null) return await build(choice);
  const settings = [
    JSON.stringify(config.capAdd),
    JSON.stringify(config.capDrop),
    choice,
  ].join("\n");
  const key = [
    "denobox seccomp cache 2",
    BUNDLE,
    Deno.build.arch,
    Deno.osRelease(),
    settings,
  ].join("\n") + "\0";
  // the hash only tells settings apart (it runs interpreted in a fresh process, so over as
  // few bytes as it can); the key in the file checks everything
  const path = join(
    dir,
    "seccomp",
    `${fnv64(encoder.encode(settings))}.bpf`,
  );
  const cached = readFilter(path, key);
  if (cached) return cached;
  const h = await build(choice);
  if (h.seccomp) writeFilter(path, key, h);
  return h;
}

/**
 * The hardening stored at `path` under exactly `key`, or null (one read, no blocking pool,
 * no exception for a well-formed file). The file is the key (ending in NUL); a line of
 * space-separated fields: the four capability masks (bounding, effective, permitted,
 * inheritable) in hex, the filter's length in bytes (a truncated file is never used) and the
 * read-only paths; a NUL; then the filter.
 */
function readFilter(path: string, key: string): Hardening | null {
  try {
    const data = Deno.readFileSync(path);
    // Compared byte for byte as Latin-1 strings, natively: a byte loop runs interpreted in a
    // fresh process, and a TextDecoder's first use costs 0.2 ms. The key holds one NUL, its
    // last byte, so the file's key ends at its first NUL.
    const keyEnd = data.indexOf(0) + 1;
    if (
      keyEnd === 0 ||
      latin1(data.subarray(0, keyEnd)) !== latin1(encoder.encode(key))
    ) {
      return null;
    }
    const end = data.indexOf(0, keyEnd);
    if (end < 0) return null;
    const [bounding, effective, permitted, inheritable, length, ...readonly] =
      latin1(data.subarray(keyEnd, end)).split(" ");
    const filter = data.slice(end + 1);
    if (
      filter.length === 0 || filter.length % 8 !== 0 ||
      String(filter.length) !== length ||
      !readonly.every((p) => DEFAULT_READONLY_PATHS.includes(p))
    ) return null;
    // BigInt() rejects anything but hex digits after the prefix (a damaged file)
    const mask = (hex: string | undefined) => {
      if (!hex?.startsWith("0x")) throw new RangeError(`Bad mask: ${hex}`);
      return BigInt(hex);
    };
    return {
      capabilities: {
        bounding: mask(bounding),
        effective: mask(effective),
        permitted: mask(permitted),
        inheritable: mask(inheritable),
      },
      maskedPaths: DEFAULT_MASKED_PATHS,
      readonlyPaths: readonly,
      noNewPrivs: true,
      seccomp: filter,
    };
  } catch { /* not cached yet, or damaged: compiled again */ }
  return null;
}

/** The bytes as a Latin-1 string (one char per byte). */
function latin1(bytes: Uint8Array): string {
  // in slices: a call's arguments live on the stack (a custom profile's text can be long)
  let s = "";
  for (let i = 0; i < bytes.length; i += 8192) {
    s += String.fromCharCode.apply(
      null,
      bytes.subarray(i, i + 8192) as unknown as number[],
    );
  }
  return s;
}

/** Stores `h` at `path` under `key` (atomically; failure is fine: a cache only). */
function writeFilter(path: string, key: string, h: Hardening): void {
  try {
    if (!h.seccomp) return;
    const c = h.capabilities;
    const meta = encoder.encode(
      [
        c.bounding,
        c.effective,
        c.permitted,
        c.inheritable,
      ].map((m) => `0x${m.toString(16)}`).concat(
        String(h.seccomp.length),
        h.readonlyPaths,
      ).join(" "),
    );
    const keyBytes = encoder.encode(key);
    Deno.mkdirSync(path.slice(0, path.lastIndexOf("/")), {
      recursive: true,
      mode: 0o700,
    });
    const out = new Uint8Array(
      keyBytes.length + meta.length + 1 + h.seccomp.length,
    );
    out.set(keyBytes);
    out.set(meta, keyBytes.length);
    out.set(h.seccomp, keyBytes.length + meta.length + 1);
    const tmp = `${path}.${Deno.pid}.tmp`;
    Deno.writeFileSync(tmp, out, { mode: 0o600 });
    Deno.renameSync(tmp, path);
  } catch { /* a cache only */ }
}

/** 64-bit FNV-1a of `bytes`, as 16 hex digits (two 32-bit lanes). */
function fnv64(bytes: Uint8Array): string {
  let a = 0x811c9dc5, b = 0x050c5d1f;
  for (const x of bytes) {
    a = Math.imul(a ^ x, 0x01000193) >>> 0;
    b = Math.imul(b ^ x, 0x01000193) >>> 0;
  }
  return a.toString(16).padStart(8, "0") + b.toString(16).padStart(8, "0");
}

/** Removes a file if it is there (a marker: one unlink, no trip to the blocking pool). */
function removeQuietly(path: string): void {
  try {
    Deno.removeSync(path);
  } catch { /* not there */ }
}

async function pump(
  stream: ReadableStream<Uint8Array>,
  sink: (chunk: Uint8Array) => Promise<void>,
): Promise<void> {
  try {
    for await (const chunk of stream) await sink(chunk);
  } catch { /* the other side closed (EIO on a pty whose child exited) */ }
}

async function pumpPipe(
  sandbox: Sandbox,
  stream: "stdout" | "stderr",
  sink: (chunk: Uint8Array) => Promise<void>,
): Promise<void> {
  try {
    for (let c; (c = await sandbox.read(stream)) !== null;) await sink(c);
  } catch { /* closed */ }
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
