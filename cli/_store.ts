/**
 * The on-disk container store: one directory per container under `<lib>/containers/<id>/`
 * holding `config.json` (what was asked for), `state.json` (what happened), `ctr.log`
 * (json-lines output, made with the first output) and two lock files; `<lib>/names/<name>`
 * maps a name to its ID. `<lib>/spares/` keeps a few directories of removed `--rm`
 * containers, emptied, for new containers to reuse (see `Store.removeOwnedRecord`).
 *
 * Concurrency without a daemon:
 * - every JSON file is replaced atomically (written aside, then renamed), but for the first
 *   write of a new container's config and state: those are written in place while its
 *   creator holds its monitor lock, and a reader takes a file that is missing, partial or
 *   not JSON for one not written yet;
 * - a name is claimed by creating `names/<name>`, a file holding the ID, with link(2): it
 *   fails with EEXIST atomically, so of two racing invocations one wins and the other gets a
 *   clear error, and the file is whole from its first moment (its inode was written before);
 * - `lock` (flock) serialises state changes of one container (start, rm, rename);
 * - `monitor.lock` is held by the process that creates a container until its config is
 *   written (a directory without a config is being made while it is held, and is a crash's
 *   leftover once it is not), and for its whole life by the process that owns the running
 *   container (the detached monitor, or the CLI itself in the foreground; a foreground `run`
 *   keeps it from the creation on). The kernel drops it when that process dies, however it
 *   dies, so a container whose owner died is seen at once and shown as exited with an unknown
 *   status; the next `ps`/`rm` repairs its state.
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

/**
 * Writes `data` over `path` (made if missing) in place, then cuts it to that length: it
 * reuses the file's block, where truncating it to nothing first frees the block and the write
 * allocates one again (each about 0.1 ms here). A reader may see a mix of old and new bytes
 * meanwhile: only for files whose readers take unparsable JSON for "not there yet".
 */
function writeInPlace(path: string, data: Uint8Array): void {
  const file = Deno.openSync(path, { write: true, create: true, mode: 0o600 });
  try {
    let off = 0;
    while (off < data.length) off += file.writeSync(data.subarray(off));
    file.truncateSync(data.length);
  } finally {
    file.close();
  }
}

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

/** The files a spare directory may keep (see `Store.removeOwnedRecord`). */
const SPARE_FILES: readonly string[] = [
  "config.json",
  "state.json",
  "monitor.lock",
  "ctr.log",
  "paused",
];

