/**
 * Immediate, in-process wrappers for what a parent process does to itself. Each mirrors its
 * syscall, checks arguments before the call and turns a failure into a `SyscallError`.
 *
 * Namespace calls (`unshare`, `setns`) act on the calling thread only: Deno is
 * multi-threaded, so the JS main thread moves while Deno's I/O threads stay behind. A
 * sandbox is never built on them (see `denobox/sandbox`); they are for short, synchronous
 * work on the main thread, such as opening a netlink socket inside another network namespace.
 * @module
 */
import { libc } from "./_ffi.ts";
import { check, checkBig } from "./_check.ts";
import { cstr } from "./memory.ts";
import { OwnedFd } from "./fd.ts";
import {
  At,
  MountFlag,
  NAMESPACE_FLAGS,
  type NamespaceName,
  OpenFlag,
  RLIM_INFINITY,
  Rlimit,
  type RlimitName,
  Signal,
  type SignalName,
  UmountFlag,
} from "./constants.ts";
import { RLIMIT } from "./struct.ts";
import { syscallNumber } from "./syscall.ts";

const NULL = null as unknown as Uint8Array<ArrayBuffer>;

/** A mount option name, as mount(8) spells it. */
export type MountOption =
  | "ro"
  | "nosuid"
  | "nodev"
  | "noexec"
  | "bind"
  | "rbind"
  | "remount"
  | "move"
  | "private"
  | "rprivate"
  | "slave"
  | "rslave"
  | "shared"
  | "rshared"
  | "unbindable"
  | "runbindable"
  | "noatime"
  | "nodiratime"
  | "relatime"
  | "strictatime"
  | "nosymfollow"
  | "silent";

const MOUNT_OPTIONS: Readonly<Record<MountOption, number>> = {
  ro: MountFlag.MS_RDONLY,
  nosuid: MountFlag.MS_NOSUID,
  nodev: MountFlag.MS_NODEV,
  noexec: MountFlag.MS_NOEXEC,
  bind: MountFlag.MS_BIND,
  rbind: MountFlag.MS_BIND | MountFlag.MS_REC,
  remount: MountFlag.MS_REMOUNT,
  move: MountFlag.MS_MOVE,
  private: MountFlag.MS_PRIVATE,
  rprivate: MountFlag.MS_PRIVATE | MountFlag.MS_REC,
  slave: MountFlag.MS_SLAVE,
  rslave: MountFlag.MS_SLAVE | MountFlag.MS_REC,
  shared: MountFlag.MS_SHARED,
  rshared: MountFlag.MS_SHARED | MountFlag.MS_REC,
  unbindable: MountFlag.MS_UNBINDABLE,
  runbindable: MountFlag.MS_UNBINDABLE | MountFlag.MS_REC,
  noatime: MountFlag.MS_NOATIME,
  nodiratime: MountFlag.MS_NODIRATIME,
  relatime: MountFlag.MS_RELATIME,
  strictatime: MountFlag.MS_STRICTATIME,
  nosymfollow: MountFlag.MS_NOSYMFOLLOW,
  silent: MountFlag.MS_SILENT,
};

/**
 * The `MS_*` bits of a list of mount options (`["rbind", "ro"]`). Unknown names are a
 * `TypeError`.
 *
 * @example
 * ```ts
 * import { mountFlags } from "denobox/libc";
 * console.log(mountFlags(["bind", "ro"])); // 4097
 * ```
 */
export function mountFlags(options: readonly MountOption[]): number {
  let flags = 0;
  for (const o of options) {
    const f = MOUNT_OPTIONS[o];
    if (f === undefined) throw new TypeError(`Unknown mount option: ${o}`);
    flags |= f;
  }
  return flags;
}

/** Options of `mount()`. */
export interface MountOptions {
  /** Filesystem type (`"proc"`, `"tmpfs"`, `"overlay"`); omitted for bind, move, remount. */
  type?: string;
  /** Option names or raw `MS_*` bits. */
  flags?: readonly MountOption[] | number;
  /** Filesystem-specific data (`"size=64m,mode=755"`). */
  data?: string;
}

