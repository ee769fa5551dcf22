import {
  At,
  CloneFlag,
  dup,
  fdAtLeast,
  FileType,
  ids,
  MountFlag,
  mountFlagsOf,
  NAMESPACE_FLAGS,
  type NamespaceName,
  open,
  OpenFlag,
  openPty,
  type OwnedFd,
  pipe,
  Prctl,
  type RlimitName,
  type SignalName,
  signalNumber,
  statxat,
  write,
} from "denobox/libc";
import type { RootTemplate } from "./template.ts";
import {
  Program,
  recycleProgram,
  type StepArg,
  type StepResult,
} from "./program.ts";
import { appendInitTail } from "./_init.ts";
import { launch, type SetupHook } from "./launch.ts";
import { SandboxSetupError } from "./errors.ts";
import type { Sandbox } from "./sandbox.ts";
import { mark } from "./_trace.ts";
import { hostView } from "./_host_view.ts";
import { type CapabilityMasks, lastCapability } from "./capabilities.ts";
import {
  DEFAULT_MASKED_PATHS,
  DEFAULT_READONLY_PATHS,
} from "./base_hardening.ts";
import {
  type CapabilitySetting,
  resolveHardening,
  type SeccompSetting,
} from "./_defaults.ts";

export type { CapabilitySetting, SeccompSetting } from "./_defaults.ts";

/** Where a stdio stream of the sandbox goes. */
export type Stdio = "inherit" | "null" | "pipe" | number;

/** A namespace setting: new (true), shared with the caller (false), or joined. */
export type NamespaceSetting = boolean | { path: string } | { pidfd: number };

/** One uid_map/gid_map line. */
export interface IdMap {
  /** First id inside. */
  inside: number;
  /** First id outside. */
  outside: number;
  /** How many ids. */
  count: number;
}

/** A mount inside the sandbox (`target` is a path inside it). */
export type MountSpec =
  | {
    type: "bind";
    source: string;
    target: string;
    readOnly?: boolean;
    /** Bind submounts too (default true). */
    recursive?: boolean;
  }
  | {
    type: "tmpfs";
    target: string;
    size?: number | string;
    mode?: number;
    readOnly?: boolean;
  }
  | {
    /**
     * A detached mount of this process, by fd (from fsmount(2), or open_tree(2) with
     * OPEN_TREE_CLONE), attached at `target` with move_mount(2): the way to put a filesystem
     * that was never mounted anywhere into a sandbox on every kernel with the new mount API
     * (a bind of `/proc/self/fd/N` copies it, which older kernels refuse for a detached mount:
     * EINVAL on 6.1, allowed on 6.18). Attached once: the same fd in a second sandbox fails with EINVAL. The fd stays
     * open and usable for its files, also after the sandbox's end unmounts it. Its mount
     * attributes are its own (give fsmount(2) MOUNT_ATTR_RDONLY for a read-only one).
     */
    type: "detached";
    fd: number;
    target: string;
  }
  | { type: "proc"; target: string }
  | { type: "sysfs"; target: string }
  | { type: "mqueue"; target: string }
  | { type: "devpts"; target: string };

/**
 * An overlayfs root mounted inside the sandbox's own mount namespace (never on the host), so
 * it also works rootless (kernel 5.11+): read-only `lower` layers and, for a writable root, an
 * `upper` and a `work` directory on the same filesystem (the container's changes land in
 * `upper`). The paths may not hold `,`, `:` or `\`.
 */
export interface OverlayRootfs {
  /** The overlayfs layers and, for a writable root, where changes go. */
  overlay: {
    /** Read-only layers, top first (overlayfs's lowerdir order). */
    lower: readonly string[];
    /** Where changes go; absent (with `work`): a read-only root. */
    upper?: string;
    /** overlayfs's work directory: empty, on the same filesystem as `upper`. */
    work?: string;
    /**
     * overlayfs's `userxattr` option (whiteouts as `user.overlay.*` xattrs), needed inside a
     * user namespace. Default: true exactly when the sandbox has a user namespace.
     */
    userxattr?: boolean;
  };
}

/** Options of `spawn()`. */
export interface SpawnOptions {
  /** The command: argv[0] absolute, or looked up in the PATH of `env` (or a default PATH). */
  argv: readonly string[];
  /** The environment: cleared by default, the command gets exactly this. */
  env?: Readonly<Record<string, string>>;
  /** Working directory inside the sandbox (default "/"). */
  cwd?: string;
  /**
   * A host directory to use as the root, or an overlay of host directories mounted inside the
   * sandbox (`OverlayRootfs`), or a `RootTemplate` (a root built once, whose mount namespace
   * each sandbox copies: no root to assemble per sandbox); absent: a read-only view of the
   * host's system dirs.
   */
  rootfs?: string | OverlayRootfs | RootTemplate;
  /** Mount the rootfs read-only. */
  readOnly?: boolean;
  /** Hostname inside (default "sandbox" with a new UTS namespace). */
  hostname?: string;
  /** NIS domain name inside. */
  domainname?: string;
  /**
   * Namespaces. Defaults: user when not root, mnt, pid, uts, ipc, net (loopback up), cgroup,
   * and time where the kernel has it.
   */
  namespaces?: Partial<Record<NamespaceName, NamespaceSetting>>;
  /** Extra mounts, in order, after the root and /proc, /dev are in place. */
  mounts?: readonly MountSpec[];
  /**
   * Hidden inside: /dev/null bound over files, an empty read-only tmpfs over directories;
   * paths that do not exist are skipped. Default `DEFAULT_MASKED_PATHS`; `[]` masks nothing.
   */
  maskedPaths?: readonly string[];
  /**
   * Remounted read-only inside; paths that do not exist are skipped. Default
   * `DEFAULT_READONLY_PATHS` (/proc/sys, /proc/sysrq-trigger...); `[]` for none.
   */
  readonlyPaths?: readonly string[];
  /** Ids to run the command as, inside. */
  user?: { uid?: number; gid?: number; groups?: readonly number[] };
  /** uid_map lines (user namespace). Default: 0 -> caller when rootless, 0..65535 identity as root. */
  uidMap?: readonly IdMap[];
  /** gid_map lines (user namespace). */
  gidMap?: readonly IdMap[];
  /** Resource limits (`Infinity` = unlimited). */
  rlimits?: Partial<
    Record<RlimitName, number | { soft: number; hard: number }>
  >;
  /** PR_SET_NO_NEW_PRIVS (default true). */
  noNewPrivs?: boolean;
  /** Signal the sandbox gets when this process dies (default SIGKILL). */
  parentDeathSignal?: SignalName | false;
  /** A new session (setsid), detached from our terminal (default true). */
  newSession?: boolean;
  /** The command's stdin (default "inherit"); `"pipe"` gives `sandbox.stdin`. */
  stdin?: Stdio;
  /** The command's stdout (default "inherit"); `"pipe"` gives `sandbox.stdout`. */
  stdout?: Stdio;
  /** The command's stderr (default "inherit"); `"pipe"` gives `sandbox.stderr`. */
  stderr?: Stdio;
  /** Our fds to pass as the child's 3, 4, ... (every other fd is closed at exec). */
  extraFds?: readonly number[];
  /** Interactive: the command's 0-2 are a pty slave; `sandbox.pty` is the master. */
  pty?: boolean | { rows: number; cols: number };
  /** Cgroup directories the child joins (writes "0" to cgroup.procs) before anything runs. */
  cgroup?: string | { readonly paths: readonly string[] };
  /** Runs in the parent while the child waits (e.g. network set-up); its result is disposed after the reap. */
  setup?: SetupHook;
  /**
   * Runs in the parent right after the sandbox's first process is created, while it sets
   * itself up: nothing waits for it, so work put here (records, bookkeeping) costs no start-up
   * time as long as the set-up takes longer; the command may start before it ends. `spawn()`
   * resolves once both are done. If it throws, the sandbox is killed and `spawn()` rejects with
   * that error. Its result is disposed after the reap.
   */
  whileStarting?: SetupHook;
  /**
   * The seccomp filter installed right before execve: a classic BPF program (sock_filter[],
   * 8 bytes each), or `"default"` (the default: denobox's profile, resolved against the
   * capabilities the command keeps); `false` or `"unconfined"`: no filter.
   */
  seccomp?: SeccompSetting;
  /**
   * Capability masks of the command (bounding set dropped, capset, ambient cleared), also
   * inside a user namespace. Default: `DEFAULT_CAPABILITIES`; `"all"` keeps every capability.
   */
  capabilities?: CapabilitySetting;
  /**
   * A directory (created on demand) where spawn may keep what it learns about the host between
   * processes: the built-in host view's layout and mount flags, checked against the host on
   * every use. Saves a fresh process a few ms; absent: learnt once per process.
   */
  cacheDir?: string;
  /**
   * A reaping init as PID 1 that forwards signals and reports the command's status (default
   * true with a new pid namespace). false: the command itself is PID 1 and must reap orphans.
   */
  init?: boolean;
  /**
   * Awaited once everything is prepared (the program built, pipes and fds open), right before
   * the child is created: a turn in a queue, for example, so that what can be prepared ahead
   * is, while the start itself waits. If it throws, nothing is started and all is released.
   */
  beforeStart?: () => Promise<void>;
}