/** How many spare directories a store keeps at most. */
const MAX_SPARES = 8;

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

  /** Directories of removed `--rm` containers, kept for reuse (see `removeOwnedRecord`). */
  readonly sparesDir: string;

  constructor(paths: StorePaths) {
    this.paths = paths;
    this.containersDir = join(paths.lib, "containers");
    this.namesDir = join(paths.lib, "names");
    this.sparesDir = join(paths.lib, "spares");
  }

  /**
   * Creates the store's directories (private to the owner). `containers/` comes last: once it
   * exists, so do the others, and `create` only calls this when it is missing.
   */
  ensure(): void {
    Deno.mkdirSync(this.namesDir, { recursive: true, mode: 0o700 });
    Deno.mkdirSync(this.paths.run, { recursive: true, mode: 0o700 });
    Deno.mkdirSync(this.containersDir, { recursive: true, mode: 0o700 });
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

  /**
   * Writes the state. `first`: the container has no state yet, a missing or empty state.json
   * (made by this process, which holds its monitor lock): written in place, one rename and one
   * new file less, since a reader takes a missing, empty or partial state.json alike for the
   * initial state.
   */
  writeState(id: string, state: ContainerState, first = false): void {
    const path = join(this.dir(id), "state.json");
    if (!first) return writeJsonAtomic(path, state);
    writeInPlace(path, encoder.encode(JSON.stringify(state, null, 2) + "\n"));
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
   * link(2). A name already in use is a `CliError` naming the container that holds it.
   */
  create(
    config: Omit<ContainerConfig, "id" | "name" | "created">,
    name?: string,
  ): ContainerConfig {
    const made = this.createOwned(config, name);
    made.monitorLock.release();
    return made.config;
  }

  /**
   * `create`, but the container's monitor lock stays held and is returned: the caller owns the
   * new container from its first moment and runs it (a foreground `run`), without taking the
   * lock and reading the config back.
   */
  createOwned(
    config: Omit<ContainerConfig, "id" | "name" | "created">,
    name?: string,
  ): { config: ContainerConfig; monitorLock: Lock } {
    const made = this.prepareOwned(config, name);
    return { config: made.config, monitorLock: made.commit() };
  }

  /**
   * `createOwned` in two halves: the container's ID, name (when given; checked here),
   * hostname and creation time now, without touching the disk; its record when `commit()` is
   * called, which returns the monitor lock, held. Until then nothing of it exists: a
   * foreground `run` starts the sandbox's set-up first and commits while the kernel works.
   * `commit()` may change `config.name` (a generated name found taken); a `--name` found
   * taken throws a `CliError`, and then nothing is left on disk.
   */
  prepareOwned(
    config: Omit<ContainerConfig, "id" | "name" | "created">,
    name?: string,
  ): { config: ContainerConfig; commit: () => Lock } {
    if (name !== undefined) checkName(name);
    const id = newId();
    const full: ContainerConfig = {
      id,
      name: name ?? "",
      created: new Date().toISOString(),
      ...config,
    };
    if (!full.hostname) full.hostname = shortId(id);
    let committed = false;
    const commit = () => {
      if (committed) throw new Error(`Container ${id} is committed already`);
      committed = true;
      return this.#commit(full, name !== undefined);
    };
    return { config: full, commit };
  }

  #commit(full: ContainerConfig, named: boolean): Lock {
    const id = full.id;
    const dir = this.dir(id);
    // A new file costs an inode, and making one (or freeing it) is the dearest file operation
    // here: 0.05 to 0.35 ms on ext4, against ~10 us for a link, a rename or a write into a
    // file that exists. So a spare directory is taken when there is one (its files are
    // reused), the monitor lock's file holds the ID, and the name is claimed as a second link
    // to it: no file of its own.
    const lockPath = join(dir, "monitor.lock");
    let lockFile = this.#takeSpare(dir);
    if (!lockFile) {
      try {
        Deno.mkdirSync(dir, { mode: 0o700 });
      } catch (e) {
        // a new store: its directories are made once, not checked by every run
        if (!(e instanceof Deno.errors.NotFound)) throw e;
        this.ensure();
        Deno.mkdirSync(dir, { mode: 0o700 });
      }
      lockFile = Deno.openSync(lockPath, {
        read: true,
        write: true,
        create: true,
        mode: 0o600,
      });
      try {
        lockFile.lockSync(true);
      } catch (e) {
        lockFile.close();
        Deno.removeSync(dir, { recursive: true });
        throw e;
      }
    }
    const monitorLock = new Lock(lockFile);
    try {
      // at offset 0: a spare's file holds an ID of the same length
      lockFile.writeSync(encoder.encode(id));
    } catch (e) {
      monitorLock.release();
      Deno.removeSync(dir, { recursive: true });
      throw e;
    }
    try {
      if (named) this.#claimName(full.name, id, true, lockPath);
      else {
        for (let attempt = 0;; attempt++) {
          const candidate = attempt < 5
            ? generateName()
            : `${generateName()}_${attempt}`;
          if (this.#claimName(candidate, id, false, lockPath)) {
            full.name = candidate;
            break;
          }
        }
      }
      // Written in place, not aside and renamed: until the lock is released, a reader takes
      // a missing or partial config for a container being made (see #info), and a creator
      // that dies mid-write leaves a leftover that the next ps removes. No state yet (a
      // spare's state.json is empty): a missing or empty one reads as INITIAL_STATE, and the
      // first change of state writes it.
      writeInPlace(
        join(dir, "config.json"),
        encoder.encode(JSON.stringify(full, null, 2) + "\n"),
      );
    } catch (e) {
      if (full.name) this.#unclaim(full.name, id);
      Deno.removeSync(dir, { recursive: true });
      monitorLock.release();
      throw e;
    }
    return monitorLock;
  }

  /**
   * Claims `names/<name>` for `id`; false (or a CliError when `strict`) if taken. `source`, a
   * file holding exactly the ID, becomes the name's file; without it, one is written aside.
   */
  #claimName(
    name: string,
    id: string,
    strict = true,
    source?: string,
  ): boolean {
    const path = join(this.namesDir, name);
    for (let attempt = 0; attempt < 3; attempt++) {
      // written before, then hard-linked into place: link() fails with EEXIST atomically, and
      // a name file is never seen half written
      const tmp = source ?? `${path}.${Deno.pid}.${id.slice(0, 8)}.tmp`;
      if (source === undefined) {
        Deno.writeFileSync(tmp, encoder.encode(id), { mode: 0o600 });
      }
      try {
        Deno.linkSync(tmp, path);
        return true;
      } catch (e) {
        if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
      } finally {
        if (source === undefined) Deno.removeSync(tmp);
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
    // no config yet: live only while its creator holds the monitor lock
    const l = this.tryMonitorLock(id);
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

  /**
   * `removeRecord` for the owner of a container (the caller holds its monitor lock, and
   * releases it after): an `--rm` container at its end. A directory that holds only the
   * store's own files is kept as a spare for the next `create` (`spares/<id>`, about
   * `MAX_SPARES` at most: owners ending together may each add one), its config and state
   * emptied and its log removed; otherwise it is removed.
   */
  removeOwnedRecord(id: string): void {
    const cfg = this.readConfig(id);
    if (cfg) this.#unclaim(cfg.name, id);
    const dir = this.dir(id);
    if (!this.#keepSpare(dir, id)) removeTree(dir);
  }

  /**
   * Moves the owned directory `dir` to the spares (true), or leaves it (false). Until it is
   * gone from `containers/`, its config is empty and its lock held: readers take it for a
   * container being made and skip it.
   */
  #keepSpare(dir: string, id: string): boolean {
    try {
      const names = Array.from(Deno.readDirSync(dir), (e) => e.name);
      if (!names.every((n) => SPARE_FILES.includes(n))) return false;
      let spares = 0;
      try {
        for (const _ of Deno.readDirSync(this.sparesDir)) {
          if (++spares >= MAX_SPARES) return false;
        }
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) return false;
        Deno.mkdirSync(this.sparesDir, { recursive: true, mode: 0o700 });
      }
      // Cut to one byte, "{": no JSON, so a config being made and the initial state to a
      // reader, and the file keeps its block (freeing a block, or a file, costs as much as
      // making one; on ext4 mounted with `discard`, as here, ~0.1 ms each).
      for (const n of names) {
        if (n === "config.json" || n === "state.json") {
          Deno.truncateSync(join(dir, n), 1);
        } else if (n !== "monitor.lock") Deno.removeSync(join(dir, n));
      }
      Deno.renameSync(dir, join(this.sparesDir, id));
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Takes a spare directory as `dir` and returns its monitor lock's file, locked; null when
   * there is none to take. A spare is only moved by whoever holds its lock, so of two
   * processes after one spare, one gets it and the other tries the next.
   */
  #takeSpare(dir: string): Deno.FsFile | null {
    let entries: Iterable<Deno.DirEntry>;
    try {
      entries = Deno.readDirSync(this.sparesDir);
    } catch {
      return null;
    }
    let tried = 0;
    for (const e of entries) {
      if (++tried > 3) break;
      const spare = join(this.sparesDir, e.name);
      let file: Deno.FsFile;
      try {
        file = Deno.openSync(join(spare, "monitor.lock"), {
          read: true,
          write: true,
        });
      } catch {
        continue; // taken meanwhile
      }
      try {
        if (file.tryLockSync(true)) {
          Deno.renameSync(spare, dir);
          return file;
        }
      } catch { /* taken meanwhile */ }
      file.close();
    }
    return null;
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
      // half created: only its creator (holding the monitor lock) may still finish it
      const l = this.tryMonitorLock(id);
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