/**
 * mount(2) on this process's mount namespace (the calling thread's, see the module note).
 *
 * @throws {SyscallError} `ENOENT` when the target is missing, `EPERM` without CAP_SYS_ADMIN.
 * @example Mount a tmpfs
 * ```ts ignore
 * import { mount, umount } from "denobox/libc";
 * mount("tmpfs", "/mnt", { type: "tmpfs", data: "size=16m" });
 * umount("/mnt");
 * ```
 */
export function mount(
  source: string | null,
  target: string,
  options: MountOptions = {},
): void {
  const flags = typeof options.flags === "number"
    ? options.flags
    : mountFlags(options.flags ?? []);
  const src = source === null ? NULL : cstr(source, "mount source");
  const tgt = cstr(target, "mount target");
  const type = options.type === undefined
    ? NULL
    : cstr(options.type, "filesystem type");
  const data = options.data === undefined
    ? NULL
    : cstr(options.data, "mount data");
  const info = source === null || options.type !== undefined
    ? { path: target }
    : { path: source, dest: target };
  check(libc.mount(src, tgt, type, BigInt(flags), data), "mount", info);
}

/**
 * umount2(2). `detach` is MNT_DETACH (lazy), `force` is MNT_FORCE.
 *
 * @example
 * ```ts ignore
 * import { umount } from "denobox/libc";
 * umount("/mnt", { detach: true });
 * ```
 */
export function umount(
  target: string,
  options: { detach?: boolean; force?: boolean; noFollow?: boolean } = {},
): void {
  const flags = (options.detach ? UmountFlag.MNT_DETACH : 0) |
    (options.force ? UmountFlag.MNT_FORCE : 0) |
    (options.noFollow ? UmountFlag.UMOUNT_NOFOLLOW : 0);
  check(libc.umount2(cstr(target, "umount target"), flags), "umount2", {
    path: target,
  });
}

function nameBytes(name: string, what: string): Uint8Array<ArrayBuffer> {
  const bytes = cstr(name, what);
  // 64 = __NEW_UTS_LEN
  if (bytes.length - 1 > 64 || bytes.length === 1) {
    throw new RangeError(`Invalid ${what}: must be 1 to 64 bytes: ${name}`);
  }
  return bytes;
}

/**
 * sethostname(2) in the calling thread's UTS namespace.
 *
 * @example
 * ```ts ignore
 * import { sethostname, unshare } from "denobox/libc";
 * unshare(["uts"]);
 * sethostname("box");
 * ```
 */
export function sethostname(name: string): void {
  const b = nameBytes(name, "hostname");
  check(libc.sethostname(b, BigInt(b.length - 1)), "sethostname", {
    detail: JSON.stringify(name),
  });
}

/**
 * setdomainname(2) in the calling thread's UTS namespace.
 *
 * @example
 * ```ts ignore
 * import { setdomainname } from "denobox/libc";
 * setdomainname("example");
 * ```
 */
export function setdomainname(name: string): void {
  const b = nameBytes(name, "domain name");
  check(libc.setdomainname(b, BigInt(b.length - 1)), "setdomainname", {
    detail: JSON.stringify(name),
  });
}

/** The clone flags of a list of namespace names. */
export function namespaceFlags(namespaces: readonly NamespaceName[]): number {
  let flags = 0;
  for (const ns of namespaces) {
    const f = NAMESPACE_FLAGS[ns];
    if (f === undefined) throw new TypeError(`Unknown namespace: ${ns}`);
    flags |= f;
  }
  return flags;
}

/**
 * unshare(2) for the calling thread only. Deno is multi-threaded: `"user"` always fails with
 * EINVAL, and the other namespaces move just the JS main thread (synchronous calls and
 * children spawned from it see the new namespace; async I/O running on Deno's worker threads
 * does not). Build sandboxes with `spawn()` instead.
 *
 * @example A private mount namespace for the main thread
 * ```ts ignore
 * import { unshare } from "denobox/libc";
 * unshare(["mnt"]);
 * ```
 */
