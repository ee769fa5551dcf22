/**
 * A classic BPF interpreter for seccomp programs, written for the tests: it runs a compiled
 * filter on a `struct seccomp_data` and returns the action, and it validates the program the
 * way the kernel's checker does (seccomp_check_filter + bpf_check_classic): known opcodes only,
 * jumps inside the program, aligned loads inside seccomp_data, a return at the end.
 */

/** The input a filter sees. */
export interface SeccompData {
  nr: number;
  arch: number;
  ip?: bigint;
  args?: readonly bigint[];
}

export interface Insn {
  code: number;
  jt: number;
  jf: number;
  k: number;
}

export function decode(bytes: Uint8Array): Insn[] {
  if (bytes.length % 8 !== 0) {
    throw new Error(
      `BPF program length ${bytes.length} is not a multiple of 8`,
    );
  }
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: Insn[] = [];
  for (let i = 0; i < bytes.length; i += 8) {
    out.push({
      code: v.getUint16(i, true),
      jt: v.getUint8(i + 2),
      jf: v.getUint8(i + 3),
      k: v.getUint32(i + 4, true),
    });
  }
  return out;
}

// Instruction classes and fields (linux/bpf_common.h).
const CLS = (c: number) => c & 0x07;
const SIZE = (c: number) => c & 0x18;
const MODE = (c: number) => c & 0xe0;
const OP = (c: number) => c & 0xf0;
const SRC = (c: number) => c & 0x08;
const LD = 0x00,
  LDX = 0x01,
  ST = 0x02,
  STX = 0x03,
  ALU = 0x04,
  JMP = 0x05,
  RET = 0x06,
  MISC = 0x07;
const W = 0x00, ABS = 0x20, IMM = 0x00, MEM = 0x60, LEN = 0x80;
const K = 0x00, X = 0x08, RVAL_A = 0x10;
const SECCOMP_DATA_SIZE = 64;

/** Throws unless the kernel would accept the program as a seccomp filter. */
export function validate(prog: readonly Insn[]): void {
  if (prog.length === 0 || prog.length > 4096) {
    throw new Error(`bad length ${prog.length}`);
  }
  prog.forEach((ins, pc) => {
    const c = ins.code;
    switch (CLS(c)) {
      case LD:
      case LDX:
        if (MODE(c) === ABS) {
          if (CLS(c) !== LD || SIZE(c) !== W) {
            throw new Error(`pc ${pc}: only 32-bit ld abs`);
          }
          if (ins.k % 4 !== 0 || ins.k >= SECCOMP_DATA_SIZE) {
            throw new Error(`pc ${pc}: load outside seccomp_data (k=${ins.k})`);
          }
        } else if (MODE(c) === MEM) {
          if (ins.k >= 16) throw new Error(`pc ${pc}: bad scratch slot`);
        } else if (MODE(c) !== IMM && MODE(c) !== LEN) {
          throw new Error(`pc ${pc}: bad ld mode`);
        }
        break;
      case ST:
      case STX:
        if (ins.k >= 16) throw new Error(`pc ${pc}: bad scratch slot`);
        break;
      case JMP: {
        const ja = OP(c) === 0x00;
        const far = ja ? [ins.k] : [ins.jt, ins.jf];
        for (const off of far) {
          if (pc + 1 + off >= prog.length) {
            throw new Error(`pc ${pc}: jump out of the program`);
          }
        }
        break;
      }
      case ALU:
        if ((OP(c) === 0x30 || OP(c) === 0x90) && SRC(c) === K && ins.k === 0) {
          throw new Error(`pc ${pc}: division by zero`);
        }
        break;
      case RET:
      case MISC:
        break;
    }
  });
  const last = prog[prog.length - 1]!;
  if (CLS(last.code) !== RET) {
    throw new Error("program does not end with a return");
  }
}

function dataWord(d: SeccompData, k: number): number {
  const args = d.args ?? [];
  if (k === 0) return d.nr >>> 0;
  if (k === 4) return d.arch >>> 0;
  const word = (v: bigint, hi: boolean) =>
    Number(hi ? (v >> 32n) & 0xffffffffn : v & 0xffffffffn);
  if (k === 8 || k === 12) return word(d.ip ?? 0n, k === 12);
  const i = (k - 16) >> 3;
  const v = BigInt.asUintN(64, args[i] ?? 0n);
  return word(v, (k - 16) % 8 === 4);
}

