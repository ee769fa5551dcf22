/**
 * Memory that another address space can map too: a memfd sized with ftruncate and mapped
 * shared, optionally at a fixed address, so a process that maps the same memfd at the same
 * address sees the same pointers (the sandbox init maps its syscall program this way).
 * @module
 */
import { libc } from "./_ffi.ts";
import { checkBig } from "./_check.ts";
import { CArena } from "./memory.ts";
import type { OwnedFd } from "./fd.ts";
import { memfdCreate } from "./process.ts";
import { syscallNumber } from "./syscall.ts";

/** A shared memfd mapping: `arena` is the memory, `fd` the memfd (close-on-exec). */
export interface MemfdArena extends Disposable {
  /** The mapped memory, outside the V8 heap. */
  readonly arena: CArena;
  /** The memfd behind it, to hand to the process that maps it too. */
  readonly fd: OwnedFd;
}

/**
 * Creates a memfd of `size` bytes (rounded up to pages) and maps it shared, at `address` when
 * given (EEXIST when something is mapped there). Disposing unmaps it and closes the memfd.
 *
 * @example Map 4 KiB anywhere
 * ```ts
 * import { memfdArena } from "denobox/libc";
 * using m = memfdArena(4096, { name: "scratch" });
 * m.arena.bytes[0] = 1;
 * console.log(m.fd.fd > 2); // true
 * ```
 */
export function memfdArena(
  size: number,
  options: { name?: string; address?: bigint } = {},
): MemfdArena {
  const fd = memfdCreate(options.name ?? "denobox-arena");
  try {
    const bytes = Math.ceil(size / 4096) * 4096;
    checkBig(
      libc.syscall2(
        BigInt(syscallNumber("ftruncate")),
        BigInt(fd.fd),
        BigInt(bytes),
      ),
      "ftruncate",
      { detail: `memfd, ${bytes} bytes` },
    );
    const arena = new CArena(bytes, {
      fd: fd.fd,
      ...(options.address !== undefined ? { address: options.address } : {}),
    });
    return {
      arena,
      fd,
      [Symbol.dispose]() {
        arena[Symbol.dispose]();
        fd.close();
      },
    };
  } catch (e) {
    fd.close();
    throw e;
  }
}