export function unshare(namespaces: readonly NamespaceName[] | number): void {
  const flags = typeof namespaces === "number"
    ? namespaces
    : namespaceFlags(namespaces);
  try {
    check(libc.unshare(flags), "unshare", {
      detail: typeof namespaces === "number"
        ? `0x${flags.toString(16)}`
        : namespaces.join(","),
    });
  } catch (e) {
    if (
      e instanceof Error && "code" in e && e.code === "EINVAL" &&
      (flags & NAMESPACE_FLAGS.user)
    ) {
      throw (e as import("./error.ts").SyscallError).withHint(
        "a multi-threaded process (Deno always is) cannot enter a new user namespace; use spawn() with the user namespace",
      );
    }
    throw e;
  }
}

/**
 * setns(2) for the calling thread only (see `unshare`). `fd` is a namespace fd
 * (`/proc/PID/ns/net`) or a pidfd; `nstype` restricts the kind (0: any).
 *
 * @example Enter another network namespace and come back
 * ```ts ignore
 * import { open, setns } from "denobox/libc";
 * using mine = open("/proc/self/ns/net");
 * using other = open("/run/netns/test");
 * setns(other.fd, ["net"]);
 * // ... synchronous work in that namespace ...
 * setns(mine.fd, ["net"]);
 * ```
 */
export function setns(
  fd: number,
  nstype: readonly NamespaceName[] | number = 0,
): void {
  const flags = typeof nstype === "number" ? nstype : namespaceFlags(nstype);
  check(libc.setns(fd, flags), "setns", { detail: `fd ${fd}` });
}

/** Options of `open()`. */
export interface OpenOptions {
  /** Raw `O_*` flags; O_CLOEXEC is always added. Default O_RDONLY. */
  flags?: number;
  /** Mode for O_CREAT. Default 0o644. */
  mode?: number;
  /** Directory fd that a relative path starts from. Default: the working directory. */
  dirFd?: number;
}

/**
 * openat(2), always with O_CLOEXEC; returns an owned fd.
 *
 * @example
 * ```ts
 * import { open } from "denobox/libc";
 * using fd = open("/proc/self/ns/net");
 * console.log(fd.fd > 2); // true
 * ```
 */
export function open(path: string, options: OpenOptions = {}): OwnedFd {
  const fd = check(
    libc.openat(
      options.dirFd ?? At.AT_FDCWD,
      cstr(path, "path"),
      (options.flags ?? OpenFlag.O_RDONLY) | OpenFlag.O_CLOEXEC,
      options.mode ?? 0o644,
    ),
    "open",
    { path },
  );
  return new OwnedFd(fd);
}

/** Both ends of a pipe. Disposing closes whichever ends are still owned. */
export interface Pipe extends Disposable {
  /** The read end. */
  read: OwnedFd;
  /** The write end. */
  write: OwnedFd;
}

/**
 * pipe2(2), O_CLOEXEC unless `cloexec: false`.
 *
 * @example
 * ```ts
 * import { pipe } from "denobox/libc";
 * using p = pipe();
 * console.log(p.read.fd !== p.write.fd); // true
 * ```
 */
export function pipe(
  options: { cloexec?: boolean; nonblock?: boolean } = {},
): Pipe {
  const fds = new Int32Array(2);
  const flags = (options.cloexec === false ? 0 : OpenFlag.O_CLOEXEC) |
    (options.nonblock ? OpenFlag.O_NONBLOCK : 0);
  check(libc.pipe2(fds, flags), "pipe2");
  const read = new OwnedFd(fds[0]!), write = new OwnedFd(fds[1]!);
  return {
    read,
    write,
    [Symbol.dispose]() {
      read.close();
      write.close();
    },
  };
}

/**
 * dup(2) with O_CLOEXEC (F_DUPFD_CLOEXEC); returns an owned fd.
 *
 * @example
 * ```ts
 * import { dup } from "denobox/libc";
 * using copy = dup(1);
 * console.log(copy.fd > 2); // true
 * ```
 */
export function dup(fd: number): OwnedFd {
  // F_DUPFD_CLOEXEC = 1030
  return new OwnedFd(
    check(libc.fcntl(fd, 1030, 0n), "fcntl(F_DUPFD_CLOEXEC)", {
      detail: `fd ${fd}`,
    }),
  );
}

