/**
 * The on-disk container store: one directory per container under `<lib>/containers/<id>/`
 * holding `config.json` (what was asked for), `state.json` (what happened), `ctr.log`
 * (json-lines output) and two lock files; `<lib>/names/<name>` maps a name to its ID.
 *
 * Concurrency without a daemon:
 * - every JSON file is replaced atomically (written aside, then renamed);
 * - a name is claimed by creating `names/<name>` with O_EXCL: of two racing invocations one
 *   wins, the other gets a clear error;
 * - `lock` (flock) serialises state changes of one container (create, start, rm, rename);
 * - `monitor.lock` is held for its whole life by the process that owns the running container
 *   (the detached monitor, or the CLI itself in the foreground). The kernel drops it when
 *   that process dies, however it dies, so a container whose owner died is seen at once and
 *   shown as exited with an unknown status; the next `ps`/`rm` repairs its state.
 * @module
 */
import { join } from "./_path.ts";
import type { StorePaths } from "./_paths.ts";
import { checkName, generateName, newId, shortId } from "./_names.ts";
import { CliError } from "./_errors.ts";
import { exists } from "./_fs.ts";

/** A bind mount or tmpfs asked for with -v / --tmpfs. */
export type MountConfig =
  | { type: "bind"; source: string; target: string; readOnly: boolean }
  | { type: "tmpfs"; target: string; size: string | null; mode: string | null };

/** A published port (-p). */
export interface PortConfig {
  /** Port on the host. */
  host: number;
  /** Port in the container. */
  container: number;
  /** `"tcp"` or `"udp"`. */
  protocol: "tcp" | "udp";
  /** Host address to listen on (default all). */
  hostIp: string | null;
}

/** What `run`/`create` asked for: fixed at creation. */
export interface ContainerConfig {
  id: string;
  name: string;
  created: string;
  /** The image reference as given, or null (host view or --rootfs). */
  image: string | null;
  /** The image's ID when an image is used. */
  imageId: string | null;
  /** --rootfs DIR (absolute), or null. */
  rootfs: string | null;
  argv: string[];
  env: Record<string, string>;
  workdir: string;
  user: { uid: number; gid: number } | null;
  hostname: string;
  readOnly: boolean;
  mounts: MountConfig[];
  memory: number | null;
  cpus: number | null;
  pidsLimit: number | null;
  /**
   * Whether the container gets a cgroup (pause, unpause and stats need one). Absent in
   * configs written before the field existed: true.
   */
  cgroup?: boolean;
  network: "none" | "host" | "bridge";
  ports: PortConfig[];
  capAdd: string[];
  capDrop: string[];
  /** A seccomp profile path, `"unconfined"`, or null for the default. */
  seccomp: string | null;
  ulimits: Record<string, { soft: number; hard: number }>;
  stopTimeout: number;
  tty: boolean;
  interactive: boolean;
  autoRemove: boolean;
}

/** The recorded life of a container. */
export interface ContainerState {
  status: "created" | "running" | "exited" | "removing";
  /** Host PID of the container's first process, while running. */
  pid: number | null;
  /**
   * That process's start time (/proc/PID/stat, clock ticks since boot): with the PID, it
   * names the process for good, so a recycled PID is never taken for the container's.
   */
  pidStartTime?: number | null;
  /** PID of the process that owns it (monitor or foreground CLI), while running. */
  monitorPid: number | null;
  startedAt: string | null;
  finishedAt: string | null;
  /** The exit code; null when unknown (owner died) or killed by a signal. */
  exitCode: number | null;
  /** The signal that ended it. */
  signal: string | null;
  /** Why it failed or ended unexpectedly. */
  error: string | null;
  /** Whether the kernel's OOM killer ended it. */
  oomKilled: boolean;
  /** The container's cgroup directories, while they exist. */
  cgroup: string[] | null;
  /** Where the container's root filesystem is mounted, while it is. */
  rootfsMount: string | null;
  /** The container's address on the bridge network. */
  ip: string | null;
}

/** A container as listed: its config, its state, and the status that shows. */
export interface ContainerInfo {
  config: ContainerConfig;
  state: ContainerState;
  /** `created`, `running`, `paused` or `exited`. */
  status: "created" | "running" | "paused" | "exited" | "removing";
  /** The container's directory. */
  dir: string;
}