/** What `exec()` reuses from the `spawn()` that made a sandbox. */
export const SPAWNED: WeakMap<
  Sandbox,
  {
    user?: SpawnOptions["user"];
    capabilities: CapabilitySetting;
    seccomp: Uint8Array | false;
    noNewPrivs: boolean;
    cgroups: readonly string[];
  }
> = new WeakMap();

const DEFAULT_PATH =
  "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/** Every namespace a sandbox can have, in the order they are joined (user first). */
export const ALL_NS: readonly NamespaceName[] = [
  "user",
  "mnt",
  "pid",
  "uts",
  "ipc",
  "net",
  "cgroup",
  "time",
];
const CLONE_NS: readonly NamespaceName[] = [
  "user",
  "mnt",
  "pid",
  "uts",
  "ipc",
  "net",
];
let hasTimeNs: boolean | null = null;
let lifeline: { read: OwnedFd; write: OwnedFd } | null = null;
let devNull: OwnedFd | null = null;

/**
 * Whether a new time namespace is on by default: the kernel must have time namespaces, and be
 * 6.3 or newer. Before 6.3 the kernel refuses (EINVAL) a CLONE_VM child of a process whose
 * time namespace for children differs from its own, which is exactly the vfork that starts
 * the command (seen on Debian 12's 6.1).
 */
function timeNsAvailable(): boolean {
  if (hasTimeNs === null) {
    // "6.3.0-rc1", "6.18.44-cloud": parseInt stops at the first non-digit (no regex to compile)
    const [major = 0, minor = 0] = Deno.osRelease().split(".", 2).map((x) =>
      parseInt(x, 10) || 0
    );
    // statx: an absent entry is a null, not a thrown exception (costly in a fresh process)
    let present = false;
    try {
      present = statxat(At.AT_FDCWD, "/proc/self/ns/time") !== null;
    } catch { /* no procfs to tell: no time namespace, as before */ }
    hasTimeNs = present && (major > 6 || (major === 6 && minor >= 3));
  }
  return hasTimeNs;
}

/** A pipe whose write end only this process holds: a child sees POLLHUP once we are gone. */
export function lifelinePipe(): { read: OwnedFd; write: OwnedFd } {
  if (!lifeline) {
    const p = pipe();
    lifeline = { read: fdAtLeast(p.read, 5), write: fdAtLeast(p.write, 5) };
  }
  return lifeline;
}

function nullFd(): OwnedFd {
  if (!devNull) {
    devNull = fdAtLeast(open("/dev/null", { flags: OpenFlag.O_RDWR }), 5);
  }
  return devNull;
}

const q = JSON.stringify;

function checkPath(p: string, what: string): void {
  if (typeof p !== "string" || !p.startsWith("/")) {
    throw new TypeError(`Invalid ${what}: must be an absolute path: ${q(p)}`);
  }
}

const MOUNT_TYPES = [
  "bind",
  "tmpfs",
  "detached",
  "proc",
  "sysfs",
  "mqueue",
  "devpts",
];

/** Checks the shape of `mounts` before anything runs (TypeError/RangeError). */
function checkMounts(mounts: SpawnOptions["mounts"]): void {
  if (mounts === undefined) return;
  if (!Array.isArray(mounts)) {
    throw new TypeError("Invalid mounts: must be an array of mount specs");
  }
  for (const m of mounts as readonly MountSpec[]) {
    if (typeof m !== "object" || m === null || !MOUNT_TYPES.includes(m.type)) {
      throw new TypeError(
        `Unknown mount type: ${q((m as { type?: unknown } | null)?.type)}`,
      );
    }
    checkPath(m.target, "mount target");
    if (m.type === "bind") checkPath(m.source, "bind source");
    if (m.type === "detached" && !(Number.isInteger(m.fd) && m.fd >= 0)) {
      throw new TypeError(`Invalid detached mount fd: ${q(m.fd)}`);
    }
    if (m.type !== "tmpfs") continue;
    if (
      m.size !== undefined &&
      !(typeof m.size === "number"
        ? Number.isSafeInteger(m.size) && m.size > 0
        : typeof m.size === "string" && /^[1-9]\d*([kmg%])?$/i.test(m.size))
    ) {
      throw new RangeError(
        `Invalid tmpfs size: ${
          q(m.size)
        } (bytes, or a number with k, m, g or %)`,
      );
    }
    if (
      m.mode !== undefined &&
      !(Number.isInteger(m.mode) && m.mode >= 0 && m.mode <= 0o7777)
    ) {
      throw new RangeError(`Invalid tmpfs mode: ${m.mode}`);
    }
  }
}

function checkId(v: number, what: string): void {
  if (!Number.isInteger(v) || v < 0 || v > 0xfffffffe) {
    throw new RangeError(`Invalid ${what}: ${v}`);
  }
}

function join(root: string, inside: string): string {
  return (root === "/" ? "" : root) + (inside === "/" ? "" : inside);
}

/**
 * Starts a command in a new sandbox: clone() into a precomputed syscall program (no JS in the
 * child) that sets up namespaces, the root filesystem, ids, limits and stdio, then execs the
 * command. Resolves once the command runs; a failing step rejects with a `SandboxSetupError`
 * naming it (`pivot_root("/srv/box"): EINVAL`, or `execve("/bin/nope"): ENOENT`).
 *
 * @example Run a command on the built-in host view, read its output
 * ```ts ignore
 * import { spawn } from "denobox/sandbox";
 * await using box = await spawn({ argv: ["/bin/sh", "-c", "echo $$; hostname"], stdout: "pipe" });
 * const { status, stdout } = await box.output();
 * console.log(status.code, new TextDecoder().decode(stdout)); // 0 "2\nsandbox\n"
 * ```
 */