/** Runs `prog` on `data`; returns the 32-bit action value. */
export function run(prog: readonly Insn[], data: SeccompData): number {
  let A = 0, Xr = 0, pc = 0;
  const mem = new Uint32Array(16);
  for (let steps = 0; steps <= prog.length; steps++) {
    const ins = prog[pc];
    if (!ins) throw new Error(`pc ${pc} ran off the program`);
    const c = ins.code;
    pc++;
    switch (CLS(c)) {
      case LD:
        if (MODE(c) === ABS) A = dataWord(data, ins.k);
        else if (MODE(c) === IMM) A = ins.k >>> 0;
        else if (MODE(c) === MEM) A = mem[ins.k]!;
        else if (MODE(c) === LEN) A = SECCOMP_DATA_SIZE;
        else throw new Error(`unsupported ld 0x${c.toString(16)}`);
        break;
      case LDX:
        if (MODE(c) === IMM) Xr = ins.k >>> 0;
        else if (MODE(c) === MEM) Xr = mem[ins.k]!;
        else if (MODE(c) === LEN) Xr = SECCOMP_DATA_SIZE;
        else throw new Error(`unsupported ldx 0x${c.toString(16)}`);
        break;
      case ST:
        mem[ins.k] = A;
        break;
      case STX:
        mem[ins.k] = Xr;
        break;
      case ALU: {
        const v = SRC(c) === X ? Xr : ins.k >>> 0;
        switch (OP(c)) {
          case 0x00:
            A = (A + v) >>> 0;
            break;
          case 0x10:
            A = (A - v) >>> 0;
            break;
          case 0x20:
            A = Number((BigInt(A) * BigInt(v)) & 0xffffffffn);
            break;
          case 0x30:
            A = Math.floor(A / v) >>> 0;
            break;
          case 0x40:
            A = (A | v) >>> 0;
            break;
          case 0x50:
            A = (A & v) >>> 0;
            break;
          case 0x60:
            A = v >= 32 ? 0 : (A << v) >>> 0;
            break;
          case 0x70:
            A = v >= 32 ? 0 : A >>> v;
            break;
          case 0x80:
            A = -A >>> 0;
            break;
          case 0x90:
            A = (A % v) >>> 0;
            break;
          case 0xa0:
            A = (A ^ v) >>> 0;
            break;
          default:
            throw new Error(`unsupported alu 0x${c.toString(16)}`);
        }
        break;
      }
      case JMP: {
        const v = SRC(c) === X ? Xr : ins.k >>> 0;
        let taken: boolean;
        switch (OP(c)) {
          case 0x00:
            pc += ins.k;
            continue;
          case 0x10:
            taken = A === v;
            break;
          case 0x20:
            taken = A > v;
            break;
          case 0x30:
            taken = A >= v;
            break;
          case 0x40:
            taken = (A & v) !== 0;
            break;
          default:
            throw new Error(`unsupported jmp 0x${c.toString(16)}`);
        }
        pc += taken ? ins.jt : ins.jf;
        break;
      }
      case RET:
        return (c & 0x18) === RVAL_A ? A : ins.k >>> 0;
      case MISC:
        if (c === 0x07) Xr = A; // tax
        else if (c === 0x87) A = Xr; // txa
        else throw new Error(`unsupported misc 0x${c.toString(16)}`);
        break;
    }
  }
  throw new Error("program did not return");
}

/** A readable listing, for failure messages. */
export function disassemble(prog: readonly Insn[]): string {
  const names: Record<number, string> = {
    0x20: "ld",
    0x54: "and",
    0x05: "ja",
    0x15: "jeq",
    0x25: "jgt",
    0x35: "jge",
    0x45: "jset",
    0x06: "ret",
  };
  return prog.map((ins, pc) => {
    const n = names[ins.code] ?? `op${ins.code.toString(16)}`;
    const k = `0x${ins.k.toString(16)}`;
    if (ins.code === 0x05) return `${pc}: ja ${pc + 1 + ins.k}`;
    if (CLS(ins.code) === JMP) {
      return `${pc}: ${n} ${k} ? ${pc + 1 + ins.jt} : ${pc + 1 + ins.jf}`;
    }
    return `${pc}: ${n} ${k}`;
  }).join("\n");
}

/** The SECCOMP_RET_* action of a return value, named, with its data. */
export function actionName(ret: number): string {
  const action = (ret & 0xffff0000) >>> 0;
  const data = ret & 0xffff;
  switch (action) {
    case 0x80000000:
      return "kill-process";
    case 0x00000000:
      return "kill-thread";
    case 0x00030000:
      return `trap`;
    case 0x00050000:
      return `errno(${data})`;
    case 0x7fc00000:
      return "user-notif";
    case 0x7ff00000:
      return `trace(${data})`;
    case 0x7ffc0000:
      return "log";
    case 0x7fff0000:
      return "allow";
    default:
      return `0x${ret.toString(16)}`;
  }
}