/** The state of a container that has not run yet (also what a missing state.json means). */
export const INITIAL_STATE: Readonly<ContainerState> = {
  status: "created",
  pid: null,
  monitorPid: null,
  startedAt: null,
  finishedAt: null,
  exitCode: null,
  signal: null,
  error: null,
  oomKilled: false,
  cgroup: null,
  rootfsMount: null,
  ip: null,
};

// Files are written as bytes: Deno.writeTextFileSync's first call in a process costs about
// 0.3 ms more than Deno.writeFileSync's, on the start path of every `run`.
const encoder = new TextEncoder();

/** Writes `data` to `path` atomically: a reader sees the old or the new file, never half. */
export function writeJsonAtomic(path: string, data: unknown): void {
  const tmp = `${path}.${Deno.pid}.tmp`;
  Deno.writeFileSync(tmp, encoder.encode(JSON.stringify(data, null, 2) + "\n"));
  Deno.renameSync(tmp, path);
}

function readJson<T>(path: string): T | null {
  try {
    return JSON.parse(Deno.readTextFileSync(path)) as T;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound || e instanceof SyntaxError) {
      return null;
    }
    throw e;
  }
}

/** A held flock (Deno's file locks are flock(2)); closing the file releases it. */
export class Lock implements Disposable {
  #file: Deno.FsFile | null;
  constructor(file: Deno.FsFile) {
    this.#file = file;
  }
  /** Releases the lock. Idempotent. */
  release(): void {
    this.#file?.close();
    this.#file = null;
  }
  [Symbol.dispose](): void {
    this.release();
  }
}

/** Takes the flock on `path` (created if missing); waits unless `wait: false` (then null when held). */
export function takeLock(path: string, wait = true): Lock | null {
  const file = Deno.openSync(path, {
    read: true,
    write: true,
    create: true,
    mode: 0o600,
  });
  try {
    if (wait) file.lockSync(true);
    else if (!file.tryLockSync(true)) {
      file.close();
      return null;
    }
  } catch (e) {
    file.close();
    throw e;
  }
  return new Lock(file);
}

/** The container store of one root. */
export class Store {
  readonly paths: StorePaths;
  readonly containersDir: string;
  readonly namesDir: string;

  constructor(paths: StorePaths) {
    this.paths = paths;
    this.containersDir = join(paths.lib, "containers");
    this.namesDir = join(paths.lib, "names");
  }

  /** Creates the store's directories (private to the owner). */
  ensure(): void {
    Deno.mkdirSync(this.containersDir, { recursive: true, mode: 0o700 });
    Deno.mkdirSync(this.namesDir, { recursive: true, mode: 0o700 });
    Deno.mkdirSync(this.paths.run, { recursive: true, mode: 0o700 });
  }

  /** A container's directory. */
  dir(id: string): string {
    return join(this.containersDir, id);
  }

  /** The container lock (state changes). */
  lock(id: string): Lock {
    return takeLock(join(this.dir(id), "lock"))!;
  }

  /** Takes the monitor lock of `id`; null when its owner is alive (holds it). */
  tryMonitorLock(id: string): Lock | null {
    return takeLock(join(this.dir(id), "monitor.lock"), false);
  }

  /** Whether the process owning `id` is alive. */
  ownerAlive(id: string): boolean {
    const l = this.tryMonitorLock(id);
    if (!l) return true;
    l.release();
    return false;
  }

  readConfig(id: string): ContainerConfig | null {
    return readJson<ContainerConfig>(join(this.dir(id), "config.json"));
  }

  readState(id: string): ContainerState {
    return {
      ...INITIAL_STATE,
      ...readJson<ContainerState>(join(this.dir(id), "state.json")),
    };
  }

  writeState(id: string, state: ContainerState): void {
    writeJsonAtomic(join(this.dir(id), "state.json"), state);
  }

  /** Updates some fields of the state (read, merge, atomic write). */
  updateState(id: string, patch: Partial<ContainerState>): ContainerState {
    const s = { ...this.readState(id), ...patch };
    this.writeState(id, s);
    return s;
  }

  /** The `paused` marker, kept apart from state.json so the owner's writes never race it. */
  pausedMarker(id: string): string {
    return join(this.dir(id), "paused");
  }

