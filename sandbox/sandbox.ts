import {
  OwnedFd,
  pidfdSendSignal,
  readNonblocking,
  type Rusage,
  setWindowSize,
  Signal,
  type SignalName,
  signalNumber,
  Wait,
  waitPidfd,
} from "denobox/libc";
import { reactor } from "./_reactor.ts";
import {
  fdStreams,
  pipeReadable,
  pipeWritable,
  readChunk,
} from "./_fdstream.ts";
import { mark } from "./_trace.ts";

/** How a sandbox ended. */
export interface SandboxStatus {
  /** The exit code, or null when a signal ended it. */
  code: number | null;
  /** The signal that ended it, or null. */
  signal: SignalName | null;
  /** `code === 0`. */
  success: boolean;
  /** Resource usage of the sandbox's processes (µs, KiB). */
  rusage: Rusage;
}

/** The parent's side of a sandbox's pseudo-terminal. */
export interface PtyHandle {
  /** The master fd (ours; closed when the sandbox is disposed). */
  readonly fd: number;
  /** What the sandbox writes to its terminal. */
  readonly readable: ReadableStream<Uint8Array>;
  /** Keystrokes for the sandbox. */
  readonly writable: WritableStream<Uint8Array>;
  /** Sets the terminal size (the sandbox's foreground process gets SIGWINCH). */
  resize(rows: number, cols: number): void;
}

/** A running sandbox: its first process, its stdio, its exit status. */
export interface Sandbox extends AsyncDisposable {
  /** Host pid of the sandbox's first process (its init, or the command itself). */
  readonly pid: number;
  /** A pidfd for `pid` (open until the sandbox is reaped). */
  readonly pidfd: number;
  /** The command's stdin, with `stdin: "pipe"`. */
  readonly stdin: WritableStream<Uint8Array> | null;
  /** The command's stdout, with `stdout: "pipe"`. */
  readonly stdout: ReadableStream<Uint8Array> | null;
  /** The command's stderr, with `stderr: "pipe"`. */
  readonly stderr: ReadableStream<Uint8Array> | null;
  /** The terminal, with `pty`. */
  readonly pty: PtyHandle | null;
  /** Resolves when the sandbox has exited and been reaped. */
  readonly status: Promise<SandboxStatus>;
  /** Sends a signal (default SIGKILL). An init forwards all but SIGKILL to the command. */
  kill(signal?: SignalName | number): void;
  /**
   * The next chunk of the command's stdout or stderr pipe, or null at its end: reading without
   * Web streams (whose first use costs a fresh process a few ms). Not after the same
   * stream's `stdout`/`stderr` property was used.
   *
   * @example Copy the output as it comes
   * ```ts ignore
   * import { spawn } from "denobox/sandbox";
   * await using box = await spawn({ argv: ["/bin/echo", "hi"], stdout: "pipe" });
   * for (let c; (c = await box.read("stdout")) !== null;) await Deno.stdout.write(c);
   * ```
   */
  read(stream: "stdout" | "stderr"): Promise<Uint8Array | null>;
  /** Reads stdout and stderr to the end and waits for the status. */
  output(): Promise<
    { status: SandboxStatus; stdout: Uint8Array; stderr: Uint8Array }
  >;
}

const SIGNAL_NAMES = new Map<number, SignalName>(
  Object.entries(Signal).map(([k, v]) => [v, k as SignalName]),
);

/** Decodes a raw wait status (as from wait4) into code and signal. */
export function decodeWaitStatus(
  raw: number,
): { code: number | null; signal: SignalName | null } {
  const sig = raw & 0x7f;
  if (sig === 0) return { code: (raw >> 8) & 0xff, signal: null };
  return {
    code: null,
    signal: SIGNAL_NAMES.get(sig) ?? (`SIG${sig}` as SignalName),
  };
}

/** What the engine hands to a new handle. */
export interface HandleParts {
  pid: number;
  pidfd: OwnedFd;
  /** The control pipe's read end, kept with an init (it sends the command's status). */
  control: OwnedFd | null;
  /** Our ends of the stdio pipes (owned by the handle's streams from here on). */
  stdin: OwnedFd | null;
  stdout: OwnedFd | null;
  stderr: OwnedFd | null;
  /** The pty master. */
  pty: OwnedFd | null;
  /** Disposed after the sandbox has been reaped. */
  cleanup: AsyncDisposableStack;
}

/** The spawn engine's `Sandbox`. */
export class SandboxHandle implements Sandbox {
  readonly pid: number;
  readonly pidfd: number;
  readonly pty: PtyHandle | null;
  readonly status: Promise<SandboxStatus>;
  #pidfd: OwnedFd;
  // our pipe ends; each becomes a Web stream only when its property is first read
  #stdinFd: OwnedFd | null;
  #stdoutFd: OwnedFd | null;
  #stderrFd: OwnedFd | null;
  #stdin: WritableStream<Uint8Array> | null | undefined;
  #stdout: ReadableStream<Uint8Array> | null | undefined;
  #stderr: ReadableStream<Uint8Array> | null | undefined;
  #pipes: OwnedFd[];
  #reaped = false;
  #pty: OwnedFd | null = null;