/**
 * dup3(2): makes `newFd` a copy of `oldFd` (closing what `newFd` was).
 *
 * @example
 * ```ts ignore
 * import { dup3 } from "denobox/libc";
 * dup3(5, 0);
 * ```
 */
export function dup3(
  oldFd: number,
  newFd: number,
  options: { cloexec?: boolean } = {},
): void {
  check(
    libc.dup3(oldFd, newFd, options.cloexec ? OpenFlag.O_CLOEXEC : 0),
    "dup3",
    { detail: `fd ${oldFd} to ${newFd}` },
  );
}

/**
 * read(2) into `buf`; returns the byte count (0 at end of file). Blocks the calling thread:
 * use it on fds known to be ready, or use `OwnedFd.toFsFile()` for streams.
 *
 * @example
 * ```ts
 * import { pipe, read, write } from "denobox/libc";
 * using p = pipe();
 * write(p.write.fd, new Uint8Array([42]));
 * const buf = new Uint8Array(1);
 * console.log(read(p.read.fd, buf), buf[0]); // 1 42
 * ```
 */
export function read(fd: number, buf: Uint8Array<ArrayBuffer>): number {
  return Number(
    checkBig(libc.read(fd, buf, BigInt(buf.length)), "read", {
      detail: `fd ${fd}`,
    }),
  );
}

/**
 * write(2) of `data`; returns the byte count written.
 *
 * @example
 * ```ts
 * import { pipe, write } from "denobox/libc";
 * using p = pipe();
 * console.log(write(p.write.fd, new TextEncoder().encode("hi"))); // 2
 * ```
 */
export function write(fd: number, data: Uint8Array<ArrayBuffer>): number {
  return Number(
    checkBig(libc.write(fd, data, BigInt(data.length)), "write", {
      detail: `fd ${fd}`,
    }),
  );
}

/** Resolves a signal given by name or number; bad values are a `RangeError`. */
export function signalNumber(signal: SignalName | number): number {
  const n = typeof signal === "number" ? signal : Signal[signal];
  if (n === undefined || !Number.isInteger(n) || n < 0 || n > 64) {
    throw new RangeError(`Invalid signal: ${signal}`);
  }
  return n;
}

/**
 * pidfd_open(2): a descriptor that refers to process `pid` for as long as it is open, with no
 * PID-reuse race. Readable (pollable) once the process has exited.
 *
 * @example
 * ```ts
 * import { pidfdOpen } from "denobox/libc";
 * using fd = pidfdOpen(Deno.pid);
 * console.log(fd.fd > 2); // true
 * ```
 */
export function pidfdOpen(pid: number): OwnedFd {
  if (!Number.isInteger(pid) || pid <= 0) {
    throw new RangeError(`Invalid pid: ${pid}`);
  }
  const fd = checkBig(
    libc.syscall2(BigInt(syscallNumber("pidfd_open")), BigInt(pid), 0n),
    "pidfd_open",
    { detail: `pid ${pid}` },
  );
  return new OwnedFd(Number(fd));
}

/**
 * pidfd_send_signal(2): signals the process a pidfd refers to.
 *
 * @example
 * ```ts ignore
 * import { pidfdOpen, pidfdSendSignal } from "denobox/libc";
 * using fd = pidfdOpen(1234);
 * pidfdSendSignal(fd.fd, "SIGTERM");
 * ```
 */
export function pidfdSendSignal(
  pidfd: number,
  signal: SignalName | number,
): void {
  const sig = signalNumber(signal);
  checkBig(
    libc.syscall4(
      BigInt(syscallNumber("pidfd_send_signal")),
      BigInt(pidfd),
      BigInt(sig),
      0n,
      0n,
    ),
    "pidfd_send_signal",
    { detail: `pidfd ${pidfd}, signal ${sig}` },
  );
}

