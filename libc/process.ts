/**
 * Low-level process calls for the spawn engine (`denobox/sandbox`): clone() into machine code
 * with every signal blocked around it, waitid() on a pidfd with a rusage, memfd_create(),
 * statfs() mount flags, an epoll set and pty helpers. Pointers stay in here; callers pass
 * `CArena`s and get numbers back.
 * @module
 */
import { errno, libc } from "./_ffi.ts";
import { check, checkBig } from "./_check.ts";
import { SyscallError } from "./error.ts";
import { type CArena, cstr } from "./memory.ts";
import { OwnedFd } from "./fd.ts";
import { OpenFlag, Wait } from "./constants.ts";
import { EPOLL_EVENT, RUSAGE, SIGINFO, TERMIOS, WINSIZE } from "./struct.ts";
import { syscallNumber } from "./syscall.ts";

const addr = (b: Uint8Array<ArrayBuffer>): bigint =>
  BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(b)));

const SIG_SETMASK = 2;
// glibc's sigset_t is 1024 bits.
const ALL_SIGNALS = new Uint8Array(128).fill(0xff);

/** What `cloneRoutine` starts: machine code at `entry` of `code`, on `stack`, with `arg`. */
export interface CloneRoutineOptions {
  /** Executable memory holding the routine (see `CArena.makeExecutable`). */
  code: CArena;
  /** Offset of the entry point in `code`. */
  entry: number;
  /** The child's stack (its top is used). */
  stack: CArena;
  /** The routine's argument (its program). */
  arg: CArena;
  /** clone(2) flags, exit signal in the low byte. */
  flags: number;
  /** With CLONE_PIDFD: the arena address where the kernel stores the pidfd (an int). */
  pidfdAddress?: bigint;
}

/**
 * clone(2) through glibc into machine code (no JS can run in the child), with every signal
 * blocked in the calling thread around the call so that no handler of this process runs in
 * the child before its routine resets them. Returns the child's pid.
 *
 * @throws {SyscallError} `EPERM`/`EINVAL`/`ENOSPC` from clone(2).
 * @example
 * ```ts ignore
 * import { cloneRoutine } from "denobox/libc";
 * const pid = cloneRoutine({ code, entry: 0, stack, arg: program, flags: 17 });
 * ```
 */
export function cloneRoutine(options: CloneRoutineOptions): number {
  const fn = Deno.UnsafePointer.offset(options.code.pointer, options.entry);
  const top = Deno.UnsafePointer.offset(
    options.stack.pointer,
    options.stack.size,
  );
  const ptid = options.pidfdAddress === undefined
    ? null
    : Deno.UnsafePointer.create(options.pidfdAddress);
  const old = new Uint8Array(128);
  check(libc.pthread_sigmask(SIG_SETMASK, ALL_SIGNALS, old), "pthread_sigmask");
  const pid = libc.clone(
    fn,
    top,
    options.flags,
    options.arg.pointer,
    ptid,
    null,
    null,
  );
  // read errno before the mask call below can change it
  const err = pid === -1 ? errno() : 0;
  libc.pthread_sigmask(SIG_SETMASK, old, null);
  if (pid === -1) {
    throw new SyscallError("clone", err, {
      detail: `flags 0x${options.flags.toString(16)}`,
    });
  }
  return pid;
}

/** Resource usage of a reaped process. Times in µs, maxRss in KiB. */
export interface Rusage {
  /** CPU time in user mode, µs (ru_utime). */
  userTime: number;
  /** CPU time in the kernel, µs (ru_stime). */
  sysTime: number;
  /** Peak resident set, KiB (ru_maxrss; includes what the process inherited at fork). */
  maxRss: number;
  /** Times it gave up the CPU, mostly to wait for I/O (ru_nvcsw). */
  voluntarySwitches: number;
  /** Times the scheduler took the CPU away (ru_nivcsw). */
  involuntarySwitches: number;
}