export async function spawn(options: SpawnOptions): Promise<Sandbox> {
  const o = options;
  if (
    !Array.isArray(o.argv) || o.argv.length === 0 ||
    o.argv.some((a) => typeof a !== "string")
  ) {
    throw new TypeError("Invalid argv: must be a non-empty array of strings");
  }
  if (o.argv[0] === "") {
    throw new TypeError("Invalid argv: the command is empty");
  }
  if (o.cwd !== undefined) checkPath(o.cwd, "cwd");
  const template = templateOf(o.rootfs);
  if (template !== null) template.check();
  else if (typeof o.rootfs === "object" && o.rootfs !== null) {
    checkOverlay(o.rootfs as OverlayRootfs);
  } else if (o.rootfs !== undefined) checkPath(o.rootfs, "rootfs");
  for (const p of [...(o.maskedPaths ?? []), ...(o.readonlyPaths ?? [])]) {
    checkPath(p, "path");
  }
  checkMounts(o.mounts);
  mark("spawn: called");
  const me = ids();
  const root = me.euid === 0;
  const hardening = await resolveHardening(o);
  mark("spawn: options checked, hardening resolved");

  // ---- namespaces ----
  const ns = new Map<NamespaceName, NamespaceSetting>();
  for (const n of ALL_NS) {
    const def = n === "user" ? !root : n === "time" ? timeNsAvailable() : true;
    const v = o.namespaces?.[n] ?? def;
    if (
      typeof v === "object" && v !== null && !("path" in v) && !("pidfd" in v)
    ) {
      throw new TypeError(`Invalid namespace setting for ${n}`);
    }
    ns.set(n, v);
  }
  for (const k of Object.keys(o.namespaces ?? {})) {
    if (!ALL_NS.includes(k as NamespaceName)) {
      throw new TypeError(`Unknown namespace: ${k}`);
    }
  }
  const isNew = (n: NamespaceName) => ns.get(n) === true;
  const joined = ALL_NS.filter((n) => typeof ns.get(n) === "object");
  const mntNew = isNew("mnt");
  if (!mntNew && (o.rootfs !== undefined || (o.mounts?.length ?? 0) > 0)) {
    throw new TypeError(
      "Cannot set up a root filesystem or mounts without a new mount namespace",
    );
  }
  const userNew = isNew("user");
  if (template !== null && (!mntNew || userNew || joined.includes("user"))) {
    throw new TypeError(
      "Cannot use a RootTemplate: it needs a new mount namespace and no user namespace (root)",
    );
  }
  // clone() creates the new namespaces and the child joins the others right after: the
  // command then runs under the init of a pid namespace made by clone. Not possible when the
  // user namespace is joined (namespaces made by clone would belong to the caller's one) or
  // new while others are joined (joining needs privileges over their owner, which a process
  // in a fresh user namespace lacks): then the child joins, and unshares the new ones.
  const viaClone = !joined.includes("user") && !(userNew && joined.length > 0);
  // unshare(CLONE_NEWPID) only moves the caller's children: the first process then forks its
  // successor into the new pid namespace (as a sibling, our child) and exits, so the init (or
  // the command) is PID 1 there and mounts that namespace's /proc, as with clone()
  const pidUnshared = !viaClone && isNew("pid");
  const pidJoined = joined.includes("pid");
  const useInit = pidJoined || (o.init ?? isNew("pid"));

  const cleanup = new AsyncDisposableStack();
  const childFds: OwnedFd[] = [];
  let program: Program | null = null;
  const parentEnds: {
    stdin?: OwnedFd | null;
    stdout?: OwnedFd | null;
    stderr?: OwnedFd | null;
    pty?: OwnedFd | null;
  } = {};
  // Early start: the child is cloned as soon as its first steps are written, and creates
  // its namespaces itself (unshare) while we write the rest of its program; it waits at a
  // gate (a pipe read) until that is done. The clone itself then creates only the user and
  // pid namespaces. Not when the caller queues the start (beforeStart): it wants all the
  // work done before its turn.
  const early = viaClone && !o.beforeStart;
  let gate: OwnedFd | null = null;
  let gateRead: number | null = null;
  const openGate = () => {
    try {
      write(gate!.fd, new Uint8Array([1]));
    } catch (e) {
      // the child failed at a step before the gate and is gone: its own error, on the
      // control pipe, is the one launch() reports
      if ((e as { code?: string }).code !== "EPIPE") throw e;
    }
  };
  try {
    const p = program = new Program();
    const hooks: SetupHook[] = [];
    // every fd the child inherits exists before the clone
    const ptyInside = o.pty !== undefined && o.pty !== false && mntNew;
    const stdio = early
      ? stdioFds(o, { parentEnds, childFds, ptyInside })
      : undefined;

    // a template's bind sources, cloned before the child leaves our mount namespace
    const detached = new Map<MountSpec, StepResult>();
    // joined namespaces: user first when joined; new ones are unshared afterwards
    const nsFds: { name: NamespaceName; fd: number }[] = [];
    for (const n of joined) {
      const v = ns.get(n) as { path: string } | { pidfd: number };
      let fd: number;
      if ("path" in v) {
        const f = open(v.path);
        childFds.push(f);
        fd = f.fd;
      } else {
        fd = v.pidfd;
      }
      nsFds.push({ name: n, fd });
    }
    nsFds.sort((a, b) => (a.name === "user" ? -1 : b.name === "user" ? 1 : 0));

    // ---- P1: before anything else ----
    for (const dir of cgroupDirs(o.cgroup)) {
      p.writeFile(`${dir}/cgroup.procs`, "0", {
        label: `write(${q(dir + "/cgroup.procs")})`,
      });
    }
    if (o.newSession ?? true) p.setsid();
    const pdeath = o.parentDeathSignal ?? "SIGKILL";
    if (pdeath !== false) {
      p.close(lifelinePipe().write.fd, { mayFail: true });
      lifelineSteps(p, pdeath);
    }
    if (viaClone) {
      for (const x of nsFds) {
        p.setns(x.fd, NAMESPACE_FLAGS[x.name], { label: `setns(${x.name})` });
      }
      if (template !== null) {
        // bind sources are host paths: each is cloned (a detached copy, held by an fd) while
        // the child is still in our mount namespace, and attached inside after the switch
        for (const m of o.mounts ?? []) {
          if (m.type !== "bind") continue;
          checkPath(m.source, "bind source");
          detached.set(
            m,
            p.syscall("open_tree", [
              At.AT_FDCWD,
              p.string(m.source),
              OPEN_TREE_CLONE | OpenFlag.O_CLOEXEC |
              ((m.recursive ?? true) ? AT_RECURSIVE : 0),
            ], { label: `open_tree(${q(m.source)})`, path: m.source }),
          );
        }
        // the template's mount namespace, then a private copy of it: its root is already
        // this sandbox's root (setns moves root and cwd there), nothing to assemble or detach
        p.setns(template.namespaceFd, CloneFlag.CLONE_NEWNS, {
          label: "setns(mnt, template)",
        });
        p.unshare(CloneFlag.CLONE_NEWNS);
      }
      if (early) {
        const own = (["mnt", "uts", "ipc", "net"] as const).filter((n) =>
          isNew(n) && !(n === "mnt" && template !== null)
        );
        if (own.length) p.unshare(own);
      }
    } else {
      const user = nsFds.find((x) => x.name === "user");
      if (user) {
        p.setns(user.fd, CloneFlag.CLONE_NEWUSER, { label: "setns(user)" });
      }
      for (const x of nsFds) {
        if (x.name !== "user") {
          p.setns(x.fd, NAMESPACE_FLAGS[x.name], { label: `setns(${x.name})` });
        }
      }
    }

    // ---- user namespace ids ----
    let uidMap: readonly IdMap[] = [], gidMap: readonly IdMap[] = [];
    let childWritesMaps = false;
    if (userNew) {
      uidMap = o.uidMap ??
        [{ inside: 0, outside: root ? 0 : me.euid, count: root ? 65536 : 1 }];
      gidMap = o.gidMap ??
        [{ inside: 0, outside: root ? 0 : me.egid, count: root ? 65536 : 1 }];
      for (const m of [...uidMap, ...gidMap]) {
        checkId(m.inside, "id map"),
          checkId(m.outside, "id map"),
          checkId(m.count, "id map");
      }
      const single = (m: readonly IdMap[], id: number) =>
        m.length === 1 && m[0]!.outside === id && m[0]!.count === 1;
      childWritesMaps = !root && single(uidMap, me.euid) &&
        single(gidMap, me.egid);
      if (!childWritesMaps) hooks.push(parentMapWriter(uidMap, gidMap, root));
    } else if (o.uidMap || o.gidMap) {
      throw new TypeError("uidMap/gidMap need a new user namespace");
    }
    if (o.setup) hooks.push(o.setup);
    if (!viaClone && userNew) p.unshare(CloneFlag.CLONE_NEWUSER);
    // with our own devpts, the pty is opened in there, and we take its master
    if (hooks.length > 0 || ptyInside) {
      p.close(p.fds.syncWrite, { mayFail: true });
    }
    if (hooks.length > 0) p.syncPoint();
    if (childWritesMaps) {
      p.writeFile("/proc/self/setgroups", "deny");
      p.writeFile("/proc/self/uid_map", mapText(uidMap));
      p.writeFile("/proc/self/gid_map", mapText(gidMap));
    }
    if (!viaClone) {
      const rest = CLONE_NS.filter((n) => n !== "user" && isNew(n));
      if (rest.length) p.unshare(rest);
    }
    let sibling: ReturnType<Program["forkSibling"]> | null = null;
    if (pidUnshared) {
      sibling = p.forkSibling();
      // a fork clears the parent-death signal; the lifeline tells if we died before it was set
      if (pdeath !== false) lifelineSteps(p, pdeath);
    }
    const late = (["cgroup", "time"] as const).filter((n) => isNew(n));
    if (late.length) p.unshare(late);

    mark("spawn: namespace and id steps");
    if (early) {
      const g = pipe();
      const r = fdAtLeast(g.read, 5);
      gateRead = r.fd;
      gate = fdAtLeast(g.write, 5);
      childFds.push(r);
      // its copy of our end: were we gone, its read would end (and fail the expect)
      p.close(gate.fd, { mayFail: true, label: "close(gate)" });
      p.read(r.fd, 1, { label: "read(gate)", expect: 1 });
    }
    /**
     * Lets the child run what is written so far: a new gate after it, and a byte through
     * the pipe for the gate it waits at (each read takes one byte, in order).
     */
    const publish = () => {
      if (!gate) return;
      p.read(gateRead!, 1, { label: "read(gate)", expect: 1 });
      openGate();
    };
    let ptyMaster: StepResult | undefined;
    const rest = () => {
      // ---- filesystem ----
      if (mntNew) {
        buildMounts(p, o, {
          userNs: userNew || joined.includes("user"),
          root,
          pidNew: isNew("pid"),
          childFds,
          pty: ptyInside,
          detached,
          ...(gate ? { publish } : {}),
        });
      }
      // the mounts are written: the child runs them while we write the rest
      publish();
      mark("spawn: mount steps");
      // ---- uts, net, limits ----
      if (isNew("uts")) {
        p.sethostname(o.hostname ?? "sandbox");
        if (o.domainname !== undefined) p.setdomainname(o.domainname);
      } else if (o.hostname !== undefined || o.domainname !== undefined) {
        throw new TypeError("hostname/domainname need a new uts namespace");
      }
      if (isNew("net")) p.loopbackUp();
      for (const [name, v] of Object.entries(o.rlimits ?? {})) {
        if (v === undefined) continue;
        const lim = typeof v === "number" ? { soft: v, hard: v } : v;
        p.setrlimit(name as RlimitName, lim);
      }

      // ---- the command's own process ----
      let ptySlave: StepArg | null = null;
      if (ptyInside) {
        const size = typeof o.pty === "object" ? o.pty : { rows: 24, cols: 80 };
        ({ master: ptyMaster, slave: ptySlave } = ptyInSandbox(p, size));
        p.syncPoint();
      }
      mark("spawn: uts, net, rlimit steps");
      ptySlave = stdioSteps(p, o, {
        parentEnds,
        childFds,
        ...(ptySlave === null ? {} : { ptySlave }),
        ...(stdio ? { fds: stdio } : {}),
      });
      mark("spawn: stdio steps");
      let extraFds: StepArg[] = extraFdsOf(o);
      if (useInit) {
        // the init's child runs the rest, from the init's small address space
        const copies = appendInitTail(p, [
          ...extraFds,
          ...(ptySlave === null ? [] : [ptySlave]),
        ]);
        extraFds = copies.slice(0, extraFds.length);
        if (ptySlave !== null) ptySlave = copies[extraFds.length]!;
        if (pdeath !== false) {
          p.prctl(Prctl.PR_SET_PDEATHSIG, signalNumber(pdeath), 0, 0, 0, {
            label: "prctl(PR_SET_PDEATHSIG)",
          });
        }
      }
      commandSteps(p, o, {
        root,
        hardening,
        inUserNs: userNew || joined.includes("user"),
        useInit,
        parentEnds,
        childFds,
        ptySlave,
        extraFds,
      });

      if (sibling) {
        // the first process: done once its successor exists
        p.parentContinues(sibling.step);
        p.syscall("exit_group", [0], { label: "exit_group(0)" });
      }
      mark("spawn: init and command steps");
    };
    if (!early) rest();
    const clone = viaClone
      ? CLONE_NS.filter((n) =>
        isNew(n) && !(n === "mnt" && template !== null) &&
        (!early || n === "user" || n === "pid")
      )
        .reduce((f, n) => f | NAMESPACE_FLAGS[n], 0)
      : 0;
    if (o.beforeStart) await o.beforeStart();
    program = null;
    const box = await launch(p, {
      ...(gate
        ? {
          afterClone: () => {
            try {
              rest();
              // the whole program is written: let the child go on
              openGate();
            } finally {
              gate!.close();
            }
          },
        }
        : {}),
      namespaces: clone,
      setup: hooks,
      ...(o.whileStarting ? { whileStarting: o.whileStarting } : {}),
      init: useInit,
      ...(sibling ? { sibling: sibling.pidAddress } : {}),
    }, {
      childFds,
      stdin: parentEnds.stdin ?? null,
      stdout: parentEnds.stdout ?? null,
      stderr: parentEnds.stderr ?? null,
      pty: parentEnds.pty ?? null,
      ...(ptyInside ? { ptyFrom: () => ptyMaster! } : {}),
      cleanup,
    });
    SPAWNED.set(box, {
      ...(o.user ? { user: o.user } : {}),
      capabilities: hardening.capabilities ?? "all",
      seccomp: hardening.seccomp ?? false,
      noNewPrivs: o.noNewPrivs ?? true,
      cgroups: cgroupDirs(o.cgroup),
    });
    return box;
  } catch (e) {
    // never ran (launch takes it over): its memory is kept for the next program
    gate?.close();
    if (program !== null) recycleProgram(program);
    if (program !== null) {
      for (const f of childFds) f.close();
      for (const f of Object.values(parentEnds)) f?.close();
      await cleanup.disposeAsync();
    }
    throw e;
  }
}

