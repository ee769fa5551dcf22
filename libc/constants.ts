/**
 * Kernel constants under their kernel names, grouped as the man pages group them. Values are
 * the same on x86_64 and aarch64 unless a comment says otherwise.
 * @module
 */

/** clone(2) / unshare(2) flags. */
export const CloneFlag = {
  CLONE_VM: 0x00000100,
  CLONE_FS: 0x00000200,
  CLONE_FILES: 0x00000400,
  CLONE_SIGHAND: 0x00000800,
  CLONE_PIDFD: 0x00001000,
  CLONE_VFORK: 0x00004000,
  CLONE_PARENT: 0x00008000,
  CLONE_THREAD: 0x00010000,
  CLONE_NEWNS: 0x00020000,
  CLONE_SYSVSEM: 0x00040000,
  CLONE_SETTLS: 0x00080000,
  CLONE_NEWCGROUP: 0x02000000,
  CLONE_NEWUTS: 0x04000000,
  CLONE_NEWIPC: 0x08000000,
  CLONE_NEWUSER: 0x10000000,
  CLONE_NEWPID: 0x20000000,
  CLONE_NEWNET: 0x40000000,
  CLONE_NEWTIME: 0x00000080,
  CLONE_INTO_CGROUP: 0x200000000,
} as const;

/** A namespace kind, as `/proc/PID/ns/<name>` names it. */
export type NamespaceName =
  | "user"
  | "mnt"
  | "pid"
  | "uts"
  | "ipc"
  | "net"
  | "cgroup"
  | "time";

/** The clone flag of each namespace kind. */
export const NAMESPACE_FLAGS: Readonly<Record<NamespaceName, number>> = {
  user: CloneFlag.CLONE_NEWUSER,
  mnt: CloneFlag.CLONE_NEWNS,
  pid: CloneFlag.CLONE_NEWPID,
  uts: CloneFlag.CLONE_NEWUTS,
  ipc: CloneFlag.CLONE_NEWIPC,
  net: CloneFlag.CLONE_NEWNET,
  cgroup: CloneFlag.CLONE_NEWCGROUP,
  time: CloneFlag.CLONE_NEWTIME,
};

/** mount(2) flags. */
export const MountFlag = {
  MS_RDONLY: 1,
  MS_NOSUID: 2,
  MS_NODEV: 4,
  MS_NOEXEC: 8,
  MS_SYNCHRONOUS: 16,
  MS_REMOUNT: 32,
  MS_MANDLOCK: 64,
  MS_DIRSYNC: 128,
  MS_NOSYMFOLLOW: 256,
  MS_NOATIME: 1024,
  MS_NODIRATIME: 2048,
  MS_BIND: 4096,
  MS_MOVE: 8192,
  MS_REC: 16384,
  MS_SILENT: 32768,
  MS_UNBINDABLE: 1 << 17,
  MS_PRIVATE: 1 << 18,
  MS_SLAVE: 1 << 19,
  MS_SHARED: 1 << 20,
  MS_RELATIME: 1 << 21,
  MS_STRICTATIME: 1 << 24,
  MS_LAZYTIME: 1 << 25,
} as const;

/** umount2(2) flags. */
export const UmountFlag = {
  MNT_FORCE: 1,
  MNT_DETACH: 2,
  MNT_EXPIRE: 4,
  UMOUNT_NOFOLLOW: 8,
} as const;

/** open(2) flags (x86_64 and aarch64 differ for O_DIRECTORY, O_NOFOLLOW, O_DIRECT, O_LARGEFILE). */
export const OpenFlag = {
  O_RDONLY: 0,
  O_WRONLY: 1,
  O_RDWR: 2,
  O_CREAT: 0o100,
  O_EXCL: 0o200,
  O_NOCTTY: 0o400,
  O_TRUNC: 0o1000,
  O_APPEND: 0o2000,
  O_NONBLOCK: 0o4000,
  O_DIRECTORY: Deno.build.arch === "aarch64" ? 0o40000 : 0o200000,
  O_NOFOLLOW: Deno.build.arch === "aarch64" ? 0o100000 : 0o400000,
  O_CLOEXEC: 0o2000000,
  O_PATH: 0o10000000,
} as const;

/** `AT_*` values for the *at(2) calls. */
export const At = {
  AT_FDCWD: -100,
  AT_SYMLINK_NOFOLLOW: 0x100,
  AT_REMOVEDIR: 0x200,
  AT_SYMLINK_FOLLOW: 0x400,
  AT_EMPTY_PATH: 0x1000,
} as const;

