/**
 * The syscall program a sandbox's first process runs before `execve`: typed steps that mirror
 * the syscalls, laid out in memory outside the V8 heap for the machine-code routine of
 * `sandbox/arch/*.S`. Pure data: building and decoding need no privileges.
 *
 * Memory layout (all little-endian 64-bit words):
 * - header, 64 bytes: [0] control fd, [8] nr of write, [16] nr of exit_group, [24] sync read
 *   fd, [32] sync write fd, [40] the program's own address, [48] size << 32 | the step the
 *   init's child starts at, [56] init memfd. The fds are filled in by `launch()`; steps refer
 *   to them through `program.fds`.
 * - The memory is a memfd mapped shared at a fixed address in a low range, so the sandbox's
 *   init (a fresh, nearly empty address space) can map it at the same address and run the
 *   command's steps there.
 * - steps from offset 64, 80 bytes each: nr, arg0..arg5, flags, result, aux; nr -1 ends.
 * - a heap for strings, pointer arrays and structs after the steps.
 * @module
 */
import {
  ARCH,
  type CArena,
  type MemfdArena,
  memfdArena,
  NAMESPACE_FLAGS,
  type NamespaceName,
  Rlimit,
  type RlimitName,
  SYSCALL_TABLES,
  syscallNumber,
} from "denobox/libc";

/** A CPU architecture with a routine. */
export type Arch = "x86_64" | "aarch64";

/** Reads a `Ref`'s address as a Number (set by `Ref`'s static block; NaN when not exact). */
let refAt: (r: Ref) => number;

/** Something whose 64-bit value the routine loads at run time (a step result, a header fd). */
export class Ref {
  // Programs live below 2^53 (see SLOT_BASE): a Number holds their addresses exactly, and
  // steps are written without a BigInt per argument. The BigInt is made when asked for.
  #at: number;
  #address: bigint | undefined;
  #name: string;
  /** Makes a reference to the word at `address` (a Number only when it is exact). */
  constructor(address: bigint | number, name: string) {
    if (typeof address === "bigint") {
      this.#address = address;
      this.#at = address >= 0n && address <= MAX_SAFE ? Number(address) : NaN;
    } else {
      this.#at = address;
    }
    this.#name = name;
  }
  /** The address the value is read from. */
  get address(): bigint {
    return this.#address ??= BigInt(this.#at);
  }
  /** What it is, for decoding and labels. */
  get name(): string {
    return this.#name;
  }
  static {
    refAt = (r) => r.#at;
  }
}

/** The result of a step: usable as an argument of a later step (an fd from `open`). */
export class StepResult extends Ref {
  /** The step's index. */
  readonly index: number;
  /** Makes the reference to step `index`'s result slot. */
  constructor(index: number, address: bigint | number) {
    // the name is made when asked for (errors, decode): most results are never named
    super(address, "");
    this.index = index;
  }
  /** What it is: `result of step N`. */
  override get name(): string {
    return `result of step ${this.index}`;
  }
}

/** A step argument: a number, a 64-bit value, or a value loaded at run time. */
export type StepArg = number | bigint | Ref;

/** Options of one step. */
export interface StepOptions {
  /** Names the step in errors: `pivot_root("/srv/box/rootfs")`. Default: the syscall name. */
  label?: string;
  /** A failure of this step is ignored. */
  mayFail?: boolean;
  /** The result must equal this value, else the step fails with ECANCELED. */
  expect?: number | bigint;
  /** Path the step acts on (for the error's `path`). */
  path?: string;
}

/** A decoded step, for tests and debugging. */
export interface DecodedStep {
  /** Position in the program, 0-based. */
  index: number;
  /** Syscall name, or `"end"`. */
  syscall: string;
  /** Syscall number on the program's architecture. */
  nr: number;
  /** Raw argument words (addresses for loaded ones). */
  args: bigint[];
  /** Which arguments are loaded from their address at run time. */
  loads: boolean[];
  /** A failure of this step is ignored (`StepOptions.mayFail`). */
  mayFail: boolean;
  /** The result the step must return, or null when any success will do. */
  expect: bigint | null;
  /** For a fork: the step the parent continues at. */
  parentContinuesAt: number | null;
  /** The name errors use for the step. */
  label: string;
  /** The path the step acts on, if it was given one. */
  path: string | undefined;
}

const FLAG_MAY_FAIL = 0x100;
const FLAG_EXPECT = 0x200;
const FLAG_PARENT_JUMP = 0x400;
const STEP = 80;
const HEADER = 64;
const MASK64 = 0xffffffffffffffffn;
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const TWO32 = 0x1_0000_0000;
const AT_FDCWD = -100;
/** The options of a step that may fail (shared: steps only read them). */
const MAY_FAIL: StepOptions = Object.freeze({ mayFail: true });

const Header = {
  control: 0,
  write: 8,
  exitGroup: 16,
  syncRead: 24,
  syncWrite: 32,
  pidRead: 40,
  pidWrite: 48,
  initMemfd: 56,
} as const;

// Programs live at fixed addresses from 64 GiB up, in 1 MiB slots: far below where Linux
// places mmaps and stacks, far above the init's own image (0x400000) and brk.
const SLOT_BASE = 0x10_0000_0000n;
const SLOT = 1 << 20;
const usedSlots = new Set<number>();