/**
 * Opens a pty in the sandbox's own devpts (/dev/pts/ptmx, after pivot_root): unlocked, sized,
 * and its slave through TIOCGPTPEER, so `tty` inside names it (/dev/pts/0). The master stays
 * close-on-exec in the child; the parent takes it with pidfd_getfd at the next sync point.
 */
function ptyInSandbox(
  p: Program,
  size: { rows: number; cols: number },
): { master: StepResult; slave: StepResult } {
  for (const [k, v] of Object.entries(size)) {
    if (!Number.isInteger(v) || v < 1 || v > 0xffff) {
      throw new RangeError(`Invalid pty ${k}: ${v}`);
    }
  }
  const master = p.open("/dev/pts/ptmx", {
    flags: OpenFlag.O_RDWR | OpenFlag.O_NOCTTY,
    label: 'open("/dev/pts/ptmx")',
  });
  p.ioctl(master, 0x40045431, p.alloc(4), { label: "ioctl(TIOCSPTLCK)" });
  const ws = new Uint8Array(8);
  const v = new DataView(ws.buffer);
  v.setUint16(0, size.rows, true);
  v.setUint16(2, size.cols, true);
  p.ioctl(master, 0x5414, p.bytes(ws), { label: "ioctl(TIOCSWINSZ)" });
  const slave = p.ioctl(
    master,
    0x5441,
    OpenFlag.O_RDWR | OpenFlag.O_NOCTTY,
    { label: "ioctl(TIOCGPTPEER)" },
  );
  return { master, slave };
}

/** The cgroup directories of a `cgroup` option. */
export function cgroupDirs(cg: SpawnOptions["cgroup"]): readonly string[] {
  if (cg === undefined) return [];
  const dirs = typeof cg === "string" ? [cg] : cg.paths;
  for (const d of dirs) checkPath(d, "cgroup directory");
  return dirs;
}

function mapText(m: readonly IdMap[]): string {
  return m.map((x) => `${x.inside} ${x.outside} ${x.count}\n`).join("");
}

/** Writes the child's uid/gid maps from the parent: directly as root, else newuidmap/newgidmap. */
function parentMapWriter(
  uidMap: readonly IdMap[],
  gidMap: readonly IdMap[],
  root: boolean,
): SetupHook {
  return ({ pid }) => {
    if (!root) return newIdMaps(pid, uidMap, gidMap);
    // two tiny writes: synchronous, the child waits on them anyway
    Deno.writeTextFileSync(`/proc/${pid}/uid_map`, mapText(uidMap));
    Deno.writeTextFileSync(`/proc/${pid}/gid_map`, mapText(gidMap));
    return undefined;
  };
}

/** Has newuidmap/newgidmap (setuid, checking /etc/subuid and /etc/subgid) write the maps. */
async function newIdMaps(
  pid: number,
  uidMap: readonly IdMap[],
  gidMap: readonly IdMap[],
): Promise<void> {
  for (
    const [tool, m] of [["newuidmap", uidMap], ["newgidmap", gidMap]] as const
  ) {
    const args = [
      String(pid),
      ...m.flatMap((
        x,
      ) => [String(x.inside), String(x.outside), String(x.count)]),
    ];
    let out: Deno.CommandOutput;
    try {
      out = await new Deno.Command(setuidTool(tool), {
        args,
        stdout: "null",
        stderr: "piped",
      }).output();
    } catch (e) {
      throw new SandboxSetupError({
        step: `${tool}(${pid})`,
        errno: 2,
        hint:
          `multi-range id maps need ${tool} (Debian package uidmap) and /etc/subuid, /etc/subgid entries: ${
            (e as Error).message
          }`,
      });
    }
    if (!out.success) {
      throw new SandboxSetupError({
        step: `${tool}(${pid})`,
        errno: 1,
        hint: new TextDecoder().decode(out.stderr).trim() ||
          "check /etc/subuid and /etc/subgid",
      });
    }
  }
}

/**
 * Where a setuid helper (newuidmap) is: on our PATH, else in the system directories (a caller
 * with a cleared environment has no PATH).
 */
function setuidTool(name: string): string {
  const path = Deno.env.get("PATH") ?? "";
  const dirs = [...path.split(":"), "/usr/bin", "/usr/sbin", "/bin", "/sbin"];
  for (const d of dirs.filter((d) => d.startsWith("/"))) {
    if (isFile(`${d}/${name}`)) return `${d}/${name}`;
  }
  return name;
}

function isFile(p: string): boolean {
  try {
    return Deno.statSync(p).isFile;
  } catch {
    return false;
  }
}

const STAGING = ["/tmp", "/mnt", "/media", "/run", "/srv", "/opt", "/boot"];

/** A host directory to mount the new root over (in our mount namespace) that hides no bind source. */
function stagingDir(o: RootSpec): string {
  const sources = (o.mounts ?? []).flatMap((m) =>
    m.type === "bind" ? [m.source] : []
  );
  const under = (dir: string, path: string) =>
    path === dir || path.startsWith(dir + "/");
  const R = STAGING.find((d) =>
    !sources.some((src) => under(d, src) || under(src, d)) && isHostDir(d)
  );
  if (!R) {
    throw new TypeError(
      "Cannot stage the new root: every staging directory holds a bind source",
    );
  }
  return R;
}

function overlayDirs(r: OverlayRootfs): string[] {
  const { lower, upper, work } = r.overlay;
  return [...lower, ...(upper ? [upper] : []), ...(work ? [work] : [])];
}

/** Checks an overlay root's shape before anything runs (TypeError/RangeError). */
function checkOverlay(r: OverlayRootfs): void {
  const ov = r.overlay;
  if (
    typeof ov !== "object" || ov === null || !Array.isArray(ov.lower) ||
    ov.lower.length === 0
  ) {
    throw new TypeError(
      "Invalid overlay rootfs: lower must be a non-empty array of directories",
    );
  }
  if ((ov.upper === undefined) !== (ov.work === undefined)) {
    throw new TypeError(
      "Invalid overlay rootfs: upper and work go together (or neither, read-only)",
    );
  }
  for (const d of overlayDirs(r)) {
    checkPath(d, "overlay directory");
    if (/[,:\\]/.test(d)) {
      throw new TypeError(
        `Invalid overlay directory: holds ',', ':' or '\\': ${q(d)}`,
      );
    }
  }
  const len = overlayData(r, true).length;
  if (len > 4000) {
    throw new RangeError(
      `Invalid overlay rootfs: ${len} bytes of mount data (the limit is one page)`,
    );
  }
}

