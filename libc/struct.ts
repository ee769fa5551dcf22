/**
 * C struct layouts used across the FFI boundary, written down once. `tests/struct_test.ts`
 * compiles a C probe with the machine's compiler and checks every size and offset here.
 * @module
 */
import { ARCH } from "./_ffi.ts";

/** `siginfo_t` (wait(2) fills it); size 128. */
export const SIGINFO = {
  size: 128,
  si_signo: 0,
  si_errno: 4,
  si_code: 8,
  si_pid: 16,
  si_uid: 20,
  si_status: 24,
} as const;

/** `struct rlimit`; two 64-bit values. */
export const RLIMIT = { size: 16, rlim_cur: 0, rlim_max: 8 } as const;

/** `struct sockaddr_nl` (netlink(7)). */
export const SOCKADDR_NL = {
  size: 12,
  nl_family: 0,
  nl_pid: 4,
  nl_groups: 8,
} as const;

/** `struct epoll_event`: packed on x86_64 (12 bytes), naturally aligned on aarch64 (16). */
export const EPOLL_EVENT = ARCH === "x86_64"
  ? { size: 12, events: 0, data: 4 } as const
  : { size: 16, events: 0, data: 8 } as const;

/** `struct winsize` (TIOCGWINSZ). */
export const WINSIZE = { size: 8, ws_row: 0, ws_col: 2 } as const;

/** glibc's `struct termios`. */
export const TERMIOS = { size: 60, c_lflag: 12 } as const;

/** `struct clone_args` (clone3(2), CLONE_ARGS_SIZE_VER2). */
export const CLONE_ARGS = {
  size: 88,
  flags: 0,
  pidfd: 8,
  child_tid: 16,
  parent_tid: 24,
  exit_signal: 32,
  stack: 40,
  stack_size: 48,
  tls: 56,
  set_tid: 64,
  set_tid_size: 72,
  cgroup: 80,
} as const;

/** `struct rusage` (getrusage(2)); times are `struct timeval`. */
export const RUSAGE = {
  size: 144,
  ru_utime: 0,
  ru_stime: 16,
  ru_maxrss: 32,
  ru_nvcsw: 128,
  ru_nivcsw: 136,
} as const;