/** What `waitPidfd` reports for an exited process. */
export interface WaitResult {
  /** The process's pid. */
  pid: number;
  /** `CLD_EXITED`, `CLD_KILLED` or `CLD_DUMPED`. */
  cause: number;
  /** The exit code, or the signal number. */
  status: number;
  /** Its resource usage (including its reaped descendants). */
  rusage: Rusage;
}

/**
 * waitid(P_PIDFD, pidfd, WEXITED | WNOHANG) with a `struct rusage`, as the raw syscall (glibc's
 * wrapper has no rusage). Returns null while the process runs. Never blocks.
 *
 * @example
 * ```ts ignore
 * import { waitPidfd } from "denobox/libc";
 * const r = waitPidfd(pidfd);
 * if (r) console.log(r.status, r.rusage.maxRss);
 * ```
 */
export function waitPidfd(pidfd: number): WaitResult | null {
  const info = new Uint8Array(SIGINFO.size);
  const ru = new Uint8Array(RUSAGE.size);
  checkBig(
    libc.syscall5(
      BigInt(syscallNumber("waitid")),
      BigInt(Wait.P_PIDFD),
      BigInt(pidfd),
      addr(info),
      BigInt(Wait.WEXITED | Wait.WNOHANG),
      addr(ru),
    ),
    "waitid",
    { detail: `pidfd ${pidfd}` },
  );
  const iv = new DataView(info.buffer);
  const pid = iv.getInt32(SIGINFO.si_pid, true);
  if (pid === 0) return null;
  const rv = new DataView(ru.buffer);
  const tv = (off: number) =>
    Number(rv.getBigInt64(off, true)) * 1e6 +
    Number(rv.getBigInt64(off + 8, true));
  return {
    pid,
    cause: iv.getInt32(SIGINFO.si_code, true),
    status: iv.getInt32(SIGINFO.si_status, true),
    rusage: {
      userTime: tv(RUSAGE.ru_utime),
      sysTime: tv(RUSAGE.ru_stime),
      maxRss: Number(rv.getBigInt64(RUSAGE.ru_maxrss, true)),
      voluntarySwitches: Number(rv.getBigInt64(RUSAGE.ru_nvcsw, true)),
      involuntarySwitches: Number(rv.getBigInt64(RUSAGE.ru_nivcsw, true)),
    },
  };
}

/**
 * memfd_create(2), always close-on-exec. `exec: true` asks for MFD_EXEC where the kernel knows
 * it (6.3+), falling back to the plain call.
 *
 * @example
 * ```ts
 * import { memfdCreate } from "denobox/libc";
 * using fd = memfdCreate("scratch");
 * console.log(fd.fd > 2); // true
 * ```
 */
export function memfdCreate(
  name: string,
  options: { exec?: boolean; sealing?: boolean } = {},
): OwnedFd {
  const MFD_CLOEXEC = 1, MFD_ALLOW_SEALING = 2, MFD_EXEC = 0x10;
  const n = cstr(name, "memfd name");
  const base = MFD_CLOEXEC | (options.sealing ? MFD_ALLOW_SEALING : 0);
  const nr = BigInt(syscallNumber("memfd_create"));
  let fd = -1n;
  if (options.exec) fd = libc.syscall2(nr, addr(n), BigInt(base | MFD_EXEC));
  if (fd < 0n) {
    fd = checkBig(libc.syscall2(nr, addr(n), BigInt(base)), "memfd_create", {
      detail: name,
    });
  }
  return new OwnedFd(Number(fd));
}

/** F_ADD_SEALS with the seals that make a memfd immutable (seal, shrink, grow, write). */
export function sealMemfd(fd: number): void {
  // F_ADD_SEALS = 1033; F_SEAL_SEAL 1 | SHRINK 2 | GROW 4 | WRITE 8
  check(libc.fcntl(fd, 1033, 15n), "fcntl(F_ADD_SEALS)", {
    detail: `fd ${fd}`,
  });
}