function overlayData(r: OverlayRootfs, userxattr: boolean): string {
  const { lower, upper, work } = r.overlay;
  return [
    `lowerdir=${lower.join(":")}`,
    ...(upper && work ? [`upperdir=${upper}`, `workdir=${work}`] : []),
    ...(userxattr ? ["userxattr"] : []),
  ].join(",");
}

/** Throws a `SandboxSetupError` naming `what` (a rootfs, an overlay layer) unless `d` is a directory. */
function mustBeDir(d: string, what: string): void {
  let isDir = false;
  try {
    isDir = Deno.statSync(d).isDirectory;
  } catch (e) {
    throw new SandboxSetupError({
      step: `rootfs(${q(d)})`,
      errno: (e as { code?: string }).code === "EACCES" ? 13 : 2,
      path: d,
      hint: `${what} must be an existing directory`,
    });
  }
  if (!isDir) {
    throw new SandboxSetupError({
      step: `rootfs(${q(d)})`,
      errno: 20,
      path: d,
      hint: `${what} must be a directory`,
    });
  }
}

/** A directory (not a symlink to one) on the host; statx, so no Date is built (no time zone load). */
function isHostDir(d: string): boolean {
  try {
    const st = statxat(At.AT_FDCWD, d);
    return st !== null && (st.mode & FileType.S_IFMT) === FileType.S_IFDIR;
  } catch {
    return false;
  }
}

interface MountContext {
  userNs: boolean;
  root: boolean;
  pidNew: boolean;
  childFds: OwnedFd[];
  /** A pty is opened in the sandbox's devpts. */
  pty?: boolean;
  /** Bind sources already cloned (open_tree) by an earlier step: attached with move_mount. */
  detached?: ReadonlyMap<MountSpec, StepResult>;
  /** Lets a waiting child run the steps written so far (the early start's gates). */
  publish?: () => void;
}

/** The `RootTemplate` a rootfs option names, or null. */
function templateOf(rootfs: SpawnOptions["rootfs"]): RootTemplate | null {
  return typeof rootfs === "object" && rootfs !== null &&
      "namespaceFd" in rootfs
    ? rootfs
    : null;
}

/** open_tree(2) and move_mount(2) flags (linux/mount.h, linux/fcntl.h). */
const OPEN_TREE_CLONE = 1;
const AT_RECURSIVE = 0x8000;
const MOVE_MOUNT_F_EMPTY_PATH = 0x4;

const {
  MS_BIND,
  MS_REC,
  MS_RDONLY,
  MS_NOSUID,
  MS_NODEV,
  MS_NOEXEC,
  MS_REMOUNT,
  MS_PRIVATE,
} = MountFlag;

/** User mounts of a kernel file system: the mount point's mode, the flags and the data. */
const KERNEL_FS_MOUNTS: Record<
  "proc" | "sysfs" | "mqueue" | "devpts",
  { mode: number; flags: number; data?: string }
> = {
  proc: { mode: 0o555, flags: MS_NOSUID | MS_NODEV | MS_NOEXEC },
  sysfs: { mode: 0o555, flags: MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY },
  mqueue: { mode: 0o755, flags: MS_NOSUID | MS_NODEV | MS_NOEXEC },
  devpts: {
    mode: 0o755,
    flags: MS_NOSUID | MS_NOEXEC,
    data: "newinstance,ptmxmode=0666,mode=0620",
  },
};

/** A read-only bind of a host path: bind, then remount read-only keeping its locked flags. */
function roBind(
  p: Program,
  source: string,
  target: string,
  hostPath: string,
  recursive = true,
  flags: number = mountFlagsOf(hostPath),
): void {
  const bind = MS_BIND | (recursive ? MS_REC : 0);
  // the same label as mount's own when the source is the host path: made only if asked for
  p.mount(
    source,
    target,
    source === hostPath
      ? { flags: bind }
      : { flags: bind, label: `mount(${q(hostPath)}, ${q(target)})` },
  );
  p.mount(null, target, {
    flags: MS_REMOUNT | MS_BIND | MS_RDONLY | flags,
    label: `mount(${q(target)}, "remount,ro")`,
  });
}

let statusFile: Deno.FsFile | null = null;
const statusBuf = new Uint8Array(8192);

/**
 * The signals this process ignores (SIG_IGN: a disposition every thread shares), from SigIgn
 * in /proc/self/status, read again for each sandbox (another part of the program may change
 * a disposition at any time) through one fd kept open: a read at offset 0 makes the kernel
 * write the file afresh, without an open and a close each time.
 */
function ignoredSignals(): number[] {
  if (statusFile === null) {
    // a fresh fd reads from the start: no seek the first time
    statusFile = Deno.openSync("/proc/self/status");
  } else {
    statusFile.seekSync(0, Deno.SeekMode.Start);
  }
  const bytes = statusBuf.subarray(0, statusFile.readSync(statusBuf) ?? 0);
  // The line is found by its bytes, not in a decoded text: a first TextDecoder.decode costs
  // a fresh process ~0.1 ms. The kernel writes the mask as 16 hex digits, read as two 32-bit
  // halves (no regex, no BigInt per bit: a fresh process runs this once, uncompiled).
  const at = sigIgnAt(bytes);
  let high = -1, low = -1;
  if (at >= 0 && bytes.length >= at + 16) {
    // each half is valid when it reads back the same: lowercase hex, no sign, no prefix
    const h = String.fromCharCode(...bytes.subarray(at, at + 8));
    const l = String.fromCharCode(...bytes.subarray(at + 8, at + 16));
    high = parseInt(h, 16);
    low = parseInt(l, 16);
    if (!(hexOf(high) === h && hexOf(low) === l)) high = low = -1;
  }
  if (high < 0 || low < 0) return Array.from({ length: 64 }, (_, i) => i + 1);
  // only the set bits, lowest first (a process ignores a signal or two)
  const out: number[] = [];
  for (; low !== 0; low &= low - 1) out.push(32 - Math.clz32(low & -low));
  for (; high !== 0; high &= high - 1) out.push(64 - Math.clz32(high & -high));
  return out;
}

/** Where the value of the first "\nSigIgn:\t" of `b` starts, or -1. */
function sigIgnAt(b: Uint8Array): number {
  // "I" is rare in /proc/self/status: each one is checked against the whole key
  for (let i = b.indexOf(0x49, 4); i >= 0; i = b.indexOf(0x49, i + 1)) {
    if (
      b[i - 4] === 0x0a && b[i - 3] === 0x53 && b[i - 2] === 0x69 &&
      b[i - 1] === 0x67 && b[i + 1] === 0x67 && b[i + 2] === 0x6e &&
      b[i + 3] === 0x3a && b[i + 4] === 0x09
    ) return i + 5;
  }
  return -1;
}

/** `n` (0 to 2^32-1) as 8 lowercase hex digits; not a valid half for NaN or a negative. */
function hexOf(n: number): string {
  return n >= 0 ? n.toString(16).padStart(8, "0") : "";
}

/** What a root is built from: the part of `SpawnOptions` that a `RootTemplate` takes too. */
export type RootSpec = Pick<
  SpawnOptions,
  "rootfs" | "mounts" | "cacheDir" | "readOnly"
>;

/** Whether one of the user's mounts goes exactly at `target` (then no default one goes there). */
function covered(o: RootSpec, target: string): boolean {
  return (o.mounts ?? []).some((m) => m.target === target);
}

/**
 * The mounts of a sandbox copied from a `RootTemplate`: its root is in place already, so only
 * what is per sandbox is made (/proc, a private /tmp and /dev/shm, a devpts for a pty, the
 * user's mounts, masks).
 */
function templateMounts(
  p: Program,
  o: SpawnOptions,
  cx: MountContext,
): void {
  p.mount("proc", "/proc", {
    type: "proc",
    flags: MS_NOSUID | MS_NODEV | MS_NOEXEC,
  });
  if (!covered(o, "/tmp")) {
    p.mount("tmpfs", "/tmp", {
      type: "tmpfs",
      flags: MS_NOSUID | MS_NODEV,
      data: "mode=1777",
    });
  }
  if (!covered(o, "/dev/shm")) {
    p.mount("tmpfs", "/dev/shm", {
      type: "tmpfs",
      flags: MS_NOSUID | MS_NODEV,
      data: "mode=1777",
    });
  }
  if (cx.pty) {
    p.mount("devpts", "/dev/pts", {
      type: "devpts",
      flags: MS_NOSUID | MS_NOEXEC,
      data: "newinstance,ptmxmode=0666,mode=0620,gid=5",
    });
  }
  userMounts(p, o, "", cx.detached);
  masksAndReadonlyPaths(p, o);
}

/**
 * Steps that build a root at a staging directory and enter it (the part of `buildMounts` a
 * `RootTemplate` does once): `/proc` and `/dev/shm` stay empty mount points, `dirs` are made
 * as empty directories, the root ends read-only (superblock of the host view's tmpfs and
 * /dev included), and the old root is detached.
 */
