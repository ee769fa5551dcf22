/**
 * Classic BPF for seccomp: opcodes, the `struct seccomp_data` layout and a tiny assembler with
 * symbolic labels. Conditional jumps in classic BPF reach at most 255 instructions forward, so
 * the assembler lays the program out, and wherever a conditional target is too far it inserts
 * an unconditional `ja` (32-bit offset) right after the jump, repeating until nothing moves.
 * @module
 */

/** Opcodes used by the compiler (linux/bpf_common.h, linux/filter.h). */
export const Op = {
  /** A = u32 at seccomp_data[k] (BPF_LD | BPF_W | BPF_ABS) */
  LD_ABS: 0x20,
  /** A &= k (BPF_ALU | BPF_AND | BPF_K) */
  AND: 0x54,
  /** pc += k (BPF_JMP | BPF_JA) */
  JA: 0x05,
  /** BPF_JMP | BPF_JEQ | BPF_K */
  JEQ: 0x15,
  /** BPF_JMP | BPF_JGT | BPF_K */
  JGT: 0x25,
  /** BPF_JMP | BPF_JGE | BPF_K */
  JGE: 0x35,
  /** BPF_JMP | BPF_JSET | BPF_K */
  JSET: 0x45,
  /** return k (BPF_RET | BPF_K) */
  RET: 0x06,
} as const;

/** Offsets in `struct seccomp_data { int nr; u32 arch; u64 instruction_pointer; u64 args[6]; }`. */
export const SeccompData = { nr: 0, arch: 4, ip: 8, args: 16 } as const;

/** The kernel's limit on filter length (BPF_MAXINSNS). */
export const BPF_MAXINSNS = 4096;

/** A jump target: an index into the label table of one `Assembler`. */
export type Label = number;

type Item =
  | { kind: "ld"; k: number }
  | { kind: "and"; k: number }
  | { kind: "ret"; k: number }
  | { kind: "ja"; to: Label }
  | { kind: "jmp"; code: number; k: number; t: Label; f: Label }
  | { kind: "label"; id: Label };

/** One encoded instruction (struct sock_filter). */
export interface SockFilter {
  code: number;
  jt: number;
  jf: number;
  k: number;
}

/** Builds a forward-only BPF program from instructions and labels. */
export class Assembler {
  #items: Item[] = [];
  #labels = 0;

  /** A new, not yet placed label. */
  label(): Label {
    return this.#labels++;
  }

  /** Places `label` at the current position. */
  place(label: Label): void {
    this.#items.push({ kind: "label", id: label });
  }

  /** A = u32 at offset `k` of seccomp_data. */
  load(k: number): void {
    this.#items.push({ kind: "ld", k });
  }

  /** A &= k. */
  and(k: number): void {
    this.#items.push({ kind: "and", k: k >>> 0 });
  }

  /** return k. */
  ret(k: number): void {
    this.#items.push({ kind: "ret", k: k >>> 0 });
  }

  /** Unconditional jump. */
  ja(to: Label): void {
    this.#items.push({ kind: "ja", to });
  }

  /** if (A <op> k) goto t else goto f. */
  jump(code: number, k: number, t: Label, f: Label): void {
    this.#items.push({ kind: "jmp", code, k: k >>> 0, t, f });
  }

  /** Lays the program out and encodes it. Every label must be placed after its users. */
  assemble(): SockFilter[] {
    // A `ja` to the very next instruction does nothing.
    this.#items = this.#items.filter((it, i) => {
      if (it.kind !== "ja") return true;
      for (let j = i + 1; j < this.#items.length; j++) {
        const next = this.#items[j]!;
        if (next.kind !== "label") return true;
        if (next.id === it.to) return false;
      }
      return true;
    });
    // Per conditional jump: whether its true/false edge goes through a trampoline.
    const far = new Map<Item, { t: boolean; f: boolean }>();
    for (;;) {
      const pos = new Map<Label, number>();
      const at = new Map<Item, number>();
      let pc = 0;
      for (const it of this.#items) {
        if (it.kind === "label") {
          pos.set(it.id, pc);
          continue;
        }
        at.set(it, pc);
        pc += 1 + this.#trampolines(far.get(it));
      }
      let grew = false;
      for (const it of this.#items) {
        if (it.kind !== "jmp") continue;
        const here = at.get(it)!;
        const tramp = far.get(it) ?? { t: false, f: false };
        const next = here + 1 + this.#trampolines(tramp);
        for (const edge of ["t", "f"] as const) {
          const target = pos.get(it[edge]);
          if (target === undefined || target < next) {
            throw new Error(
              `Cannot assemble seccomp filter: label ${it[edge]} is not ahead`,
            );
          }
          if (!tramp[edge] && target - here - 1 > 255) {
            tramp[edge] = true;
            far.set(it, tramp);
            grew = true;
          }
        }
      }
      if (!grew) return this.#encode(pos, far);
    }
  }

  #trampolines(t: { t: boolean; f: boolean } | undefined): number {
    return t ? Number(t.t) + Number(t.f) : 0;
  }

  #encode(
    pos: Map<Label, number>,
    far: Map<Item, { t: boolean; f: boolean }>,
  ): SockFilter[] {
    const out: SockFilter[] = [];
    const to = (l: Label) => pos.get(l)!;
    for (const it of this.#items) {
      switch (it.kind) {
        case "label":
          break;
        case "ld":
          out.push({ code: Op.LD_ABS, jt: 0, jf: 0, k: it.k });
          break;
        case "and":
          out.push({ code: Op.AND, jt: 0, jf: 0, k: it.k });
          break;
        case "ret":
          out.push({ code: Op.RET, jt: 0, jf: 0, k: it.k });
          break;
        case "ja":
          out.push({
            code: Op.JA,
            jt: 0,
            jf: 0,
            k: to(it.to) - out.length - 1,
          });
          break;
        case "jmp": {
          const here = out.length;
          const tr = far.get(it) ?? { t: false, f: false };
          const n = this.#trampolines(tr);
          // Trampolines follow the jump: first the true one, then the false one.
          const jt = tr.t ? 0 : to(it.t) - here - 1;
          const jf = tr.f ? (tr.t ? 1 : 0) : to(it.f) - here - 1;
          out.push({ code: it.code, jt, jf, k: it.k });
          if (tr.t) {
            out.push({ code: Op.JA, jt: 0, jf: 0, k: to(it.t) - here - 2 });
          }
          if (tr.f) {
            out.push({ code: Op.JA, jt: 0, jf: 0, k: to(it.f) - here - 1 - n });
          }
          break;
        }
      }
    }
    return out;
  }
}

/** Encodes instructions as the kernel's `struct sock_filter[]` (8 bytes each, little endian). */
export function encodeFilter(
  insns: readonly SockFilter[],
): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(insns.length * 8);
  const view = new DataView(bytes.buffer);
  insns.forEach((ins, i) => {
    view.setUint16(i * 8, ins.code, true);
    view.setUint8(i * 8 + 2, ins.jt);
    view.setUint8(i * 8 + 3, ins.jf);
    view.setUint32(i * 8 + 4, ins.k >>> 0, true);
  });
  return bytes;
}