/**
 * Program memories whose program is done, kept mapped for the next programs: a new one costs
 * a memfd, its size, a fixed mapping, a page fault per page touched and, at the end, an unmap
 * that interrupts every CPU this process's threads ran on (TLB shootdown). See `recycleProgram`.
 */
const spares: { m: MemfdArena; slots: number[] }[] = [];
const MAX_SPARES = 16;
/** Set by `Program`'s static block (it reaches the private fields). */
let recycle: (p: Program) => void;

function mapProgram(size: number): { m: MemfdArena; slots: number[] } {
  const bytes = Math.ceil(size / 4096) * 4096;
  const i = spares.findIndex((x) => x.m.arena.size === bytes);
  if (i >= 0) return spares.splice(i, 1)[0]!;
  const n = Math.ceil(size / SLOT);
  for (let first = 0, tries = 0; tries < 256; first++) {
    const slots = Array.from({ length: n }, (_, i) => first + i);
    if (slots.some((k) => usedSlots.has(k))) continue;
    tries++;
    try {
      const m = memfdArena(size, {
        name: "denobox-program",
        address: SLOT_BASE + BigInt(first) * BigInt(SLOT),
      });
      for (const k of slots) usedSlots.add(k);
      return { m, slots };
    } catch (e) {
      // taken by someone else's mapping: never try that slot again
      if ((e as { code?: string }).code !== "EEXIST") throw e;
      usedSlots.add(first);
    }
  }
  throw new RangeError("Cannot place a program: no free slot near 64 GiB");
}

/** Options of `new Program()`. */
export interface ProgramOptions {
  /** Target architecture (default: this machine's). */
  arch?: Arch;
  /** Maximum number of steps (default 512). */
  maxSteps?: number;
  /** Bytes for strings and structs (default 64 KiB). */
  heapSize?: number;
}

const enc = new TextEncoder();

const q = (s: string) => JSON.stringify(s);

/**
 * A step label, or its parts: the odd ones are quoted (JSON) when the label is made, which
 * is when an error or `decode()` asks for it. Most steps never fail, and a fresh process pays
 * ~1 µs per JSON.stringify.
 */
type Label = string | readonly string[];

function render(parts: readonly string[]): string {
  let s = "";
  for (let i = 0; i < parts.length; i++) s += i & 1 ? q(parts[i]!) : parts[i];
  return s;
}

/** Syscall numbers by architecture and name, looked up once per process. */
const NUMBERS: Partial<Record<Arch, Map<string, number>>> = {};

/**
 * Writes `a` as the little-endian 64-bit word at `w[i]` (low half) and `w[i + 1]`: two's
 * complement for a negative one. False, writing nothing, when only a BigInt can hold it (not
 * an integer, not safe, or below -2^31).
 */
function putNumber(w: Uint32Array, i: number, a: number): boolean {
  if ((a | 0) === a) {
    w[i] = a;
    w[i + 1] = a < 0 ? 0xffffffff : 0;
    return true;
  }
  if (a > 0 && a <= Number.MAX_SAFE_INTEGER && Math.floor(a) === a) {
    const low = a % TWO32;
    w[i] = low;
    w[i + 1] = (a - low) / TWO32;
    return true;
  }
  return false;
}

/**
 * A syscall program under construction. Each typed method appends one step (or a few) and
 * returns its result, which later steps can take as an argument.
 *
 * @example Build and decode a tiny program (no privileges needed)
 * ```ts
 * import { Program } from "denobox/sandbox";
 * using p = new Program();
 * p.sethostname("box");
 * const fd = p.open("/etc/hostname", { flags: 0 });
 * p.close(fd);
 * p.execve("/bin/true", ["true"], {});
 * console.log(p.decode().map((s) => s.label));
 * // [ 'sethostname("box")', 'open("/etc/hostname")', "close", 'execve("/bin/true")' ]
 * ```
 */
export class Program implements Disposable {
  /** The architecture the program is for. */
  readonly arch: Arch;
  /** The memory holding it (read by the child). */
  readonly memory: CArena;
  /** The memfd behind `memory` (close-on-exec), which the sandbox's init maps. */
  readonly memoryFd: number;
  #mapping: MemfdArena;
  #slots: number[];
  #disposed = false;
  /** Header fds that `launch()` fills in; usable as step arguments. */
  readonly fds: {
    readonly control: Ref;
    readonly syncRead: Ref;
    readonly syncWrite: Ref;
    /** @deprecated The init no longer reads a pid pipe: this word holds the program's address. */
    readonly pidRead: Ref;
    /** @deprecated The init no longer reads a pid pipe: this word holds its entry (`setInitEntry`). */
    readonly pidWrite: Ref;
    readonly initMemfd: Ref;
  };
  #maxSteps: number;
  #heapStart: number;
  #heapUsed = 0;
  /** Each step's label, or its parts until it is asked for (see `Label`). */
  #labels: Label[] = [];
  #paths: (string | undefined)[] = [];
  /** The memory's address as a Number (exact: programs live below 2^53). */
  #base: number;
  /** The memory as 32-bit words: steps are written as two halves, no BigInt per word. */
  #w: Uint32Array;
  #numbers: Map<string, number>;