export function templateRootSteps(
  p: Program,
  o: RootSpec,
  dirs: readonly string[],
  childFds: OwnedFd[],
): void {
  const cx = { userNs: false, root: true, pidNew: false, childFds };
  const R = stageRoot(p, o, cx, false);
  const dev = `${R}/dev`;
  devMounts(p, dev, cx, { pts: false, shm: false });
  for (const d of dirs) p.mkdir(join(R, d), 0o755, { mayFail: true });
  userMounts(p, o, R);
  // nothing a sandbox does may reach the next one: the shared tmpfs are read-only at the
  // superblock (no remount of a mount makes them writable), and every mount is read-only
  for (const t of o.rootfs === undefined ? [R, dev] : [dev]) {
    p.mount(null, t, {
      flags: MS_REMOUNT | MS_RDONLY | MS_NOSUID |
        (t === dev ? MS_NOEXEC : MS_NODEV),
      label: `mount(${q(t)}, "remount,ro")`,
    });
  }
  p.mount(null, dev, {
    flags: MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NOEXEC,
    label: 'mount("/dev", "remount,ro")',
  });
  readOnlyRoot(p, o, R, true);
  enterRoot(p, R);
}

function buildMounts(p: Program, o: SpawnOptions, cx: MountContext): void {
  const template = templateOf(o.rootfs);
  if (template !== null) {
    return templateMounts(p, o, cx);
  }
  const R = stageRoot(p, o, cx, !covered(o, "/tmp"));
  cx.publish?.();
  // /proc
  if (cx.pidNew) {
    p.mount("proc", `${R}/proc`, {
      type: "proc",
      flags: MS_NOSUID | MS_NODEV | MS_NOEXEC,
    });
  } else {
    p.mount("/proc", `${R}/proc`, { flags: MS_BIND | MS_REC });
  }
  devMounts(p, `${R}/dev`, cx, { pts: true, shm: !covered(o, "/dev/shm") });
  mark("spawn: /proc and /dev steps");
  userMounts(p, o, R);
  readOnlyRoot(p, o, R, o.readOnly ?? false);
  mark("spawn: user mount steps");
  enterRoot(p, R);
  cx.publish?.();
  masksAndReadonlyPaths(p, o);
}

/** Private propagation, then the root assembled at a staging directory, whose path it returns. */
function stageRoot(
  p: Program,
  o: RootSpec,
  cx: MountContext,
  tmp: boolean,
): string {
  p.mount(null, "/", {
    flags: MS_REC | MS_PRIVATE,
    label: 'mount("/", "rprivate")',
  });
  let R: string;
  const rootfs = o.rootfs as string | OverlayRootfs | undefined;
  if (typeof rootfs === "object") {
    const ov = rootfs.overlay;
    for (const d of overlayDirs(rootfs)) mustBeDir(d, "an overlay layer");
    R = stagingDir(o);
    const data = overlayData(rootfs, ov.userxattr ?? cx.userNs);
    p.mount("overlay", R, {
      type: "overlay",
      data,
      label: `mount("overlay", ${q(ov.lower[0]!)}${
        ov.upper ? ", " + q(ov.upper) : ""
      })`,
      path: ov.upper ?? ov.lower[0]!,
    });
    p.mkdir(`${R}/proc`, 0o555, { mayFail: true });
    p.mkdir(`${R}/dev`, 0o755, { mayFail: true });
  } else if (rootfs !== undefined) {
    mustBeDir(rootfs, "the rootfs");
    R = rootfs;
    p.mount(R, R, {
      flags: MS_BIND | MS_REC,
      label: `mount(${q(R)}, rbind)`,
      path: R,
    });
    p.mkdir(`${R}/proc`, 0o555, { mayFail: true });
    p.mkdir(`${R}/dev`, 0o755, { mayFail: true });
  } else {
    // a fresh tmpfs over a host directory that hides none of the bind sources
    R = stagingDir(o);
    p.mount("tmpfs", R, {
      type: "tmpfs",
      flags: MS_NOSUID | MS_NODEV,
      data: "mode=0755",
      label: "mount(tmpfs, new root)",
    });
    mark("spawn: new root staged");
    hostView(p, R, {
      roBind,
      tmp,
      ...(o.cacheDir !== undefined ? { cacheDir: o.cacheDir } : {}),
    });
    mark("spawn: host view steps");
  }
  return R;
}

/** A minimal /dev at `dev`: a tmpfs with the usual nodes and links, devpts and /dev/shm on request. */
function devMounts(
  p: Program,
  dev: string,
  cx: MountContext,
  want: { pts: boolean; shm: boolean },
): void {
  const devNodesByMknod = cx.root && !cx.userNs;
  p.mount("tmpfs", dev, {
    type: "tmpfs",
    flags: MS_NOSUID | MS_NOEXEC,
    data: "mode=0755,size=65536k",
  });
  const nodes: [string, number, number][] = [
    ["null", 1, 3],
    ["zero", 1, 5],
    ["full", 1, 7],
    ["random", 1, 8],
    ["urandom", 1, 9],
    ["tty", 5, 0],
  ];
  // Device nodes get their exact modes (0666), not the caller's umask; the umask is restored
  // right after so the command inherits the caller's.
  const umask = p.syscall("umask", [0], { label: "umask(0)" });
  for (const [name, major, minor] of nodes) {
    if (devNodesByMknod) {
      p.mknod(`${dev}/${name}`, 0o20666, BigInt((major << 8) | minor));
    } else {
      p.open(`${dev}/${name}`, {
        flags: OpenFlag.O_CREAT | OpenFlag.O_WRONLY,
        mode: 0o666,
        label: `create(${q(dev + "/" + name)})`,
      });
      p.mount(`/dev/${name}`, `${dev}/${name}`, { flags: MS_BIND });
    }
  }
  p.mkdir(`${dev}/pts`);
  p.mkdir(`${dev}/shm`, 0o1777);
  p.syscall("umask", [umask], { label: "umask(restore)" });
  if (want.pts) {
    p.mount("devpts", `${dev}/pts`, {
      type: "devpts",
      flags: MS_NOSUID | MS_NOEXEC,
      data: cx.userNs
        ? "newinstance,ptmxmode=0666,mode=0620"
        : "newinstance,ptmxmode=0666,mode=0620,gid=5",
    });
  }
  if (want.shm) {
    p.mount("tmpfs", `${dev}/shm`, {
      type: "tmpfs",
      flags: MS_NOSUID | MS_NODEV,
      data: "mode=1777",
    });
  }
  p.symlink("pts/ptmx", `${dev}/ptmx`);
  p.symlink("/proc/self/fd", `${dev}/fd`);
  p.symlink("/proc/self/fd/0", `${dev}/stdin`);
  p.symlink("/proc/self/fd/1", `${dev}/stdout`);
  p.symlink("/proc/self/fd/2", `${dev}/stderr`);
}

/** The user's mounts, in order, at their targets below `R` (the new root, or "" once inside it). */
function userMounts(
  p: Program,
  o: RootSpec,
  R: string,
  detached?: ReadonlyMap<MountSpec, StepResult>,
): void {
  for (const m of o.mounts ?? []) {
    checkPath(m.target, "mount target");
    const t = R === "" ? m.target : join(R, m.target);
    switch (m.type) {
      case "bind": {
        checkPath(m.source, "bind source");
        let isDir: boolean;
        try {
          isDir = Deno.statSync(m.source).isDirectory;
        } catch {
          throw new SandboxSetupError({
            step: `bind(${q(m.source)})`,
            errno: 2,
            path: m.source,
            hint: "the bind source must exist",
          });
        }
        if (isDir) p.mkdir(t, 0o755, { mayFail: true });
        else {p.open(t, {
            flags: OpenFlag.O_CREAT | OpenFlag.O_WRONLY,
            mode: 0o644,
            mayFail: true,
            label: `create(${q(t)})`,
          });}
        const src = m.source;
        const clone = detached?.get(m);
        if (clone !== undefined) {
          p.syscall("move_mount", [
            clone,
            p.string(""),
            At.AT_FDCWD,
            p.string(t),
            MOVE_MOUNT_F_EMPTY_PATH,
          ], { label: `move_mount(${q(m.source)}, ${q(t)})`, path: t });
          p.close(clone, { mayFail: true });
          if (m.readOnly) {
            p.mount(null, t, {
              flags: MS_REMOUNT | MS_BIND | MS_RDONLY | mountFlagsOf(m.source),
              label: `mount(${q(t)}, "remount,ro")`,
            });
          }
        } else if (m.readOnly) roBind(p, src, t, m.source, m.recursive ?? true);
        else {p.mount(src, t, {
            flags: MS_BIND | ((m.recursive ?? true) ? MS_REC : 0),
            label: `mount(${q(m.source)}, ${q(t)})`,
            path: m.source,
          });}
        break;
      }
      case "detached": {
        p.mkdir(t, 0o755, { mayFail: true });
        p.syscall("move_mount", [
          m.fd,
          p.string(""),
          At.AT_FDCWD,
          p.string(t),
          MOVE_MOUNT_F_EMPTY_PATH,
        ], { label: `move_mount(fd ${m.fd}, ${q(t)})`, path: t });
        break;
      }
      case "tmpfs": {
        p.mkdir(t, 0o755, { mayFail: true });
        const data = [`mode=${(m.mode ?? 0o755).toString(8)}`];
        if (m.size !== undefined) data.push(`size=${m.size}`);
        p.mount("tmpfs", t, {
          type: "tmpfs",
          flags: MS_NOSUID | MS_NODEV | (m.readOnly ? MS_RDONLY : 0),
          data: data.join(","),
        });
        break;
      }
      case "proc":
      case "sysfs":
      case "mqueue":
      case "devpts": {
        const { mode, ...mountOptions } = KERNEL_FS_MOUNTS[m.type];
        p.mkdir(t, mode, { mayFail: true });
        p.mount(m.type, t, { type: m.type, ...mountOptions });
        break;
      }
      default:
        throw new TypeError(
          `Unknown mount type: ${q((m as { type: string }).type)}`,
        );
    }
  }
}

