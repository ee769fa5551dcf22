import { assertEquals, hasCommand } from "../_helpers.ts";
import { ROUTINES } from "../../sandbox/_routine.ts";
import { assemble, TOOLS } from "../../sandbox/arch/assemble.ts";
import { initElf } from "../../sandbox/_init.ts";

for (const arch of ["x86_64", "aarch64"] as const) {
  const skip = !hasCommand(TOOLS[arch].as);
  Deno.test({
    name:
      `routine: ${arch} bytes match sandbox/arch/${arch}.S re-assembled with ${
        TOOLS[arch].as
      }${skip ? " (skipped: binutils for this arch missing)" : ""}`,
    ignore: skip,
    async fn() {
      const a = await assemble(arch);
      const hex = Array.from(a.bytes, (b) => b.toString(16).padStart(2, "0"))
        .join("");
      assertEquals(hex, ROUTINES[arch].hex);
      assertEquals(a.init, ROUTINES[arch].init);
      assertEquals(a.params, ROUTINES[arch].params);
    },
  });
  Deno.test({
    name: `routine: ${arch} object has no relocations (position-independent)`,
    ignore: skip,
    async fn() {
      const dir = await Deno.makeTempDir();
      try {
        const as = TOOLS[arch].as;
        const objdump = arch === "x86_64"
          ? "objdump"
          : "aarch64-linux-gnu-objdump";
        const src =
          new URL(`../../sandbox/arch/${arch}.S`, import.meta.url).pathname;
        await new Deno.Command(as, { args: ["-o", `${dir}/r.o`, src] })
          .output();
        const out = await new Deno.Command(objdump, {
          args: ["-r", `${dir}/r.o`],
          stdout: "piped",
        }).output();
        const text = new TextDecoder().decode(out.stdout);
        assertEquals(/RELOCATION RECORDS/.test(text), false, text);
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  });
  Deno.test(`routine: ${arch} init ELF header and params`, () => {
    const elf = initElf(arch);
    const v = new DataView(elf.buffer);
    assertEquals([...elf.subarray(0, 4)], [0x7f, 0x45, 0x4c, 0x46]);
    assertEquals(v.getUint16(18, true), arch === "x86_64" ? 62 : 183);
    assertEquals(
      v.getBigUint64(24, true),
      0x400000n + 120n + BigInt(ROUTINES[arch].init),
    );
    // params: read, write, signalfd4, wait4, kill, exit_group, pread64, mmap, clone
    const base = 120 + ROUTINES[arch].params;
    const nrs = Array.from(
      { length: 9 },
      (_, i) => Number(v.getBigUint64(base + i * 8, true)),
    );
    assertEquals(
      nrs,
      arch === "x86_64"
        ? [0, 1, 289, 61, 62, 231, 17, 9, 56]
        : [63, 64, 74, 260, 129, 94, 67, 222, 220],
    );
  });
}
