import { libc } from "./_ffi.ts";
import { check } from "./_check.ts";

/**
 * A raw file descriptor that this process owns. Deno's resource table cannot see fds made
 * through FFI, so they are owned here: `close()` is idempotent, `release()` hands the number
 * over to someone else, `using` closes it at scope end.
 *
 * @example Close at scope end
 * ```ts
 * import { pipe } from "denobox/libc";
 * {
 *   using fds = pipe();
 *   console.log(fds.read.fd >= 0); // true
 * } // both ends closed here
 * ```
 */
export class OwnedFd implements Disposable {
  #fd: number;

  /** Takes ownership of `fd`. */
  constructor(fd: number) {
    if (!Number.isInteger(fd) || fd < 0) {
      throw new RangeError(`Invalid file descriptor: ${fd}`);
    }
    this.#fd = fd;
  }

  /** The descriptor number; throws once closed or released. */
  get fd(): number {
    if (this.#fd < 0) throw new TypeError("File descriptor is closed");
    return this.#fd;
  }

  /** Whether it is still owned and open. */
  get open(): boolean {
    return this.#fd >= 0;
  }

  /** Gives up ownership without closing; returns the number. */
  release(): number {
    const fd = this.fd;
    this.#fd = -1;
    return fd;
  }

  /** Closes the descriptor. Idempotent. */
  close(): void {
    if (this.#fd < 0) return;
    const fd = this.#fd;
    this.#fd = -1;
    // close(2): the fd is gone even when close reports an error; never retry.
    libc.close(fd);
  }

  /**
   * Hands the descriptor to Deno as a `Deno.FsFile` (through `/proc/self/fd/N`), so it can be
   * read and written with Web streams without blocking the event loop. This `OwnedFd` is closed;
   * the file owns its own descriptor afterwards.
   */
  async toFsFile(
    options: { read?: boolean; write?: boolean } = { read: true },
  ): Promise<Deno.FsFile> {
    const file = await Deno.open(`/proc/self/fd/${this.fd}`, options);
    this.close();
    return file;
  }

  /** Closes the descriptor. */
  [Symbol.dispose](): void {
    this.close();
  }
}

/** Closes a raw fd number, reporting failure as a `SyscallError`. */
export function close(fd: number): void {
  check(libc.close(fd), "close", { detail: `fd ${fd}` });
}