/**
 * prctl(2) on the calling thread (most options are per-thread: PR_SET_PDEATHSIG,
 * PR_SET_NO_NEW_PRIVS, PR_SET_NAME). Returns the call's result.
 *
 * @example Read no_new_privs
 * ```ts
 * import { Prctl, prctl } from "denobox/libc";
 * console.log(prctl(Prctl.PR_GET_NO_NEW_PRIVS) >= 0); // true
 * ```
 */
export function prctl(
  option: number,
  arg2: number | bigint = 0,
  arg3: number | bigint = 0,
  arg4: number | bigint = 0,
  arg5: number | bigint = 0,
): number {
  return check(
    libc.prctl(option, BigInt(arg2), BigInt(arg3), BigInt(arg4), BigInt(arg5)),
    "prctl",
    { detail: `option ${option}` },
  );
}

/** A resource limit; `Infinity` stands for RLIM_INFINITY. */
export interface ResourceLimit {
  /** The soft limit, enforced. */
  soft: number;
  /** The hard limit, the ceiling for the soft one. */
  hard: number;
}

function rlimitResource(resource: RlimitName): number {
  const n = (Rlimit as Record<string, number>)[
    `RLIMIT_${resource.toUpperCase()}`
  ];
  if (n === undefined) throw new RangeError(`Unknown rlimit: ${resource}`);
  return n;
}

const toRlim = (v: number): bigint =>
  v === Infinity ? RLIM_INFINITY : BigInt(v);
const fromRlim = (v: bigint): number =>
  v === RLIM_INFINITY ? Infinity : Number(v);

/**
 * getrlimit(2) (through prlimit) of `pid` (default: this process).
 *
 * @example
 * ```ts
 * import { getrlimit } from "denobox/libc";
 * const { soft, hard } = getrlimit("nofile");
 * console.log(soft <= hard); // true
 * ```
 */
export function getrlimit(resource: RlimitName, pid = 0): ResourceLimit {
  const old = new BigUint64Array(RLIMIT.size / 8);
  check(
    libc.prlimit(
      pid,
      rlimitResource(resource),
      NULL,
      new Uint8Array(old.buffer),
    ),
    "prlimit",
    { detail: `RLIMIT_${resource.toUpperCase()}` },
  );
  return { soft: fromRlim(old[0]!), hard: fromRlim(old[1]!) };
}

/**
 * setrlimit(2) (through prlimit) of `pid` (default: this process). Values are checked
 * (non-negative integers or Infinity, soft ≤ hard) before the call.
 *
 * @throws {SyscallError} `EPERM` when raising the hard limit without CAP_SYS_RESOURCE.
 * @example
 * ```ts
 * import { getrlimit, setrlimit } from "denobox/libc";
 * const cur = getrlimit("core");
 * setrlimit("core", cur);
 * ```
 */
export function setrlimit(
  resource: RlimitName,
  limit: ResourceLimit,
  pid = 0,
): void {
  for (const v of [limit.soft, limit.hard]) {
    if (v !== Infinity && (!Number.isSafeInteger(v) || v < 0)) {
      throw new RangeError(`Invalid ${resource} limit: ${v}`);
    }
  }
  if (limit.soft > limit.hard) {
    throw new RangeError(
      `Invalid ${resource} limit: soft ${limit.soft} is above hard ${limit.hard}`,
    );
  }
  const v = new BigUint64Array([toRlim(limit.soft), toRlim(limit.hard)]);
  check(
    libc.prlimit(pid, rlimitResource(resource), new Uint8Array(v.buffer), NULL),
    "prlimit",
    { detail: `RLIMIT_${resource.toUpperCase()}` },
  );
}

/**
 * kill(2).
 *
 * @example
 * ```ts
 * import { kill } from "denobox/libc";
 * kill(Deno.pid, 0); // signal 0: only checks that the process exists
 * ```
 */
export function kill(pid: number, signal: SignalName | number): void {
  check(libc.kill(pid, signalNumber(signal)), "kill", {
    detail: `pid ${pid}`,
  });
}

/** The real and effective ids of this process. */
export function ids(): {
  uid: number;
  gid: number;
  euid: number;
  egid: number;
} {
  return {
    uid: libc.getuid(),
    gid: libc.getgid(),
    euid: libc.geteuid(),
    egid: libc.getegid(),
  };
}