  /**
   * Creates a container: a fresh ID, its directory and config, then its name claimed with
   * O_EXCL. A name already in use is a `CliError` naming the container that holds it.
   */
  create(
    config: Omit<ContainerConfig, "id" | "name" | "created">,
    name?: string,
  ): ContainerConfig {
    if (name !== undefined) checkName(name);
    this.ensure();
    const id = newId();
    const dir = this.dir(id);
    Deno.mkdirSync(dir, { mode: 0o700 });
    using _lock = this.lock(id);
    const full: ContainerConfig = {
      id,
      name: name ?? "",
      created: new Date().toISOString(),
      ...config,
    };
    try {
      if (name !== undefined) this.#claimName(name, id);
      else {
        for (let attempt = 0;; attempt++) {
          const candidate = attempt < 5
            ? generateName()
            : `${generateName()}_${attempt}`;
          if (this.#claimName(candidate, id, false)) {
            full.name = candidate;
            break;
          }
        }
      }
      if (!full.hostname) full.hostname = shortId(id);
      // no state.json yet: a missing one reads as INITIAL_STATE, and the first change of
      // state writes it (one write and rename less on the way to a container's start)
      writeJsonAtomic(join(dir, "config.json"), full);
    } catch (e) {
      this.#unclaim(full.name, id);
      Deno.removeSync(dir, { recursive: true });
      throw e;
    }
    return full;
  }

  /** Claims `names/<name>` for `id`; false (or a CliError when `strict`) if taken. */
  #claimName(name: string, id: string, strict = true): boolean {
    const path = join(this.namesDir, name);
    for (let attempt = 0; attempt < 3; attempt++) {
      // written aside, then hard-linked into place: link() fails with EEXIST atomically, and
      // a name file is never seen half written
      const tmp = `${path}.${Deno.pid}.${id.slice(0, 8)}.tmp`;
      Deno.writeFileSync(tmp, encoder.encode(id), { mode: 0o600 });
      try {
        Deno.linkSync(tmp, path);
        return true;
      } catch (e) {
        if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
      } finally {
        Deno.removeSync(tmp);
      }
      const holder = readText(path);
      if (holder && this.#nameIsLive(name, holder)) {
        if (!strict) return false;
        throw new CliError(
          `Cannot create container ${
            JSON.stringify(name)
          }: the name is already in use by container ` +
            `${holder}. Remove or rename that container, or choose another name.`,
        );
      }
      // a stale name file (its creator or remover died): drop it under the names lock (so two
      // repairers cannot drop each other's fresh claims), then claim again
      using _names = takeLock(join(this.namesDir, ".lock"))!;
      const again = readText(path);
      if (again === holder && !(again && this.#nameIsLive(name, again))) {
        this.#unclaim(name, holder ?? "");
      }
    }
    throw new CliError(
      `Cannot claim the name ${
        JSON.stringify(name)
      }: it keeps changing; try again`,
    );
  }

