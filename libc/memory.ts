import { libc } from "./_ffi.ts";
import { check } from "./_check.ts";
import { Mmap } from "./constants.ts";
import { SyscallError } from "./error.ts";

const encoder = new TextEncoder();

/**
 * A NUL-terminated UTF-8 copy of `s` for a synchronous libc call. A string holding a NUL is a
 * `TypeError`: C would silently cut `"/ok\0/../etc"` short.
 *
 * @example Encode a path
 * ```ts
 * import { cstr } from "denobox/libc";
 * console.log(cstr("/tmp").length); // 5
 * ```
 */
export function cstr(s: string, what = "string"): Uint8Array<ArrayBuffer> {
  if (s.includes("\0")) {
    throw new TypeError(
      `Cannot pass ${what} to C: it contains a NUL byte: ${JSON.stringify(s)}`,
    );
  }
  const bytes = encoder.encode(s);
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  return out;
}

const PAGE = 4096;
const pageAlign = (n: number) => Math.ceil(n / PAGE) * PAGE;

/**
 * Memory outside the V8 heap (an anonymous mmap), for data that a cloned child reads: its
 * syscall program, strings, pointer arrays, its stack. Allocation is a bump pointer; the whole
 * region is unmapped at once by `Symbol.dispose`.
 *
 * @example Build an argv array
 * ```ts
 * import { CArena } from "denobox/libc";
 * using arena = new CArena(4096);
 * const argv = arena.pointerArray([arena.cstring("/bin/true")]);
 * console.log(argv > 0n); // true
 * ```
 */
export class CArena implements Disposable {
  /** The region's size in bytes (a page multiple). */
  readonly size: number;
  /** The region's first byte, as a pointer. */
  readonly pointer: Deno.PointerObject;
  /** The region's first byte, as an address. */
  readonly address: bigint;
  /** The region as bytes. */
  readonly bytes: Uint8Array;
  /** The region for typed reads and writes (little-endian on both supported arches). */
  readonly view: DataView;
  #used = 0;
  #freed = false;

  /** Maps `size` bytes (rounded up to pages), readable and writable, zero-filled. */
  constructor(
    size: number,
    options: {
      stack?: boolean;
      /** Map this file (a memfd of at least `size` bytes) shared, instead of anonymous memory. */
      fd?: number;
      /** With `fd`: map exactly here (MAP_FIXED_NOREPLACE); EEXIST when taken. */
      address?: bigint;
    } = {},
  ) {
    if (!Number.isInteger(size) || size <= 0) {
      throw new RangeError(`Invalid arena size: ${size}`);
    }
    this.size = pageAlign(size);
    const MAP_FIXED_NOREPLACE = 0x100000;
    const flags = options.fd !== undefined
      ? Mmap.MAP_SHARED |
        (options.address !== undefined ? MAP_FIXED_NOREPLACE : 0)
      : Mmap.MAP_PRIVATE | Mmap.MAP_ANONYMOUS |
        (options.stack ? Mmap.MAP_STACK : 0);
    const p = libc.mmap(
      options.address !== undefined && options.fd !== undefined
        ? Deno.UnsafePointer.create(options.address)
        : null,
      BigInt(this.size),
      Mmap.PROT_READ | Mmap.PROT_WRITE,
      flags,
      options.fd ?? -1,
      0n,
    );
    // MAP_FAILED is (void *)-1
    if (p === null || Deno.UnsafePointer.value(p) === 0xffffffffffffffffn) {
      check(-1, "mmap", { detail: `${this.size} bytes` });
    }
    if (
      options.address !== undefined && options.fd !== undefined &&
      BigInt(Deno.UnsafePointer.value(p!)) !== options.address
    ) {
      // a kernel before 4.17 takes MAP_FIXED_NOREPLACE as a mere hint
      libc.munmap(p, BigInt(this.size));
      throw new SyscallError("mmap", 17, { detail: `${this.size} bytes` });
    }
    this.pointer = p!;
    this.address = BigInt(Deno.UnsafePointer.value(this.pointer));
    const ab = Deno.UnsafePointerView.getArrayBuffer(this.pointer, this.size);
    this.bytes = new Uint8Array(ab);
    this.view = new DataView(ab);
  }

  /** Bytes handed out so far. */
  get used(): number {
    return this.#used;
  }

  /** Reserves `n` zeroed bytes aligned to `align`; returns their offset in the arena. */
  reserve(n: number, align = 8): number {
    const off = Math.ceil(this.#used / align) * align;
    if (off + n > this.size) {
      throw new RangeError(
        `Arena full: need ${n} bytes at ${off}, size is ${this.size}`,
      );
    }
    this.#used = off + n;
    return off;
  }

  /** Reserves `n` zeroed bytes; returns their address. */
  alloc(n: number, align = 8): bigint {
    return this.address + BigInt(this.reserve(n, align));
  }

  /** Copies `data` in; returns its address. */
  copy(data: Uint8Array): bigint {
    const off = this.reserve(Math.max(data.length, 1));
    this.bytes.set(data, off);
    return this.address + BigInt(off);
  }

  /** Copies a C string in (NUL rejected, see `cstr`); returns its address. */
  cstring(s: string, what?: string): bigint {
    return this.copy(cstr(s, what));
  }

  /** Copies a NULL-terminated array of addresses in; returns its address. */
  pointerArray(addresses: readonly bigint[]): bigint {
    const off = this.reserve((addresses.length + 1) * 8);
    addresses.forEach((a, i) => this.view.setBigUint64(off + i * 8, a, true));
    return this.address + BigInt(off);
  }

  /** The arena offset of an address inside it. */
  offsetOf(address: bigint): number {
    const off = Number(address - this.address);
    if (off < 0 || off >= this.size) {
      throw new RangeError(`Address ${address} is outside the arena`);
    }
    return off;
  }

  /** Turns the region read+exec (for machine code); no more writes after this. */
  makeExecutable(): void {
    check(
      libc.mprotect(
        this.pointer,
        BigInt(this.size),
        Mmap.PROT_READ | Mmap.PROT_EXEC,
      ),
      "mprotect",
    );
  }

  /** Unmaps the region. Idempotent. */
  [Symbol.dispose](): void {
    if (this.#freed) return;
    this.#freed = true;
    libc.munmap(this.pointer, BigInt(this.size));
  }
}