/**
 * The `MS_*` flags of the mount holding `path` (statfs(2) f_flags: read-only, nosuid, nodev,
 * noexec and the atime mode), as a remount inside a user namespace must repeat them.
 *
 * @example
 * ```ts
 * import { mountFlagsOf } from "denobox/libc";
 * console.log(typeof mountFlagsOf("/")); // number
 * ```
 */
export function mountFlagsOf(path: string): number {
  const buf = new Uint8Array(120);
  const p = cstr(path, "path");
  checkBig(
    libc.syscall2(BigInt(syscallNumber("statfs")), addr(p), addr(buf)),
    "statfs",
    { path },
  );
  // struct statfs on 64-bit: f_flags at offset 80 (x86_64 and asm-generic alike)
  const st = Number(new DataView(buf.buffer).getBigUint64(80, true));
  // ST_RDONLY 1, NOSUID 2, NODEV 4, NOEXEC 8, NOATIME 1024, NODIRATIME 2048, RELATIME 4096
  let ms = st & (1 | 2 | 4 | 8 | 1024 | 2048);
  if (st & 4096) ms |= 1 << 21; // MS_RELATIME
  else if (!(st & 1024)) ms |= 1 << 24; // MS_STRICTATIME
  return ms;
}

/**
 * An epoll set whose waits run on Deno's blocking pool (`epoll_wait` declared nonblocking), so
 * the event loop never stalls. `data` is a 32-bit tag chosen by the caller.
 *
 * @example
 * ```ts
 * import { Epoll } from "denobox/libc";
 * using ep = new Epoll();
 * console.log(ep.fd > 2); // true
 * ```
 */
export class Epoll implements Disposable {
  #fd: OwnedFd;
  #events = new Uint8Array(EPOLL_EVENT.size * 64);

  /** epoll_create1(EPOLL_CLOEXEC). */
  constructor() {
    this.#fd = new OwnedFd(
      check(libc.epoll_create1(OpenFlag.O_CLOEXEC), "epoll_create1"),
    );
  }

  /** The epoll fd. */
  get fd(): number {
    return this.#fd.fd;
  }

  /** EPOLL_CTL_ADD of `fd` for EPOLLIN (or EPOLLOUT with `write`), tagged `data`. */
  add(fd: number, data: number, options: { write?: boolean } = {}): void {
    const ev = new Uint8Array(EPOLL_EVENT.size);
    const v = new DataView(ev.buffer);
    v.setUint32(EPOLL_EVENT.events, options.write ? 0x004 : 0x001, true); // EPOLLOUT / EPOLLIN
    v.setUint32(EPOLL_EVENT.data, data, true);
    check(libc.epoll_ctl(this.fd, 1, fd, ev), "epoll_ctl(EPOLL_CTL_ADD)", {
      detail: `fd ${fd}`,
    });
  }

  /** EPOLL_CTL_DEL of `fd`; a missing fd is fine. */
  delete(fd: number): void {
    libc.epoll_ctl(this.fd, 2, fd, new Uint8Array(EPOLL_EVENT.size));
  }

  /** The tags of the fds ready now, without waiting (epoll_wait with a zero timeout). */
  ready(): number[] {
    return this.#tags(libc.epoll_wait(this.fd, this.#events, 64, 0));
  }

  /** Waits (off the event loop) until at least one fd is ready; returns their tags. */
  async wait(): Promise<number[]> {
    return this.#tags(await libc.epoll_wait_nb(this.fd, this.#events, 64, -1));
  }

  #tags(n: number): number[] {
    const v = new DataView(this.#events.buffer);
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      out.push(v.getUint32(i * EPOLL_EVENT.size + EPOLL_EVENT.data, true));
    }
    return out;
  }

  /** Closes the set. */
  [Symbol.dispose](): void {
    this.#fd.close();
  }
}

