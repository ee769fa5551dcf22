/**
 * The sandbox's init: a tiny static executable (the `denobox_init` routine of
 * `sandbox/arch/*.S` in a one-segment ELF built here), kept in a sealed memfd and run with
 * execveat. It gives the long-lived PID 1 its own one-page address space, so nothing of the
 * parent's memory stays reachable from inside the sandbox, and it vforks the command from
 * there (so the command's maxrss is its own, not the parent's).
 */
import {
  ARCH,
  memfdCreate,
  type OwnedFd,
  sealMemfd,
  syscallNumber,
  write,
} from "denobox/libc";
import { ROUTINES } from "./_routine.ts";
import type { Arch, Program, StepArg, StepResult } from "./program.ts";

const BASE = 0x400000n;
const EHDR = 64, PHDR = 56;

const decoded = new Map<Arch, Uint8Array<ArrayBuffer>>();

/**
 * The routine's machine code for `arch` as bytes, decoded once per process (a cold process
 * spent ~0.3 ms per decode with a regex and parseInt per byte; `Uint8Array.fromHex` is
 * native). Shared: copy before changing it.
 */
export function routineBytes(arch: Arch = ARCH): Uint8Array<ArrayBuffer> {
  let b = decoded.get(arch);
  if (b === undefined) {
    decoded.set(arch, b = Uint8Array.fromHex(ROUTINES[arch].hex));
  }
  return b;
}

/** The init executable for `arch`: ELF header, one R+X PT_LOAD segment, code, params. */
export function initElf(arch: Arch = ARCH): Uint8Array<ArrayBuffer> {
  const r = ROUTINES[arch];
  const code = routineBytes(arch).slice();
  const pv = new DataView(code.buffer);
  [
    "read",
    "write",
    "signalfd4",
    "wait4",
    "kill",
    "exit_group",
    "pread64",
    "mmap",
    "clone",
  ].forEach((name, i) =>
    pv.setBigUint64(r.params + i * 8, BigInt(syscallNumber(name, arch)), true)
  );
  const total = EHDR + PHDR + code.length;
  const elf = new Uint8Array(total);
  const v = new DataView(elf.buffer);
  elf.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0]);
  v.setUint16(16, 2, true); // ET_EXEC
  v.setUint16(18, arch === "x86_64" ? 62 : 183, true); // EM_X86_64 / EM_AARCH64
  v.setUint32(20, 1, true);
  v.setBigUint64(24, BASE + BigInt(EHDR + PHDR + r.init), true); // e_entry
  v.setBigUint64(32, BigInt(EHDR), true); // e_phoff
  v.setUint16(52, EHDR, true);
  v.setUint16(54, PHDR, true);
  v.setUint16(56, 1, true);
  v.setUint32(EHDR, 1, true); // PT_LOAD
  v.setUint32(EHDR + 4, 5, true); // PF_R | PF_X
  v.setBigUint64(EHDR + 16, BASE, true); // p_vaddr
  v.setBigUint64(EHDR + 24, BASE, true); // p_paddr
  v.setBigUint64(EHDR + 32, BigInt(total), true); // p_filesz
  v.setBigUint64(EHDR + 40, BigInt(total), true); // p_memsz
  v.setBigUint64(EHDR + 48, 0x10000n, true); // p_align
  elf.set(code, EHDR + PHDR);
  return elf;
}

let memfd: OwnedFd | null = null;

/** The sealed memfd holding the init executable (made once per process, close-on-exec). */
export function initMemfd(): number {
  if (memfd) return memfd.fd;
  const fd = memfdCreate("denobox-init", { exec: true, sealing: true });
  const elf = initElf();
  let off = 0;
  while (off < elf.length) off += write(fd.fd, elf.subarray(off));
  sealMemfd(fd.fd);
  memfd = fd;
  return fd.fd;
}

/**
 * Appends the exec of the init: every fd of ours becomes close-on-exec except 0-2, fresh
 * copies (from fd 5 up) of `keep`, the control pipe (as fd 3) and the program's memfd (as
 * fd 4); then execveat(init). The steps appended afterwards run in the init's vforked child,
 * in the init's small address space: the command's own steps. Returns the copies of `keep`.
 */
export function appendInitTail(
  p: Program,
  keep: readonly StepArg[] = [],
): StepResult[] {
  p.closeRange(5, 0xffffffff, 4, {
    label: "close_range(5, CLOSE_RANGE_CLOEXEC)",
  });
  const F_DUPFD = 0;
  const copies = keep.map((fd) =>
    p.syscall("fcntl", [fd, F_DUPFD, 5], { label: "fcntl(F_DUPFD, 5)" })
  );
  const memfd = p.syscall("fcntl", [p.memoryFd, F_DUPFD, 5], {
    label: "fcntl(program memfd, F_DUPFD)",
  });
  p.dup3(p.fds.control, 3, 0, { label: "dup3(control fd, 3)" });
  p.dup3(memfd, 4, 0, { label: "dup3(program memfd, 4)" });
  p.execveat(p.fds.initMemfd, ["denobox-init"], [], {
    label: "execveat(init)",
  });
  p.setInitEntry();
  return copies;
}