  /** Maps the program's memory (outside the V8 heap). */
  constructor(options: ProgramOptions = {}) {
    this.arch = options.arch ?? ARCH;
    this.#maxSteps = options.maxSteps ?? 512;
    const heap = options.heapSize ?? 65536;
    if (!Number.isInteger(this.#maxSteps) || this.#maxSteps < 1) {
      throw new RangeError(`Invalid maxSteps: ${this.#maxSteps}`);
    }
    this.#heapStart = HEADER + (this.#maxSteps + 1) * STEP;
    const { m, slots } = mapProgram(this.#heapStart + heap);
    this.#mapping = m;
    this.#slots = slots;
    this.memory = m.arena;
    this.memoryFd = m.fd.fd;
    this.#numbers = NUMBERS[this.arch] ??= new Map();
    const bytes = this.memory.bytes;
    this.#w = new Uint32Array(
      bytes.buffer,
      bytes.byteOffset,
      bytes.length >> 2,
    );
    const base = this.#base = Number(this.memory.address);
    this.#word(Header.write, this.#number("write"));
    this.#word(Header.exitGroup, this.#number("exit_group"));
    this.#word(Header.control, -1);
    this.#word(Header.syncRead, -1);
    this.#word(Header.syncWrite, -1);
    this.#word(Header.initMemfd, -1);
    this.#word(Header.pidRead, base);
    const ref = (k: keyof typeof Header) =>
      new Ref(base + Header[k], `header.${k}`);
    this.fds = {
      control: ref("control"),
      syncRead: ref("syncRead"),
      syncWrite: ref("syncWrite"),
      pidRead: ref("pidRead"),
      pidWrite: ref("pidWrite"),
      initMemfd: ref("initMemfd"),
    };
    this.#end(0);
  }

  /** Number of steps so far. */
  get length(): number {
    return this.#labels.length;
  }

  /** The syscall's number, looked up once per process and name. */
  #number(name: string): number {
    let n = this.#numbers.get(name);
    if (n === undefined) {
      this.#numbers.set(name, n = syscallNumber(name, this.arch));
    }
    return n;
  }

  /** Writes the 64-bit word at byte `off` (a multiple of 8). */
  #word(off: number, value: number | bigint): void {
    if (typeof value !== "number" || !putNumber(this.#w, off >> 2, value)) {
      this.memory.view.setBigUint64(off, BigInt(value) & MASK64, true);
    }
  }