/** The root read-only: the default host view always, a rootfs when `readOnly`. */
function readOnlyRoot(
  p: Program,
  o: RootSpec,
  R: string,
  readOnly: boolean,
): void {
  if (o.rootfs === undefined) {
    p.mount(null, R, {
      flags: MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV,
      label: 'mount("/", "remount,ro")',
    });
  } else if (readOnly) {
    // an overlay is our own mount: no locked flags to keep
    const keep = typeof o.rootfs === "string" ? mountFlagsOf(o.rootfs) : 0;
    p.mount(null, R, {
      flags: MS_REMOUNT | MS_BIND | MS_RDONLY | keep,
      label: 'mount("/", "remount,ro")',
    });
  }
}

/** Into the new root; the old one is detached. */
function enterRoot(p: Program, R: string): void {
  p.chdir(R);
  p.pivotRoot(".", ".", { label: `pivot_root(${q(R)})`, path: R });
  p.umount(".", { detach: true, label: "umount2(old root)" });
  p.chdir("/");
}

function masksAndReadonlyPaths(p: Program, o: SpawnOptions): void {
  // Masks: one empty read-only tmpfs, bound over every directory known to be there (a bind
  // costs less than a new superblock, here and at teardown); /dev/null over the files
  let maskDir: string | null = null;
  for (const path of o.maskedPaths ?? DEFAULT_MASKED_PATHS) {
    const kind = kindInside(path, o);
    if (kind === "dir" && maskDir !== null) {
      p.mount(maskDir, path, {
        flags: MS_BIND,
        label: `mount(${q(path)}, "mask")`,
      });
    } else if (kind === "dir" || kind === "unknown") {
      // a known directory must be masked (later binds take this tmpfs as their source)
      p.mount("tmpfs", path, {
        type: "tmpfs",
        flags: MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
        data: "size=0,mode=0555",
        label: `mount(${q(path)}, "mask")`,
        mayFail: kind === "unknown",
      });
      if (kind === "dir") maskDir = path;
    }
    if (kind === "file" || kind === "unknown") {
      p.mount("/dev/null", path, {
        flags: MS_BIND,
        label: `mount(${q(path)}, "mask")`,
        mayFail: kind === "unknown",
      });
    }
  }
  for (const path of o.readonlyPaths ?? DEFAULT_READONLY_PATHS) {
    if (kindInside(path, o) === "absent") continue;
    p.mount(path, path, {
      flags: MS_BIND | MS_REC,
      label: `mount(${q(path)}, "bind")`,
    });
    p.mount(null, path, {
      flags: MS_REMOUNT | MS_BIND | MS_RDONLY | roFlagsInside(path, o.rootfs),
      label: `mount(${q(path)}, "remount,ro")`,
    });
  }
}

/**
 * What `path` is inside the sandbox, judged from the host before anything runs: /proc is this
 * kernel's procfs (so the host's /proc tells), /sys exists only under a sysfs mount, a path
 * at or below a mount target may be anything, and the rest is the rootfs's (or the host
 * view's) own. "absent" paths are skipped.
 */
function kindInside(
  path: string,
  o: SpawnOptions,
): "file" | "dir" | "absent" | "unknown" {
  const under = (dir: string) => path === dir || path.startsWith(dir + "/");
  const mounted = (o.mounts ?? []).filter((m) => under(m.target));
  const last = mounted[mounted.length - 1];
  if (last) {
    if (last.type === "proc" && last.target === "/proc") {
      return kernelKind(path);
    }
    if (last.type === "sysfs" && last.target === "/sys") {
      return kernelKind(path);
    }
    if (last.type === "bind") {
      return statKind(last.source + path.slice(last.target.length));
    }
    return "unknown";
  }
  if (under("/proc")) return kernelKind(path);
  if (under("/dev")) return "unknown";
  // without a sysfs mount, /sys is the rootfs's own directory (the host view has none)
  if (typeof o.rootfs === "string") return statKind(join(o.rootfs, path));
  if (templateOf(o.rootfs) !== null) return "unknown";
  if (typeof o.rootfs === "object") {
    // the top-most layer holding the path decides (whiteouts aside)
    const { upper, lower } = (o.rootfs as OverlayRootfs).overlay;
    for (const d of [...(upper ? [upper] : []), ...lower]) {
      const k = statKind(join(d, path));
      if (k !== "absent") return k;
    }
    return "absent";
  }
  if (under("/sys")) return "absent";
  // the host view holds a subset of the host's paths: absent there is absent inside
  return statKind(path) === "absent" ? "absent" : "unknown";
}

/**
 * What is at `host` (following a final symlink). One statx tells for all but a symlink, where
 * Deno.statSync follows it (it also builds Date objects, which is slower on first use).
 */
function statKind(host: string): "file" | "dir" | "absent" {
  try {
    const st = statxat(At.AT_FDCWD, host);
    if (st === null) return "absent";
    const type = st.mode & FileType.S_IFMT;
    if (type === FileType.S_IFDIR) return "dir";
    if (type !== FileType.S_IFLNK) return "file";
  } catch { /* EACCES and the like: Deno.statSync says the same, as before */ }
  try {
    return Deno.statSync(host).isDirectory ? "dir" : "file";
  } catch {
    return "absent";
  }
}

const kernelKinds = new Map<string, "file" | "dir" | "absent">();

/**
 * What a /proc or /sys path is: the sandbox's procfs and sysfs come from this kernel, so the
 * host's tell, and they do not change while we run (cached: spawn judges the same few paths
 * each time).
 */
/** Whether this process's /proc is a full procfs (checked once, with the first kind asked). */
let fullProc: boolean | null = null;

function kernelKind(path: string): "file" | "dir" | "absent" {
  let k = kernelKinds.get(path);
  if (k === undefined) {
    // Only a full procfs tells: under one mounted with subset=pid, /proc/sys and the rest
    // look absent, and would be left unmasked and writable in the sandbox's own /proc.
    if (fullProc === null) {
      const sys = statKind("/proc/sys");
      fullProc = sys === "dir";
      // one statx tells both: /proc/sys is also a read-only path
      if (fullProc) kernelKinds.set("/proc/sys", sys);
    }
    if (!fullProc) {
      throw new SandboxSetupError({
        step: 'statx("/proc/sys")',
        errno: 2,
        path: "/proc/sys",
        hint:
          "this process's /proc is not a full procfs (mounted with subset=pid?): the sandbox's /proc could not be masked and made read-only where it must be; run where /proc is a full procfs",
      });
    }
    kernelKinds.set(path, k = kernelKinds.get(path) ?? statKind(path));
  }
  return k;
}

/** The locked flags of a path inside the sandbox: /proc and /sys are ours, others the rootfs's. */
function roFlagsInside(
  path: string,
  rootfs: SpawnOptions["rootfs"],
): number {
  if (
    path === "/proc" || path.startsWith("/proc/") || path.startsWith("/sys")
  ) return MS_NOSUID | MS_NODEV | MS_NOEXEC;
  if (typeof rootfs === "object") return 0;
  try {
    return mountFlagsOf(rootfs === undefined ? path : join(rootfs, path));
  } catch {
    return 0;
  }
}

/**
 * PR_SET_PDEATHSIG, then a zero-timeout ppoll on the lifeline pipe (whose write end only the
 * parent holds): if the parent died before the signal was armed, the step fails.
 */
function lifelineSteps(p: Program, signal: SignalName): void {
  p.prctl(Prctl.PR_SET_PDEATHSIG, signalNumber(signal), 0, 0, 0, {
    label: "prctl(PR_SET_PDEATHSIG)",
  });
  const pfd = new Uint8Array(8);
  const pv = new DataView(pfd.buffer);
  pv.setInt32(0, lifelinePipe().read.fd, true);
  pv.setInt16(4, 0x1, true); // POLLIN
  p.syscall("ppoll", [p.bytes(pfd), 1, p.bytes(new Uint8Array(16)), 0, 8], {
    label: "ppoll(lifeline)",
    expect: 0,
  });
}

/** What the command's steps need to know. */
export interface CommandContext {
  root: boolean;
  /** The command's filter and capabilities (null: none / keep all). */
  hardening: {
    capabilities: CapabilityMasks | null;
    seccomp: Uint8Array | null;
  };
  inUserNs: boolean;
  useInit: boolean;
  parentEnds: {
    stdin?: OwnedFd | null;
    stdout?: OwnedFd | null;
    stderr?: OwnedFd | null;
    pty?: OwnedFd | null;
  };
  childFds: OwnedFd[];
}