  constructor(parts: HandleParts) {
    this.pid = parts.pid;
    this.#pidfd = parts.pidfd;
    this.pidfd = parts.pidfd.fd;
    this.#stdinFd = parts.stdin;
    this.#stdoutFd = parts.stdout;
    this.#stderrFd = parts.stderr;
    this.#pipes = [parts.stdin, parts.stdout, parts.stderr].filter((f) =>
      f !== null
    );
    if (parts.pty) {
      const master = parts.pty, fd = master.fd;
      this.#pty = master;
      const { readable, writable } = fdStreams(master);
      this.pty = {
        fd,
        readable,
        writable,
        resize: (rows, cols) => {
          if (master.open) setWindowSize(fd, rows, cols);
        },
      };
    } else {
      this.pty = null;
    }
    this.status = this.#wait(parts.control, parts.cleanup);
  }

  async #wait(
    control: OwnedFd | null,
    cleanup: AsyncDisposableStack,
  ): Promise<SandboxStatus> {
    try {
      let r = null;
      while (r === null) {
        await reactor.readable(this.#pidfd.fd);
        r = waitPidfd(this.#pidfd.fd);
      }
      mark("sandbox: reaped");
      let st: { code: number | null; signal: SignalName | null };
      if (r.cause === Wait.CLD_EXITED) st = { code: r.status, signal: null };
      else st = { code: null, signal: SIGNAL_NAMES.get(r.status) ?? null };
      const rusage = { ...r.rusage };
      if (control) {
        // an init reports the command's own wait status as {-2, status} and the largest
        // maxrss of the processes it reaped as {-4, KiB}: its own maxrss counts the parent's
        // memory it was started from, theirs do not
        const data = readNonblocking(control.fd, 256);
        if (data && data.length >= 16) {
          const v = new DataView(data.buffer, data.byteOffset, data.length);
          for (let off = 0; off + 16 <= data.length; off += 16) {
            const tag = v.getBigInt64(off, true);
            const value = v.getBigInt64(off + 8, true);
            if (tag === -2n) st = decodeWaitStatus(Number(value));
            else if (tag === -4n) rusage.maxRss = Number(value);
          }
        }
      }
      return { ...st, success: st.code === 0, rusage };
    } finally {
      this.#reaped = true;
      control?.close();
      this.#pidfd.close();
      await cleanup.disposeAsync();
      mark("sandbox: released");
    }
  }

  get stdin(): WritableStream<Uint8Array> | null {
    return this.#stdin ??= this.#stdinFd ? pipeWritable(this.#stdinFd) : null;
  }

  get stdout(): ReadableStream<Uint8Array> | null {
    return this.#stdout ??= this.#stdoutFd
      ? pipeReadable(this.#stdoutFd)
      : null;
  }

  get stderr(): ReadableStream<Uint8Array> | null {
    return this.#stderr ??= this.#stderrFd
      ? pipeReadable(this.#stderrFd)
      : null;
  }

  read(stream: "stdout" | "stderr"): Promise<Uint8Array | null> {
    const fd = stream === "stdout" ? this.#stdoutFd : this.#stderrFd;
    if (fd === null) {
      return Promise.reject(
        new TypeError(`Cannot read ${stream}: it is not a pipe`),
      );
    }
    if ((stream === "stdout" ? this.#stdout : this.#stderr) !== undefined) {
      return Promise.reject(
        new TypeError(`Cannot read ${stream}: its stream is in use`),
      );
    }
    return readChunk(fd);
  }

  kill(signal: SignalName | number = "SIGKILL"): void {
    const sig = signalNumber(signal);
    if (this.#reaped) return;
    try {
      pidfdSendSignal(this.#pidfd.fd, sig);
    } catch (e) {
      if ((e as { code?: string }).code !== "ESRCH") throw e;
    }
  }

  async output(): Promise<
    { status: SandboxStatus; stdout: Uint8Array; stderr: Uint8Array }
  > {
    const collect = async (which: "stdout" | "stderr") => {
      const fd = which === "stdout" ? this.#stdoutFd : this.#stderrFd;
      const s = which === "stdout" ? this.#stdout : this.#stderr;
      if (fd === null) return new Uint8Array(0);
      if (s) return new Uint8Array(await new Response(s).arrayBuffer());
      const parts: Uint8Array[] = [];
      let size = 0;
      for (let c; (c = await readChunk(fd)) !== null;) {
        parts.push(c);
        size += c.length;
      }
      const out = new Uint8Array(size);
      let off = 0;
      for (const c of parts) out.set(c, off), off += c.length;
      return out;
    };
    const [stdout, stderr, status] = await Promise.all([
      collect("stdout"),
      collect("stderr"),
      this.status,
    ]);
    return { status, stdout, stderr };
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.kill("SIGKILL");
    await this.status.catch(() => {});
    // ends whose streams were not read to the end (or closed)
    for (const f of this.#pipes) {
      if (!f.open) continue;
      reactor.forget(f.fd);
      f.close();
    }
    if (this.#pty?.open) {
      reactor.forget(this.#pty.fd);
      this.#pty.close();
    }
  }
}