/** Signal numbers (the same on x86_64 and aarch64). */
export const Signal = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGILL: 4,
  SIGTRAP: 5,
  SIGABRT: 6,
  SIGBUS: 7,
  SIGFPE: 8,
  SIGKILL: 9,
  SIGUSR1: 10,
  SIGSEGV: 11,
  SIGUSR2: 12,
  SIGPIPE: 13,
  SIGALRM: 14,
  SIGTERM: 15,
  SIGSTKFLT: 16,
  SIGCHLD: 17,
  SIGCONT: 18,
  SIGSTOP: 19,
  SIGTSTP: 20,
  SIGTTIN: 21,
  SIGTTOU: 22,
  SIGURG: 23,
  SIGXCPU: 24,
  SIGXFSZ: 25,
  SIGVTALRM: 26,
  SIGPROF: 27,
  SIGWINCH: 28,
  SIGIO: 29,
  SIGPWR: 30,
  SIGSYS: 31,
} as const;

/** A signal name (`"SIGTERM"`). */
export type SignalName = keyof typeof Signal;

/** getrlimit(2) resources. */
export const Rlimit = {
  RLIMIT_CPU: 0,
  RLIMIT_FSIZE: 1,
  RLIMIT_DATA: 2,
  RLIMIT_STACK: 3,
  RLIMIT_CORE: 4,
  RLIMIT_RSS: 5,
  RLIMIT_NPROC: 6,
  RLIMIT_NOFILE: 7,
  RLIMIT_MEMLOCK: 8,
  RLIMIT_AS: 9,
  RLIMIT_LOCKS: 10,
  RLIMIT_SIGPENDING: 11,
  RLIMIT_MSGQUEUE: 12,
  RLIMIT_NICE: 13,
  RLIMIT_RTPRIO: 14,
  RLIMIT_RTTIME: 15,
} as const;

/** An rlimit name without its prefix, lower case (`"nofile"`). */
export type RlimitName = Lowercase<
  keyof typeof Rlimit extends `RLIMIT_${infer N}` ? N : never
>;

/** RLIM_INFINITY as the kernel sees it. */
export const RLIM_INFINITY = 0xffffffffffffffffn;

/** prctl(2) options. */
export const Prctl = {
  PR_SET_PDEATHSIG: 1,
  PR_GET_PDEATHSIG: 2,
  PR_GET_DUMPABLE: 3,
  PR_SET_DUMPABLE: 4,
  PR_SET_KEEPCAPS: 8,
  PR_SET_NAME: 15,
  PR_GET_NAME: 16,
  PR_GET_SECCOMP: 21,
  PR_SET_SECCOMP: 22,
  PR_CAPBSET_READ: 23,
  PR_CAPBSET_DROP: 24,
  PR_GET_SECUREBITS: 27,
  PR_SET_SECUREBITS: 28,
  PR_SET_CHILD_SUBREAPER: 36,
  PR_GET_CHILD_SUBREAPER: 37,
  PR_SET_NO_NEW_PRIVS: 38,
  PR_GET_NO_NEW_PRIVS: 39,
  PR_CAP_AMBIENT: 47,
  PR_CAP_AMBIENT_RAISE: 2,
  PR_CAP_AMBIENT_LOWER: 3,
  PR_CAP_AMBIENT_CLEAR_ALL: 4,
} as const;

/** mmap(2) protections and flags. */
export const Mmap = {
  PROT_NONE: 0,
  PROT_READ: 1,
  PROT_WRITE: 2,
  PROT_EXEC: 4,
  MAP_SHARED: 0x01,
  MAP_PRIVATE: 0x02,
  MAP_ANONYMOUS: 0x20,
  MAP_NORESERVE: 0x4000,
  MAP_STACK: 0x20000,
} as const;

/** waitid(2) id types and options. */
export const Wait = {
  P_ALL: 0,
  P_PID: 1,
  P_PGID: 2,
  P_PIDFD: 3,
  WNOHANG: 1,
  WSTOPPED: 2,
  WEXITED: 4,
  WCONTINUED: 8,
  WNOWAIT: 0x01000000,
  __WALL: 0x40000000,
  CLD_EXITED: 1,
  CLD_KILLED: 2,
  CLD_DUMPED: 3,
  CLD_TRAPPED: 4,
  CLD_STOPPED: 5,
  CLD_CONTINUED: 6,
} as const;

/** fcntl(2) commands and flags. */
export const Fcntl = {
  F_DUPFD: 0,
  F_GETFD: 1,
  F_SETFD: 2,
  F_GETFL: 3,
  F_SETFL: 4,
  F_DUPFD_CLOEXEC: 1030,
  FD_CLOEXEC: 1,
} as const;