/** An eventfd (EFD_CLOEXEC | EFD_NONBLOCK), used to wake an epoll wait. */
export function eventfd(): OwnedFd {
  return new OwnedFd(
    check(libc.eventfd(0, OpenFlag.O_CLOEXEC | OpenFlag.O_NONBLOCK), "eventfd"),
  );
}

/** Adds 1 to an eventfd's counter. */
export function eventfdSignal(fd: number): void {
  libc.write(fd, new Uint8Array(new BigUint64Array([1n]).buffer), 8n);
}

/** Drains an eventfd (nonblocking). */
export function eventfdDrain(fd: number): void {
  libc.read(fd, new Uint8Array(8), 8n);
}

/** The buffer `readNonblocking` reads into (64 KiB at first use, grown to the largest `max`). */
let readScratch = new Uint8Array(0);

/**
 * A nonblocking read(2): the bytes read, an empty array at end of file, or null when nothing
 * is there yet (EAGAIN).
 */
export function readNonblocking(fd: number, max: number): Uint8Array | null {
  // One scratch buffer for every read, and a copy of just the bytes read: a fresh buffer of
  // `max` bytes per call (most calls find nothing, or end of file) was zeroed, and then kept
  // alive whole by the subarray handed out, for the garbage collector to sweep.
  if (readScratch.length < max) {
    readScratch = new Uint8Array(Math.max(max, 65536));
  }
  const n = libc.read(fd, readScratch, BigInt(max));
  if (n < 0n) {
    const e = errno();
    if (e === 11) return null; // EAGAIN
    throw new SyscallError("read", e, { detail: `fd ${fd}` });
  }
  return readScratch.slice(0, Number(n));
}

/**
 * A nonblocking write(2): the count written, or null when the fd is full (EAGAIN).
 */
export function writeNonblocking(
  fd: number,
  data: Uint8Array<ArrayBuffer>,
): number | null {
  const n = libc.write(fd, data, BigInt(data.length));
  if (n < 0n) {
    const e = errno();
    if (e === 11) return null; // EAGAIN
    throw new SyscallError("write", e, { detail: `fd ${fd}` });
  }
  return Number(n);
}

/** O_NONBLOCK on (or off) for `fd`. */
export function setNonblocking(fd: number, on = true): void {
  const fl = check(libc.fcntl(fd, 3, 0n), "fcntl(F_GETFL)", {
    detail: `fd ${fd}`,
  });
  const next = on ? fl | OpenFlag.O_NONBLOCK : fl & ~OpenFlag.O_NONBLOCK;
  check(libc.fcntl(fd, 4, BigInt(next)), "fcntl(F_SETFL)", {
    detail: `fd ${fd}`,
  });
}

/** A pseudo-terminal pair: the master (ours) and the slave (the child's stdio). */
export interface PtyPair extends Disposable {
  /** Our end: reads what the child writes, writes its input. */
  master: OwnedFd;
  /** The child's terminal: pass it as its stdin, stdout and stderr. */
  slave: OwnedFd;
}

/**
 * posix_openpt + grantpt + unlockpt + open of the slave, both close-on-exec, with an initial
 * window size.
 *
 * @example
 * ```ts
 * import { openPty } from "denobox/libc";
 * using pty = openPty({ rows: 24, cols: 80 });
 * console.log(pty.slave.fd > 2); // true
 * ```
 */
export function openPty(
  size: { rows: number; cols: number } = { rows: 24, cols: 80 },
): PtyPair {
  const m = check(
    libc.posix_openpt(OpenFlag.O_RDWR | OpenFlag.O_NOCTTY | OpenFlag.O_CLOEXEC),
    "posix_openpt",
  );
  const master = new OwnedFd(m);
  try {
    check(libc.grantpt(m), "grantpt");
    check(libc.unlockpt(m), "unlockpt");
    const name = new Uint8Array(128);
    const r = libc.ptsname_r(m, name, 128n);
    if (r !== 0) throw new Error(`Cannot open a pty: ptsname_r failed (${r})`);
    const path = new TextDecoder().decode(name.subarray(0, name.indexOf(0)));
    const slave = new OwnedFd(check(
      libc.openat(
        -100,
        cstr(path),
        OpenFlag.O_RDWR | OpenFlag.O_NOCTTY | OpenFlag.O_CLOEXEC,
        0,
      ),
      "open",
      { path },
    ));
    setWindowSize(m, size.rows, size.cols);
    return {
      master,
      slave,
      [Symbol.dispose]() {
        master.close();
        slave.close();
      },
    };
  } catch (e) {
    master.close();
    throw e;
  }
}