/** The options shared by `spawn()` and `exec()` that shape the command's own process. */
export type CommandOptions = Pick<
  SpawnOptions,
  | "argv"
  | "env"
  | "cwd"
  | "user"
  | "noNewPrivs"
  | "parentDeathSignal"
  | "newSession"
  | "stdin"
  | "stdout"
  | "stderr"
  | "extraFds"
  | "pty"
  | "seccomp"
  | "capabilities"
>;

/**
 * Appends the steps that give the command its stdio (fds 0-2: pipes, /dev/null, our fds, a pty
 * slave) and makes the parent's ends. With an init they run before its exec, so the init's
 * child inherits them. Returns the pty slave (to become the controlling terminal) or null.
 * Internal to the engine (spawn and exec).
 */
/** The parent-side fds of a command's stdio, made before any of its steps. */
export interface StdioFds {
  /** A pty slave opened here (no devpts of the sandbox's own), or null. */
  slave: number | null;
  /** The fd to put at 0, 1, 2. */
  slots: [fd: number, slot: number][];
}

/** Makes the parent-side fds of the command's stdio (pipes, /dev/null, a pty, copies). */
export function stdioFds(
  o: CommandOptions,
  cx: Pick<CommandContext, "parentEnds" | "childFds"> & {
    /** The pty is opened by the program, inside the sandbox. */
    ptyInside?: boolean;
  },
): StdioFds {
  const { parentEnds, childFds } = cx;
  const slots: [Stdio | undefined, number][] = [[o.stdin, 0], [o.stdout, 1], [
    o.stderr,
    2,
  ]];
  let slave: number | null = null;
  if (o.pty && !cx.ptyInside) {
    const size = typeof o.pty === "object" ? o.pty : { rows: 24, cols: 80 };
    const pty = openPty(size);
    parentEnds.pty = pty.master;
    const s = fdAtLeast(pty.slave, 5);
    childFds.push(s);
    slave = s.fd;
  }
  const out: [number, number][] = [];
  for (const [s, slot] of slots) {
    if (s === undefined || s === "inherit") continue;
    let fd: number;
    if (s === "null") {
      fd = nullFd().fd;
    } else if (s === "pipe") {
      const pp = pipe();
      const [mine, theirs] = slot === 0
        ? [pp.write, pp.read]
        : [pp.read, pp.write];
      parentEnds[(["stdin", "stdout", "stderr"] as const)[slot]!] = mine;
      const t = fdAtLeast(theirs, 5);
      childFds.push(t);
      fd = t.fd;
    } else if (typeof s === "number" && Number.isInteger(s) && s >= 0) {
      const copy = fdAtLeast(dup(s), 5);
      childFds.push(copy);
      fd = copy.fd;
    } else {
      throw new TypeError(`Invalid stdio: ${q(s)}`);
    }
    out.push([fd, slot]);
  }
  return { slave, slots: out };
}

/**
 * The command's stdio steps: the pty slave on the slots left to it, then each slot's fd
 * (made by `stdioFds`, here unless given). Returns the pty slave, if any.
 */
export function stdioSteps(
  p: Program,
  o: CommandOptions,
  cx: Pick<CommandContext, "parentEnds" | "childFds"> & {
    /** A pty slave the program opened itself (inside the sandbox's devpts). */
    ptySlave?: StepArg;
    /** The fds, made before (by `stdioFds`). */
    fds?: StdioFds;
  },
): StepArg | null {
  const fds = cx.fds ??
    stdioFds(o, { ...cx, ptyInside: cx.ptySlave !== undefined });
  let slave: StepArg | null = null;
  if (o.pty) {
    slave = cx.ptySlave ?? fds.slave;
    const given = [o.stdin, o.stdout, o.stderr];
    for (let i = 0; i < 3; i++) {
      if (given[i] === undefined && slave !== null) p.dup3(slave, i);
    }
  }
  for (const [fd, slot] of fds.slots) p.dup3(fd, slot);
  return slave;
}

/** Checks `extraFds` (our fds to pass as the child's 3, 4, ...). */
export function extraFdsOf(o: CommandOptions): number[] {
  const extra = [...(o.extraFds ?? [])];
  for (const fd of extra) {
    if (!Number.isInteger(fd) || fd < 0) {
      throw new TypeError(`Invalid extra fd: ${fd}`);
    }
  }
  return extra;
}

/**
 * Appends the command's own steps after its stdio: controlling terminal, extra fds,
 * credentials, capabilities, no_new_privs, cwd, signals, seccomp, execve. With an init they
 * run in the init's child. Internal to the engine (spawn and exec).
 */
export function commandSteps(
  p: Program,
  o: CommandOptions,
  cx: CommandContext & {
    /** The pty slave from `stdioSteps` (or its copy that survived the init's exec). */
    ptySlave: StepArg | null;
    /** The fds to pass as 3, 4, ... (our numbers, or copies that survived the init's exec). */
    extraFds: readonly StepArg[];
  },
): void {
  const { root, useInit } = cx;
  if (cx.ptySlave !== null) {
    if (useInit || !(o.newSession ?? true)) p.setsid();
    p.ioctl(cx.ptySlave, 0x540e, /* TIOCSCTTY */ 0, {
      label: "ioctl(TIOCSCTTY)",
    });
  }
  const extra = cx.extraFds;
  const tmp: StepResult[] = [];
  for (const fd of extra) {
    tmp.push(
      p.syscall("fcntl", [fd, 1030, /* F_DUPFD_CLOEXEC */ 3 + extra.length], {
        label: `fcntl(extra fd ${typeof fd === "number" ? fd : "copy"})`,
      }),
    );
  }
  tmp.forEach((t, i) => p.dup3(t, 3 + i));
  p.closeRange(3 + extra.length, 0xffffffff, 4, /* CLOSE_RANGE_CLOEXEC */ {
    label: "close_range(CLOSE_RANGE_CLOEXEC)",
  });

  // credentials, capabilities, no_new_privs
  const inUserNs = cx.inUserNs;
  // without a user namespace an unprivileged caller holds no capabilities to drop (and may
  // not touch its bounding set); inside one the command starts with all of them
  const caps = root || inUserNs ? cx.hardening.capabilities : null;
  const uid = o.user?.uid, gid = o.user?.gid;
  if (uid !== undefined) checkId(uid, "uid");
  if (gid !== undefined) checkId(gid, "gid");
  if (o.user?.groups) {
    o.user.groups.forEach((g) => checkId(g, "group"));
    p.setgroups(o.user.groups);
  } else if (root) {
    p.setgroups([], { mayFail: inUserNs });
  }
  if (caps) {
    const last = lastCapability();
    // the mask as two 32-bit halves: no BigInt per capability
    const low = Number(caps.bounding & 0xffffffffn);
    const high = Number((caps.bounding >> 32n) & 0xffffffffn);
    for (let c = 0; c <= last; c++) {
      const kept = c < 32
        ? (low >>> c) & 1
        : c < 64
        ? (high >>> (c - 32)) & 1
        : 0;
      if (!kept) {
        p.prctl(Prctl.PR_CAPBSET_DROP, c, 0, 0, 0, {
          label: `prctl(PR_CAPBSET_DROP, ${c})`,
        });
      }
    }
    if (uid !== undefined && uid !== 0) {
      p.prctl(Prctl.PR_SET_KEEPCAPS, 1, 0, 0, 0, {
        label: "prctl(PR_SET_KEEPCAPS)",
      });
    }
  }
  if (gid !== undefined) p.setresgid(gid);
  if (uid !== undefined) p.setresuid(uid);
  if (caps) {
    p.capset(caps);
    p.prctl(Prctl.PR_CAP_AMBIENT, Prctl.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0, {
      label: "prctl(PR_CAP_AMBIENT_CLEAR_ALL)",
    });
  }
  if (o.noNewPrivs ?? true) {
    p.prctl(Prctl.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0, {
      label: "prctl(PR_SET_NO_NEW_PRIVS)",
    });
  }
  p.chdir(o.cwd ?? "/");
  // After the init's execve, a handled signal is back to SIG_DFL; only an ignored one stays
  // ignored (as it was here), so only those need a reset in the init's child.
  p.resetSignals(useInit ? ignoredSignals() : undefined);
  p.setSignalMask(0n);
  if (cx.hardening.seccomp) p.seccomp(cx.hardening.seccomp);

  // execve, with a PATH search for a bare command name
  const env = o.env ?? {};
  const cmd = o.argv[0]!;
  if (cmd.includes("/")) {
    p.execve(cmd, o.argv, env);
  } else {
    const dirs = (env.PATH ?? DEFAULT_PATH).split(":").filter((d) =>
      d.startsWith("/")
    );
    if (dirs.length === 0) {
      throw new TypeError(
        `Cannot find ${q(cmd)}: PATH has no absolute directory`,
      );
    }
    dirs.forEach((d, i) =>
      p.execve(`${d.replace(/\/$/, "")}/${cmd}`, o.argv, env, {
        label: `execve(${q(cmd)})`,
        path: cmd,
        mayFail: i < dirs.length - 1,
      })
    );
  }
}