  /** Whether `names/<name>` → `id` is backed by a container (or one being created now). */
  #nameIsLive(name: string, id: string): boolean {
    if (!/^[0-9a-f]{64}$/.test(id)) return false;
    const dir = this.dir(id);
    try {
      Deno.statSync(dir);
    } catch {
      return false;
    }
    const cfg = this.readConfig(id);
    if (cfg) return cfg.name === name || cfg.name === "";
    // no config yet: live only while its creator holds the lock
    const l = takeLock(join(dir, "lock"), false);
    if (!l) return true;
    l.release();
    return this.readConfig(id)?.name === name;
  }

  #unclaim(name: string, id: string): void {
    if (!name) return;
    const path = join(this.namesDir, name);
    const now = readText(path);
    if (now === id || (now === "" && id === "")) {
      try {
        Deno.removeSync(path);
      } catch { /* already gone */ }
    }
  }

  /** Moves `names/<old>` to `names/<new>` for `id` (caller holds the container lock). */
  rename(id: string, newName: string): void {
    checkName(newName);
    const cfg = this.readConfig(id)!;
    this.#claimName(newName, id);
    writeJsonAtomic(join(this.dir(id), "config.json"), {
      ...cfg,
      name: newName,
    });
    this.#unclaim(cfg.name, id);
  }

  /** Removes the container's directory and name (the caller has released its resources). */
  removeRecord(id: string): void {
    const cfg = this.readConfig(id);
    if (cfg) this.#unclaim(cfg.name, id);
    removeTree(this.dir(id));
  }

  /** Every container ID on disk. */
  ids(): string[] {
    try {
      return [...Deno.readDirSync(this.containersDir)]
        .filter((e) => e.isDirectory && /^[0-9a-f]{64}$/.test(e.name))
        .map((e) => e.name);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return [];
      throw e;
    }
  }

  /**
   * A container's config and status. A running container whose owner has died is recorded
   * as exited with an unknown status (repair); one that was half created by a process that
   * died is removed. Returns null for containers that do not (or no longer) exist.
   */
  info(id: string): ContainerInfo | null {
    try {
      return this.#info(id);
    } catch (e) {
      // removed by another process while we looked
      if (
        (e as { code?: string }).code === "ENOENT" ||
        e instanceof Deno.errors.NotFound
      ) {
        return null;
      }
      throw e;
    }
  }

  #info(id: string): ContainerInfo | null {
    const dir = this.dir(id);
    let config = this.readConfig(id);
    if (!config) {
      // half created: only its creator (holding the lock) may still finish it
      const l = takeLock(join(dir, "lock"), false);
      if (!l) return null;
      try {
        config = this.readConfig(id);
        if (!config) {
          try {
            Deno.removeSync(dir, { recursive: true });
          } catch { /* another process removed it first */ }
          return null;
        }
      } finally {
        l.release();
      }
    }
    let state = this.readState(id);
    if (state.status === "running") {
      const l = this.tryMonitorLock(id);
      if (l) {
        try {
          // re-read under the lock: a normal exit writes "exited" before the owner goes
          state = this.readState(id);
          if (state.status === "running") {
            state = {
              ...state,
              status: "exited",
              exitCode: null,
              finishedAt: new Date().toISOString(),
              error:
                `its monitor (pid ${state.monitorPid}) died; exit status unknown`,
            };
            this.writeState(id, state);
          }
        } finally {
          l.release();
        }
      }
    }
    let status: ContainerInfo["status"] = state.status;
    if (status === "running" && exists(this.pausedMarker(id))) {
      status = "paused";
    }
    return { config, state, status, dir };
  }

  /** All containers (newest first), after repairing what crashed processes left behind. */
  list(): ContainerInfo[] {
    const out: ContainerInfo[] = [];
    for (const id of this.ids()) {
      const i = this.info(id);
      if (i) out.push(i);
    }
    return out.sort((a, b) => b.config.created.localeCompare(a.config.created));
  }

  /**
   * Finds a container by full ID, name, or unique ID prefix. Errors name what was asked and
   * what to do.
   */
  resolve(ref: string): ContainerInfo {
    if (/^[0-9a-f]{64}$/.test(ref)) {
      const i = this.info(ref);
      if (i) return i;
    }
    const byName = readText(join(this.namesDir, ref));
    if (byName && /^[0-9a-f]{64}$/.test(byName)) {
      const i = this.info(byName);
      if (i && i.config.name === ref) return i;
    }
    if (/^[0-9a-f]+$/.test(ref)) {
      const matches = this.ids().filter((id) => id.startsWith(ref));
      if (matches.length > 1) {
        throw new CliError(
          `Container ID prefix ${ref} is ambiguous: it matches ${
            matches.map(shortId).join(", ")
          }; give more digits or the name`,
        );
      }
      if (matches.length === 1) {
        const i = this.info(matches[0]!);
        if (i) return i;
      }
    }
    throw new CliError(
      `No such container: ${ref} (see 'denobox ps -a' for names and IDs)`,
    );
  }
}

function readText(path: string): string | null {
  try {
    return Deno.readTextFileSync(path).trim();
  } catch {
    return null;
  }
}

/**
 * Removes a container's directory. overlayfs leaves `work/work` with mode 000; rootless, that
 * directory is ours but unreadable, so it is opened up (chmod 0700, ours only) before a retry.
 */
function removeTree(path: string): void {
  try {
    Deno.removeSync(path, { recursive: true });
  } catch (e) {
    if (!(e instanceof Deno.errors.PermissionDenied)) throw e;
    openUp(path);
    Deno.removeSync(path, { recursive: true });
  }
}

function openUp(dir: string): void {
  try {
    Deno.chmodSync(dir, 0o700);
    for (const e of Deno.readDirSync(dir)) {
      if (e.isDirectory) openUp(`${dir}/${e.name}`);
    }
  } catch { /* not ours: the retried remove reports it */ }
}