  #end(index: number): void {
    const i = (HEADER + index * STEP) >> 2;
    this.#w[i] = 0xffffffff;
    this.#w[i + 1] = 0xffffffff;
  }

  /** Sets a header fd (done by `launch()`). */
  setHeaderFd(
    which:
      | "control"
      | "syncRead"
      | "syncWrite"
      | "pidRead"
      | "pidWrite"
      | "initMemfd",
    fd: number,
  ): void {
    this.#word(Header[which], fd);
  }

  /** The step label of `index` (what an error names). */
  label(index: number): string {
    const l = this.#labels[index];
    if (l === undefined) throw new RangeError(`No step ${index}`);
    return typeof l === "string" ? l : (this.#labels[index] = render(l));
  }

  /** The path step `index` acts on, if any. */
  path(index: number): string | undefined {
    return this.#paths[index];
  }

  // ---- memory ----

  /** Copies bytes into the program's heap; returns their address. */
  bytes(data: Uint8Array): bigint {
    return BigInt(this.#bytes(data));
  }

  /** Copies a NUL-terminated string (NUL inside is a TypeError); returns its address. */
  string(s: string, what = "string"): bigint {
    return BigInt(this.#string(s, what));
  }

  /** Copies a NULL-terminated array of addresses; returns its address. */
  pointers(addresses: readonly bigint[]): bigint {
    const b = new Uint8Array((addresses.length + 1) * 8);
    const v = new DataView(b.buffer);
    addresses.forEach((a, i) => v.setBigUint64(i * 8, a, true));
    return this.bytes(b);
  }

  /** Reserves `n` zeroed bytes; returns their address. */
  alloc(n: number): bigint {
    return BigInt(this.#alloc(n));
  }

  // The internal forms of the above return Numbers: the typed steps pass them on as
  // arguments, and a BigInt per string is what a fresh process pays most for.

  /** Reserves `n` bytes aligned to 8 (zeroed, or about to be written); returns their offset. */
  #reserve(n: number): number {
    const off = Math.ceil(this.#heapUsed / 8) * 8;
    const at = this.#heapStart + off;
    if (at + n > this.memory.size) {
      throw new RangeError(`Program heap full: need ${n} more bytes`);
    }
    this.#heapUsed = off + Math.max(n, 1);
    return at;
  }

  #alloc(n: number): number {
    return this.#base + this.#reserve(n);
  }

  #bytes(data: Uint8Array): number {
    const at = this.#reserve(data.length);
    this.memory.bytes.set(data, at);
    return this.#base + at;
  }

  #string(s: string, what = "string"): number {
    if (s.includes("\0")) {
      throw new TypeError(
        `Cannot pass ${what} to the sandbox: it contains a NUL byte: ${q(s)}`,
      );
    }
    // one copy, straight into the heap. Not encodeInto: its first use in a process costs
    // more than the copies it would save.
    const b = enc.encode(s);
    const at = this.#reserve(b.length + 1);
    const bytes = this.memory.bytes;
    bytes.set(b, at);
    bytes[at + b.length] = 0;
    return this.#base + at;
  }

  /** A NULL-terminated array of addresses. */
  #pointers(addresses: readonly number[]): number {
    const at = this.#reserve((addresses.length + 1) * 8);
    const w = this.#w;
    for (let i = 0; i < addresses.length; i++) {
      putNumber(w, (at >> 2) + i * 2, addresses[i]!);
    }
    const end = (at >> 2) + addresses.length * 2;
    w[end] = 0;
    w[end + 1] = 0;
    return this.#base + at;
  }

  // ---- the generic step ----

  /**
   * Appends a raw syscall step. Arguments that are `Ref`s are loaded when the step runs.
   *
   * @example
   * ```ts
   * import { Program } from "denobox/sandbox";
   * using p = new Program();
   * const pid = p.syscall("getpid", []);
   * console.log(pid.index); // 0
   * ```
   */
  syscall(
    name: string,
    args: readonly StepArg[],
    options: StepOptions = {},
  ): StepResult {
    return this.#step(this.#number(name), name, args, name, undefined, options);
  }

  /**
   * Appends step `nr`. `label`, `path` and `expect` are the typed step's defaults: an entry
   * of `o` wins over each, as in an object spread `{ label, path, ...o }` (an own entry set
   * to undefined included), without the copy.
   */
  #step(
    nr: number,
    name: string,
    args: readonly StepArg[],
    label: Label,
    path: string | undefined,
    o: StepOptions,
    flags = 0,
    expect?: number,
  ): StepResult {
    if (args.length > 6) {
      throw new RangeError(`Too many arguments for ${name}: ${args.length}`);
    }
    const index = this.#labels.length;
    if (index >= this.#maxSteps) {
      throw new RangeError(`Program full: more than ${this.#maxSteps} steps`);
    }
    if (o.label !== undefined) label = o.label;
    else if ("label" in o) label = name;
    if (o.path !== undefined || "path" in o) path = o.path;
    const exp = o.expect !== undefined || "expect" in o ? o.expect : expect;
    // Written here, not through a helper per word: a function called for every argument of
    // every step gets hot, and its optimizing compile competes with the start-up it serves.
    const off = HEADER + index * STEP;
    const w = this.#w;
    let i = off >> 2;
    w[i] = nr; // a syscall number: small, not negative
    w[i + 1] = 0;
    for (let k = 0; k < 6; k++) {
      i += 2;
      let a = args[k] ?? 0;
      if (a instanceof Ref) {
        flags |= 1 << k;
        const at = refAt(a);
        a = at === at ? at : a.address; // NaN: only the BigInt is exact
      }
      if (typeof a === "number" && (a | 0) === a) {
        w[i] = a;
        w[i + 1] = a < 0 ? 0xffffffff : 0;
      } else if (
        typeof a === "number" && a > 0 && a <= Number.MAX_SAFE_INTEGER &&
        Math.floor(a) === a
      ) {
        const low = a % TWO32;
        w[i] = low;
        w[i + 1] = (a - low) / TWO32;
      } else {
        this.memory.view.setBigUint64(i << 2, BigInt(a) & MASK64, true);
      }
    }
    if (o.mayFail) flags |= FLAG_MAY_FAIL;
    if (exp !== undefined) {
      flags |= FLAG_EXPECT;
      this.#word(off + 72, exp);
    }
    w[(off + 56) >> 2] = flags;
    w[((off + 56) >> 2) + 1] = 0;
    this.#labels.push(label);
    this.#paths.push(path);
    this.#end(index + 1);
    return new StepResult(index, this.#base + off + 64);
  }

  /** A typed step: syscall `name` with its default label, path and expected result. */
  #call(
    name: string,
    args: readonly StepArg[],
    label: Label,
    path: string | undefined,
    o: StepOptions,
    expect?: number,
  ): StepResult {
    return this.#step(
      this.#number(name),
      name,
      args,
      label,
      path,
      o,
      0,
      expect,
    );
  }

  // ---- typed steps ----

  /** unshare(2) of namespaces (names or raw CLONE_NEW* bits). */
  unshare(
    namespaces: readonly NamespaceName[] | number,
    o: StepOptions = {},
  ): StepResult {
    const flags = typeof namespaces === "number"
      ? namespaces
      : nsFlags(namespaces);
    const label = typeof namespaces === "number"
      ? `unshare(0x${flags.toString(16)})`
      : `unshare(${namespaces.join(",")})`;
    return this.#call("unshare", [flags], label, undefined, o);
  }

  /** setns(2): joins the namespace(s) of `fd` (a namespace fd or a pidfd). */
  setns(
    fd: StepArg,
    nstype: readonly NamespaceName[] | number = 0,
    o: StepOptions = {},
  ): StepResult {
    const flags = typeof nstype === "number" ? nstype : nsFlags(nstype);
    return this.#call(
      "setns",
      [fd, flags],
      `setns(${describe(fd)})`,
      undefined,
      o,
    );
  }

  /** mount(2). `source` null for remounts and propagation changes. */
  mount(
    source: string | null,
    target: string,
    options: { type?: string; flags?: number; data?: string } & StepOptions =
      {},
  ): StepResult {
    // read, not destructured: a rest object per step is a copy a fresh process pays for
    const { type, data } = options;
    const args = [
      source === null ? 0 : this.#string(source, "mount source"),
      this.#string(target, "mount target"),
      type === undefined ? 0 : this.#string(type, "filesystem type"),
      options.flags ?? 0,
      data === undefined ? 0 : this.#string(data, "mount data"),
    ];
    // most callers name the step themselves: the default label is only made when used
    const label = source === null || type !== undefined
      ? type ? ["mount(", type, ", ", target, ")"] : ["mount(", target, ")"]
      : ["mount(", source, ", ", target, ")"];
    return this.#call("mount", args, label, target, options);
  }

  /** umount2(2); `detach` is MNT_DETACH. */
  umount(
    target: string,
    options: { detach?: boolean } & StepOptions = {},
  ): StepResult {
    return this.#call(
      "umount2",
      [this.#string(target), options.detach ? 2 : 0],
      ["umount2(", target, ")"],
      target,
      options,
    );
  }

  /** pivot_root(2). */
  pivotRoot(newRoot: string, putOld: string, o: StepOptions = {}): StepResult {
    return this.#call(
      "pivot_root",
      [this.#string(newRoot), this.#string(putOld)],
      ["pivot_root(", newRoot, ")"],
      newRoot,
      o,
    );
  }

  /** chroot(2). */
  chroot(path: string, o: StepOptions = {}): StepResult {
    return this.#call(
      "chroot",
      [this.#string(path)],
      ["chroot(", path, ")"],
      path,
      o,
    );
  }

  /** chdir(2). */
  chdir(path: string, o: StepOptions = {}): StepResult {
    return this.#call(
      "chdir",
      [this.#string(path)],
      ["chdir(", path, ")"],
      path,
      o,
    );
  }

  /** sethostname(2). */
  sethostname(name: string, o: StepOptions = {}): StepResult {
    const b = enc.encode(name);
    return this.#call(
      "sethostname",
      [this.#bytes(b), b.length],
      ["sethostname(", name, ")"],
      undefined,
      o,
    );
  }

  /** setdomainname(2). */
  setdomainname(name: string, o: StepOptions = {}): StepResult {
    const b = enc.encode(name);
    return this.#call(
      "setdomainname",
      [this.#bytes(b), b.length],
      ["setdomainname(", name, ")"],
      undefined,
      o,
    );
  }

  /** openat(AT_FDCWD, path, flags, mode); the result is the fd. O_CLOEXEC is added. */
  open(
    path: string,
    options: { flags?: number; mode?: number } & StepOptions = {},
  ): StepResult {
    return this.#call(
      "openat",
      [
        AT_FDCWD,
        this.#string(path, "path"),
        (options.flags ?? 0) | 0o2000000,
        options.mode ?? 0o644,
      ],
      ["open(", path, ")"],
      path,
      options,
    );
  }

  /** close(2). */
  close(fd: StepArg, o: StepOptions = {}): StepResult {
    return this.#call("close", [fd], "close", undefined, o);
  }

  /** write(2) of `data` to `fd`; the whole buffer must be written. */
  write(
    fd: StepArg,
    data: Uint8Array | string,
    o: StepOptions = {},
  ): StepResult {
    const b = typeof data === "string" ? enc.encode(data) : data;
    return this.#call(
      "write",
      [fd, this.#bytes(b), b.length],
      "write",
      undefined,
      o,
      b.length,
    );
  }

  /** read(2) of `length` bytes from `fd` (a sync pipe): blocks until the parent writes. */
  read(fd: StepArg, length = 1, o: StepOptions = {}): StepResult {
    return this.#call(
      "read",
      [fd, this.#alloc(length), length],
      "read(sync fd)",
      undefined,
      o,
      length,
    );
  }

  /**
   * The handshake with `launch()`'s `setup` hooks: tells the parent the child got here
   * ({0, -3} on the control pipe), then waits on the sync fd until the hooks have run.
   */
  syncPoint(): void {
    const rec = new Uint8Array(16);
    new DataView(rec.buffer).setBigInt64(8, -3n, true);
    this.write(this.fds.control, rec, { label: "write(control: ready)" });
    this.read(this.fds.syncRead, 1);
  }

  /** Writes a whole file: open(O_WRONLY [|O_CREAT|O_TRUNC]), write, close. */
  writeFile(
    path: string,
    content: Uint8Array | string,
    options: { create?: boolean; mode?: number } & StepOptions = {},
  ): StepResult {
    // `options` goes to both steps as is: they read only its StepOptions entries
    const flags = 1 | (options.create ? 0o100 | 0o1000 : 0);
    const fd = this.#call(
      "openat",
      [
        AT_FDCWD,
        this.#string(path, "path"),
        flags | 0o2000000,
        options.mode ?? 0o644,
      ],
      ["open(", path, ")"],
      path,
      options,
    );
    const b = typeof content === "string" ? enc.encode(content) : content;
    const w = this.#call(
      "write",
      [fd, this.#bytes(b), b.length],
      ["write(", path, ")"],
      path,
      options,
      b.length,
    );
    this.#call("close", [fd], "close", undefined, MAY_FAIL);
    return w;
  }

  /** mkdirat(AT_FDCWD, path, mode). */
  mkdir(path: string, mode = 0o755, o: StepOptions = {}): StepResult {
    return this.#call(
      "mkdirat",
      [AT_FDCWD, this.#string(path), mode],
      ["mkdir(", path, ")"],
      path,
      o,
    );
  }

  /** symlinkat(target, AT_FDCWD, path). */
  symlink(target: string, path: string, o: StepOptions = {}): StepResult {
    return this.#call(
      "symlinkat",
      [this.#string(target), AT_FDCWD, this.#string(path)],
      ["symlink(", path, ")"],
      path,
      o,
    );
  }

  /** mknodat(AT_FDCWD, path, mode, dev). */
  mknod(
    path: string,
    mode: number,
    dev: bigint | number,
    o: StepOptions = {},
  ): StepResult {
    return this.#call(
      "mknodat",
      [AT_FDCWD, this.#string(path), mode, dev],
      ["mknod(", path, ")"],
      path,
      o,
    );
  }

  /** prlimit64(0, resource, {soft, hard}, NULL). `Infinity` is RLIM_INFINITY. */
  setrlimit(
    resource: RlimitName,
    limit: { soft: number; hard: number },
    o: StepOptions = {},
  ): StepResult {
    const n =
      (Rlimit as Record<string, number>)[`RLIMIT_${resource.toUpperCase()}`];
    if (n === undefined) throw new RangeError(`Unknown rlimit: ${resource}`);
    for (const x of [limit.soft, limit.hard]) {
      if (x !== Infinity && (!Number.isSafeInteger(x) || x < 0)) {
        throw new RangeError(`Invalid ${resource} limit: ${x}`);
      }
    }
    if (limit.soft > limit.hard) {
      throw new RangeError(
        `Invalid ${resource} limit: soft ${limit.soft} is above hard ${limit.hard}`,
      );
    }
    const b = new Uint8Array(16);
    const v = new DataView(b.buffer);
    v.setBigUint64(
      0,
      limit.soft === Infinity ? MASK64 : BigInt(limit.soft),
      true,
    );
    v.setBigUint64(
      8,
      limit.hard === Infinity ? MASK64 : BigInt(limit.hard),
      true,
    );
    return this.#call(
      "prlimit64",
      [0, n, this.#bytes(b), 0],
      `setrlimit(RLIMIT_${resource.toUpperCase()})`,
      undefined,
      o,
    );
  }

  /** setresuid(2). */
  setresuid(
    ruid: number,
    euid = ruid,
    suid = euid,
    o: StepOptions = {},
  ): StepResult {
    return this.#call(
      "setresuid",
      [ruid, euid, suid],
      `setresuid(${ruid})`,
      undefined,
      o,
    );
  }

  /** setresgid(2). */
  setresgid(
    rgid: number,
    egid = rgid,
    sgid = egid,
    o: StepOptions = {},
  ): StepResult {
    return this.#call(
      "setresgid",
      [rgid, egid, sgid],
      `setresgid(${rgid})`,
      undefined,
      o,
    );
  }

  /** setgroups(2). */
  setgroups(groups: readonly number[], o: StepOptions = {}): StepResult {
    const b = new Uint8Array(new Uint32Array(groups).buffer);
    return this.#call(
      "setgroups",
      [groups.length, groups.length ? this.#bytes(b) : 0],
      `setgroups(${groups.join(",")})`,
      undefined,
      o,
    );
  }

  /** prctl(2). */
  prctl(
    option: number,
    a2: StepArg = 0,
    a3: StepArg = 0,
    a4: StepArg = 0,
    a5: StepArg = 0,
    o: StepOptions = {},
  ): StepResult {
    return this.#call(
      "prctl",
      [option, a2, a3, a4, a5],
      `prctl(${option})`,
      undefined,
      o,
    );
  }

  /** dup3(2). */
  dup3(
    oldFd: StepArg,
    newFd: number,
    flags = 0,
    o: StepOptions = {},
  ): StepResult {
    return this.#call(
      "dup3",
      [oldFd, newFd, flags],
      `dup3(${describe(oldFd)}, ${newFd})`,
      undefined,
      o,
    );
  }

  /** close_range(2); CLOSE_RANGE_CLOEXEC (4) marks instead of closing. */
  closeRange(
    first: number,
    last = 0xffffffff,
    flags = 0,
    o: StepOptions = {},
  ): StepResult {
    return this.#call(
      "close_range",
      [first, last, flags],
      `close_range(${first})`,
      undefined,
      o,
    );
  }

  /** setsid(2). */
  setsid(o: StepOptions = {}): StepResult {
    return this.#call("setsid", [], "setsid", undefined, o);
  }

  /** ioctl(2). */
  ioctl(
    fd: StepArg,
    request: number,
    arg: StepArg = 0,
    o: StepOptions = {},
  ): StepResult {
    return this.#call(
      "ioctl",
      [fd, request, arg],
      `ioctl(0x${request.toString(16)})`,
      undefined,
      o,
    );
  }

  /** Brings the loopback interface up: socket, ioctl(SIOCSIFFLAGS, IFF_UP|IFF_LOOPBACK|IFF_RUNNING), close. */
  loopbackUp(o: StepOptions = {}): StepResult {
    const sock = this.#call(
      "socket",
      [2, 2 | 0o2000000, 0],
      "socket(AF_INET)",
      undefined,
      o,
    );
    const ifr = new Uint8Array(40);
    ifr.set(enc.encode("lo"));
    new DataView(ifr.buffer).setUint16(16, 0x1 | 0x8 | 0x40, true);
    const r = this.#call(
      "ioctl",
      [sock, 0x8914, this.#bytes(ifr)],
      'ioctl(SIOCSIFFLAGS, "lo")',
      undefined,
      o,
    );
    this.#call("close", [sock], "close", undefined, MAY_FAIL);
    return r;
  }

  /**
   * Resets signal dispositions to SIG_DFL (rt_sigaction), of every signal 1..64 by default or
   * of `signals` (KILL and STOP skipped: they cannot be changed).
   */
  resetSignals(signals?: readonly number[]): void {
    const dfl = this.#alloc(32);
    for (const sig of signals ?? Array.from({ length: 64 }, (_, i) => i + 1)) {
      if (sig === 9 || sig === 19) continue;
      this.#call(
        "rt_sigaction",
        [sig, dfl, 0, 8],
        `rt_sigaction(${sig})`,
        undefined,
        MAY_FAIL,
      );
    }
  }

  /** rt_sigprocmask(SIG_SETMASK, mask): 0n unblocks everything. */
  setSignalMask(mask: bigint, o: StepOptions = {}): StepResult {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, mask, true);
    return this.#call(
      "rt_sigprocmask",
      [2, this.#bytes(b), 0, 8],
      "rt_sigprocmask",
      undefined,
      o,
    );
  }

  /**
   * vfork (clone CLONE_VM|CLONE_VFORK|SIGCHLD): the child goes on with the next step, the
   * parent resumes once the child has exec'd or exited, at the step set by `parentContinues`.
   */
  vfork(o: StepOptions = {}): StepResult {
    return this.#step(
      this.#number("clone"),
      "clone",
      [0x100 | 0x4000 | 17, 0, 0, 0, 0],
      "clone(CLONE_VFORK)",
      undefined,
      o,
      FLAG_PARENT_JUMP,
    );
  }

  /**
   * A sibling (clone CLONE_PARENT|CLONE_VM|CLONE_PARENT_SETTID|SIGCHLD): a new process whose
   * parent is our own parent (the caller of `launch()`), that goes on with the next step; the
   * caller resumes at the step set by `parentContinues`. It is how a process that unshared a
   * pid namespace puts its successor inside it (unshare(CLONE_NEWPID) only moves children).
   * The kernel stores the sibling's pid (in the caller's pid namespace) at `pidAddress` before
   * the sibling runs, so a parent that sees the caller gone knows whether a sibling exists.
   * Neither process uses a stack, so they share it (and the memory) safely.
   */
  forkSibling(
    o: StepOptions = {},
  ): { step: StepResult; pidAddress: bigint } {
    const pidAddress = this.alloc(8);
    const CLONE_PARENT = 0x8000, CLONE_PARENT_SETTID = 0x100000;
    const step = this.#step(
      this.#number("clone"),
      "clone",
      [
        CLONE_PARENT | CLONE_PARENT_SETTID | 0x100 /* CLONE_VM */ | 17,
        0,
        pidAddress,
        0,
        0,
      ],
      "clone(CLONE_PARENT)",
      undefined,
      o,
      FLAG_PARENT_JUMP,
    );
    return { step, pidAddress };
  }

  /** The pid a `forkSibling` step stored at `pidAddress` (0 while there is none). */
  siblingPid(pidAddress: bigint): number {
    return this.memory.view.getInt32(this.memory.offsetOf(pidAddress), true);
  }

  /** Makes the parent side of `fork` continue at the next step appended. */
  parentContinues(fork: StepResult): void {
    this.#word(HEADER + fork.index * STEP + 72, this.length);
  }

  /** seccomp(SECCOMP_SET_MODE_FILTER) of a classic BPF program (8-byte sock_filter entries). */
  seccomp(filter: Uint8Array, o: StepOptions = {}): StepResult {
    if (
      filter.length === 0 || filter.length % 8 !== 0 || filter.length / 8 > 4096
    ) {
      throw new RangeError(
        `Invalid seccomp filter: ${filter.length} bytes (want 8..32768, a multiple of 8)`,
      );
    }
    const prog = new Uint8Array(16);
    new DataView(prog.buffer).setUint16(0, filter.length / 8, true);
    putNumber(new Uint32Array(prog.buffer), 2, this.#bytes(filter));
    return this.#call(
      "seccomp",
      [1, 0, this.#bytes(prog)],
      "seccomp(SECCOMP_SET_MODE_FILTER)",
      undefined,
      o,
    );
  }

  /** capset(2) with _LINUX_CAPABILITY_VERSION_3 (64-bit masks). */
  capset(
    caps: { effective: bigint; permitted: bigint; inheritable: bigint },
    o: StepOptions = {},
  ): StepResult {
    const hdr = new Uint8Array(8);
    new DataView(hdr.buffer).setUint32(0, 0x20080522, true);
    const data = new Uint8Array(24);
    const v = new DataView(data.buffer);
    const lo = (x: bigint) => Number(x & 0xffffffffn),
      hi = (x: bigint) => Number((x >> 32n) & 0xffffffffn);
    v.setUint32(0, lo(caps.effective), true);
    v.setUint32(4, lo(caps.permitted), true);
    v.setUint32(8, lo(caps.inheritable), true);
    v.setUint32(12, hi(caps.effective), true);
    v.setUint32(16, hi(caps.permitted), true);
    v.setUint32(20, hi(caps.inheritable), true);
    return this.#call(
      "capset",
      [this.#bytes(hdr), this.#bytes(data)],
      "capset",
      undefined,
      o,
    );
  }

  /** execve(2). */
  execve(
    path: string,
    argv: readonly string[],
    env: Readonly<Record<string, string>> | readonly string[],
    o: StepOptions = {},
  ): StepResult {
    const av = this.#pointers(argv.map((a) => this.#string(a, "argument")));
    const list = Array.isArray(env)
      ? env as readonly string[]
      : Object.entries(env).map(([k, val]) => {
        if (k.includes("=") || k === "") {
          throw new TypeError(`Invalid environment variable name: ${q(k)}`);
        }
        return `${k}=${val}`;
      });
    const ev = this.#pointers(
      list.map((e) => this.#string(e, "environment entry")),
    );
    return this.#call(
      "execve",
      [this.#string(path, "command"), av, ev],
      ["execve(", path, ")"],
      path,
      o,
    );
  }

  /** execveat(fd, "", argv, envp, AT_EMPTY_PATH): runs the file an fd refers to. */
  execveat(
    fd: StepArg,
    argv: readonly string[],
    env: readonly string[] = [],
    o: StepOptions = {},
  ): StepResult {
    const av = this.#pointers(argv.map((a) => this.#string(a)));
    const ev = this.#pointers(env.map((e) => this.#string(e)));
    return this.#call(
      "execveat",
      [fd, this.#string(""), av, ev, 0x1000],
      `execveat(${describe(fd)})`,
      undefined,
      o,
    );
  }

  /** The steps as data, for tests and debugging. */
  decode(): DecodedStep[] {
    const byNr = new Map(
      Object.entries(SYSCALL_TABLES[this.arch]).map(([k, n]) => [n, k]),
    );
    const v = this.memory.view;
    const out: DecodedStep[] = [];
    for (let i = 0; i < this.#labels.length; i++) {
      const off = HEADER + i * STEP;
      const nr = Number(v.getBigInt64(off, true));
      const flags = Number(v.getBigUint64(off + 56, true));
      const aux = v.getBigUint64(off + 72, true);
      const args = Array.from(
        { length: 6 },
        (_, j) => v.getBigUint64(off + 8 + j * 8, true),
      );
      out.push({
        index: i,
        syscall: byNr.get(nr) ?? `syscall ${nr}`,
        nr,
        args,
        loads: args.map((_, j) => (flags & (1 << j)) !== 0),
        mayFail: (flags & FLAG_MAY_FAIL) !== 0,
        expect: flags & FLAG_EXPECT ? aux : null,
        parentContinuesAt: flags & FLAG_PARENT_JUMP ? Number(aux) : null,
        label: this.label(i),
        path: this.#paths[i],
      });
    }
    return out;
  }

  /** Reads a C string the program holds at `address` (for tests). */
  readString(address: bigint): string {
    const off = this.memory.offsetOf(address);
    const end = this.memory.bytes.indexOf(0, off);
    return new TextDecoder().decode(this.memory.bytes.subarray(off, end));
  }

  /**
   * Marks where the init's child starts (default: the next step appended): the steps from
   * there run in the sandbox's init, after its exec, in its own small address space.
   */
  setInitEntry(index: number = this.length): void {
    // size << 32 | index, as two halves
    const i = Header.pidWrite >> 2;
    this.#w[i] = index;
    this.#w[i + 1] = this.memory.size;
  }

  /** Unmaps the program and frees its address. */
  [Symbol.dispose](): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#mapping[Symbol.dispose]();
    for (const k of this.#slots) usedSlots.delete(k);
    this.#slots = [];
  }

  static {
    recycle = (p: Program) => {
      if (p.#disposed) return;
      if (spares.length >= MAX_SPARES) return p[Symbol.dispose]();
      p.#disposed = true;
      // back to zeros where this program (and the processes that ran it) wrote: the steps
      // with their result words, and the heap; the header is written by every new program
      const bytes = p.memory.bytes;
      bytes.fill(0, HEADER, HEADER + (p.length + 1) * STEP);
      bytes.fill(0, p.#heapStart, p.#heapStart + p.#heapUsed);
      spares.push({ m: p.#mapping, slots: p.#slots });
      p.#slots = [];
    };
  }
}

/**
 * Ends `p` like its dispose, but keeps its memory (zeroed where it was written, still mapped at
 * its address) for a later program of the same size. Only once nothing can run or write it
 * any more: every process that ran it has exec'd or is gone, and no sandbox's init maps it.
 */
export function recycleProgram(p: Program): void {
  recycle(p);
}

function nsFlags(names: readonly NamespaceName[]): number {
  let f = 0;
  for (const n of names) {
    const bit = NAMESPACE_FLAGS[n];
    if (bit === undefined) throw new TypeError(`Unknown namespace: ${n}`);
    f |= bit;
  }
  return f;
}

function describe(a: StepArg): string {
  return a instanceof Ref ? a.name : String(a);
}