/** TIOCSWINSZ: sets a terminal's rows and columns (the foreground group gets SIGWINCH). */
export function setWindowSize(fd: number, rows: number, cols: number): void {
  for (const v of [rows, cols]) {
    if (!Number.isInteger(v) || v < 1 || v > 0xffff) {
      throw new RangeError(`Invalid terminal size: ${rows}x${cols}`);
    }
  }
  const ws = new Uint8Array(WINSIZE.size);
  const v = new DataView(ws.buffer);
  v.setUint16(WINSIZE.ws_row, rows, true);
  v.setUint16(WINSIZE.ws_col, cols, true);
  check(libc.ioctl(fd, 0x5414n, ws), "ioctl(TIOCSWINSZ)", {
    detail: `fd ${fd}`,
  });
}

/**
 * Puts a terminal in raw mode (cfmakeraw); disposing the result restores what it was. For the
 * local side of an interactive sandbox (`Deno.stdin.rid` is not an fd: pass 0).
 *
 * @example
 * ```ts ignore
 * import { setRawMode } from "denobox/libc";
 * using _raw = setRawMode(0);
 * ```
 */
export function setRawMode(fd: number): Disposable {
  const saved = new Uint8Array(TERMIOS.size);
  check(libc.tcgetattr(fd, saved), "tcgetattr", { detail: `fd ${fd}` });
  const raw = saved.slice();
  libc.cfmakeraw(raw);
  check(libc.tcsetattr(fd, 0, raw), "tcsetattr", { detail: `fd ${fd}` });
  return {
    [Symbol.dispose]() {
      libc.tcsetattr(fd, 0, saved);
    },
  };
}

/** Whether `fd` is a terminal. */
export function isTerminal(fd: number): boolean {
  return libc.isatty(fd) === 1;
}

/**
 * Moves an owned fd to a number at least `min` (F_DUPFD_CLOEXEC), closing the old number.
 * Returns the same `OwnedFd` when it already is.
 */
export function fdAtLeast(fd: OwnedFd, min: number): OwnedFd {
  if (fd.fd >= min) return fd;
  // F_DUPFD_CLOEXEC = 1030
  const n = check(
    libc.fcntl(fd.fd, 1030, BigInt(min)),
    "fcntl(F_DUPFD_CLOEXEC)",
    {
      detail: `fd ${fd.fd}`,
    },
  );
  fd.close();
  return new OwnedFd(n);
}

/**
 * The running kernel's release (`uname -r`), from uname(2): unlike `Deno.osRelease()`, which
 * reads /proc/sys/kernel/osrelease, it needs no /proc (and gives "" under a /proc mounted with
 * subset=pid).
 *
 * @example The kernel release
 * ```ts
 * import { kernelRelease } from "denobox/libc";
 * console.log(/^\d+\.\d+/.test(kernelRelease())); // true
 * ```
 */
export function kernelRelease(): string {
  // struct utsname: six 65-byte fields; release is the third
  const buf = new Uint8Array(6 * 65);
  checkBig(
    libc.syscall1(BigInt(syscallNumber("uname")), addr(buf)),
    "uname",
  );
  const release = buf.subarray(2 * 65, 3 * 65);
  const end = release.indexOf(0);
  return new TextDecoder().decode(release.subarray(0, end < 0 ? 65 : end));
}
