/**
 * The shapes of a grader run: what to run under which limits (`GradeOptions`) and what came
 * out (`GradeResult`).
 * @module
 */
import type { SignalName } from "denobox/libc";

/** A size: a byte count, or a string with a binary suffix (`"64m"`, `"1.5G"`, `"512k"`). */
export type Size = number | string;

/**
 * The verdict of a run:
 * - `OK`: exited with status 0 within every limit;
 * - `RE`: exited with a non-zero status;
 * - `SG`: killed by a signal the grader did not send;
 * - `TO`: over the CPU or wall-clock limit (`GradeResult.timeout` says which);
 * - `ML`: the memory cgroup OOM-killed a process of the run;
 * - `OL`: wrote more than the output limit to stdout or stderr;
 * - `XX`: the grader failed (`GradeResult.message` says how); the run's figures mean nothing.
 */
export type GradeStatus = "OK" | "RE" | "SG" | "TO" | "ML" | "OL" | "XX";

/** A file put into the work directory before the run. */
export interface GradeFile {
  /** Path relative to the work directory (`"main.c"`, `"tests/1.in"`); no `..`, no leading `/`. */
  path: string;
  /** The content (a string is written as UTF-8). Exactly one of `data` and `source`. */
  data?: Uint8Array | string;
  /** A host file to copy (opened without following a symlink at its last component). */
  source?: string;
  /** Permission bits, default 0o644 (0o755 makes it executable). */
  mode?: number;
}

/** A host directory made visible inside the box (isolate's `--dir IN=OUT[:rw]`). */
export interface DirBinding {
  /** Where it appears inside the box (absolute). */
  inside: string;
  /** The host directory. */
  outside: string;
  /** Writable from inside; default read-only. */
  rw?: boolean;
}

/** Where a standard output stream goes. */
export type OutputTarget = "capture" | "discard" | { path: string };

/** What `grade()` runs, and under which limits. Every limit applies to the whole run. */
export interface GradeOptions {
  /** The command; `argv[0]` is absolute or looked up in the box's `PATH`. */
  argv: readonly string[];
  /**
   * The environment, exactly (nothing is inherited). Default:
   * `{ PATH: "/usr/local/bin:/usr/bin:/bin", HOME: <workDir>, LANG: "C.UTF-8" }`.
   */
  env?: Readonly<Record<string, string>>;
  /** Working directory inside the box; default the work directory. */
  cwd?: string;
  /** A host directory used as the read-only root; default a read-only view of the host. */
  rootfs?: string;
  /** CPU time limit in seconds: user + system time of every process and thread of the run. */
  timeLimit?: number;
  /**
   * Wall-clock limit in seconds. Default: `2 × timeLimit + 1` when there is a CPU limit,
   * otherwise 10.
   */
  wallTimeLimit?: number;
  /**
   * Seconds a run may go on past a time limit before it is killed (isolate's `--extra-time`):
   * it is still `TO`, but the figures show how far it went. Default 0.
   */
  extraTime?: number;
  /** Memory limit of the run's cgroup (RAM, no swap). Default `"256m"`. */
  memoryLimit?: Size;
  /**
   * Most processes and threads alive at once (RLIMIT_NPROC of the run's own uid: a fork or
   * clone past it fails with EAGAIN). Default 64.
   */
  processLimit?: number;
  /** Most bytes kept per output stream; one more byte is `OL`. Default `"64m"`. */
  outputLimit?: Size;
  /** Largest file the run may write (RLIMIT_FSIZE). Default: the work directory's size. */
  fileSizeLimit?: Size;
  /** Open file descriptors per process (RLIMIT_NOFILE). Default 256. */
  openFilesLimit?: number;
  /** Stack size (RLIMIT_STACK). Default: the memory limit (capped by this process's hard limit). */
  stackLimit?: Size;
  /** The work directory inside the box: a fresh tmpfs, writable by the run. Default `"/box"`. */
  workDir?: string;
  /** Size of the work directory's tmpfs (its pages count against the memory limit too). Default `"64m"`. */
  workDirSize?: Size;
  /** Files placed in the work directory before the run. */
  files?: readonly GradeFile[];
  /**
   * Files read back from the work directory after the run (relative paths). Symlinks and
   * anything but regular files are refused; a missing file is simply absent from the result.
   */
  copyOut?: readonly string[];
  /** Standard input: bytes, a string (UTF-8), or a host file. Default empty. */
  stdin?: Uint8Array | string | { path: string };
  /** Standard output: captured (default), discarded, or written to a host file. */
  stdout?: OutputTarget;
  /** Standard error: captured (default), discarded, or written to a host file. */
  stderr?: OutputTarget;
  /** Host directories visible inside the box. */
  dirs?: readonly DirBinding[];
  /**
   * A classic BPF seccomp program to install; `false` for none. Default: denobox's default
   * filter with sockets limited to AF_UNIX. A run with its own filter (or none) gets a network
   * namespace of its own instead of its slot's shared one.
   */
  seccomp?: Uint8Array | false;
  /** Aborting kills the run; it then ends as `XX` ("Aborted"). */
  signal?: AbortSignal;
}

/** What a run did. Times are seconds rounded to the millisecond, sizes are bytes. */
export interface GradeResult {
  /** The verdict. */
  status: GradeStatus;
  /** For `TO`: which limit (`"cpu"` or `"wall"`); otherwise null. */
  timeout: "cpu" | "wall" | null;
  /** One line saying why (`"Time limit exceeded (wall clock)"`), or the internal error. */
  message: string;
  /** The exit status of the program, when it exited. */
  exitCode: number | null;
  /** The signal that ended the program, when one did. */
  signal: SignalName | null;
  /** True when the grader ended the run (time or output limit, abort). */
  killed: boolean;
  /** CPU time of every process and thread of the run (from the cgroup). */
  cpuTime: number;
  /** The user-mode part of `cpuTime`. */
  userTime: number;
  /** The kernel-mode part of `cpuTime`. */
  sysTime: number;
  /** Wall-clock time from start to end (CLOCK_MONOTONIC). */
  wallTime: number;
  /** Peak memory of the run's cgroup (RSS, page cache, tmpfs pages, kernel memory). */
  memoryPeak: number;
  /**
   * Largest resident set of the program's processes, in KiB (getrusage of the command and the
   * children it waited for, as the sandbox's init reports it; isolate's `max-rss`). 0 for `XX`
   * when nothing ran.
   */
  maxRss: number;
  /** True when the cgroup's OOM killer killed a process of the run. */
  oomKilled: boolean;
  /** True when stdout or stderr went past the output limit and was cut at it. */
  outputTruncated: boolean;
  /** Captured standard output (at most the output limit), or null when not captured. */
  stdout: Uint8Array | null;
  /** Captured standard error, or null when not captured. */
  stderr: Uint8Array | null;
  /** Bytes the program wrote to stdout and stderr that were kept. */
  outputBytes: { stdout: number; stderr: number };
  /** Files copied out of the work directory (`copyOut`), by relative path. */
  files: Record<string, Uint8Array>;
  /** Voluntary context switches (getrusage), or null. */
  voluntarySwitches: number | null;
  /** Involuntary context switches (getrusage), or null. */
  involuntarySwitches: number | null;
}
