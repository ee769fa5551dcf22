/**
 * A corpus of hostile layer tarballs: each tries to create, change or remove something outside
 * the directory it is unpacked into. Used by hostile_test.ts; also a generator script:
 *
 *   tools/deno run -A tests/image/hostile.ts OUT_DIR OUTSIDE_DIR
 *
 * writes one `<name>.tar` per case into OUT_DIR, aimed at OUTSIDE_DIR (absolute paths and
 * symlinks point there; `..` paths assume the target is OUTSIDE_DIR/../a/b/target).
 */
import { TarWriter } from "../../image/tar.ts";

/** One attack. */
export interface HostileCase {
  /** Short name. */
  name: string;
  /** What it tries. */
  what: string;
  /** The archive. */
  tar: Uint8Array;
  /**
   * `"error"`: must be refused; `"safe"`: must succeed, inside the target only;
   * `"contained"`: either (a `LayerError` or success), nothing outside touched.
   */
  expect: "error" | "safe" | "contained";
  /** Options for applyLayer beyond the defaults. */
  options?: Record<string, unknown>;
  /** Extra check of the target after a "safe" case. */
  check?: (target: string) => void;
}

const enc = new TextEncoder();

function tar(build: (w: TarWriter) => void): Uint8Array {
  const w = new TarWriter();
  build(w);
  return w.finish();
}

// A raw header block with a valid checksum, for what TarWriter refuses to write.
function rawHeader(
  f: { name: string; type: string; size: number; mode?: number },
): Uint8Array {
  const h = new Uint8Array(512);
  const put = (off: number, s: string) => h.set(enc.encode(s), off);
  put(0, f.name.slice(0, 100));
  put(100, (f.mode ?? 0o644).toString(8).padStart(7, "0"));
  put(108, "0000000");
  put(116, "0000000");
  put(124, f.size.toString(8).padStart(11, "0"));
  put(136, "00000000000");
  h[156] = f.type.charCodeAt(0);
  put(257, "ustar\x0000");
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  put(148, sum.toString(8).padStart(6, "0") + "\0 ");
  return h;
}

function padded(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(Math.ceil(data.length / 512) * 512);
  out.set(data);
  return out;
}

function cat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

const text = (s: string) => enc.encode(s);
const UP = "../../../outside";

/** The corpus, aimed at `outside` (an absolute directory holding `victim` and `victimdir/`). */
export function hostileCorpus(outside: string): HostileCase[] {
  const cases: HostileCase[] = [
    {
      name: "absolute-path",
      what: "a member with an absolute name",
      expect: "error",
      tar: tar((w) => w.add({ name: `${outside}/pwned` }, text("x"))),
    },
    {
      name: "dotdot",
      what: "a member name climbing out with ..",
      expect: "error",
      tar: tar((w) => w.add({ name: `${UP}/pwned` }, text("x"))),
    },
    {
      name: "dotdot-nested",
      what: "a .. hidden after a real directory",
      expect: "error",
      tar: tar((w) => {
        w.add({ name: "x", type: "dir" });
        w.add({ name: `x/../${UP}/pwned` }, text("x"));
      }),
    },
    {
      name: "dotdot-pax-path",
      what: "an innocent header name overridden by a PAX path with ..",
      expect: "error",
      tar: tar((w) =>
        w.add({ name: `${UP}/${"p".repeat(120)}/pwned` }, text("x"))
      ),
    },
    {
      name: "dotdot-gnu-longname",
      what: "a GNU ././@LongLink name with ..",
      expect: "error",
      tar: (() => {
        const long = text(`${UP}/${"q".repeat(120)}\0`);
        return cat(
          rawHeader({ name: "././@LongLink", type: "L", size: long.length }),
          padded(long),
          rawHeader({ name: "innocent", type: "0", size: 1 }),
          padded(text("x")),
          new Uint8Array(1024),
        );
      })(),
    },
    {
      name: "symlink-absolute-write-through",
      what: "a symlink to an outside directory, then a file written through it",
      expect: "contained",
      tar: tar((w) => {
        w.add({ name: "l", type: "symlink", linkname: outside });
        w.add({ name: "l/pwned" }, text("x"));
      }),
    },
    {
      name: "symlink-relative-write-through",
      what: "a relative symlink climbing out, then a file through it",
      expect: "contained",
      tar: tar((w) => {
        w.add({ name: "l", type: "symlink", linkname: UP });
        w.add({ name: "l/pwned" }, text("x"));
      }),
    },
    {
      name: "symlink-chain",
      what: "a chain of symlinks whose last hop climbs out",
      expect: "contained",
      tar: tar((w) => {
        w.add({ name: "a", type: "symlink", linkname: "b" });
        w.add({ name: "b", type: "symlink", linkname: `../${UP}` });
        w.add({ name: "a/pwned" }, text("x"));
      }),
    },
    {
      name: "symlink-to-root-write",
      what:
        "a symlink to / then a file through it: lands in the target's own root",
      expect: "safe",
      tar: tar((w) => {
        w.add({ name: "etc", type: "dir" });
        w.add({ name: "l", type: "symlink", linkname: "/" });
        w.add({ name: "l/etc/pwned" }, text("x"));
        w.add({ name: "up", type: "symlink", linkname: "../../../../../.." });
        w.add({ name: "up/etc/pwned2" }, text("x"));
      }),
      check: (t) => {
        Deno.statSync(`${t}/etc/pwned`);
        Deno.statSync(`${t}/etc/pwned2`);
      },
    },
    {
      name: "symlink-then-overwrite",
      what:
        "a symlink to an outside file, then a regular file of the same name",
      expect: "safe",
      tar: tar((w) => {
        w.add({
          name: "victim",
          type: "symlink",
          linkname: `${outside}/victim`,
        });
        w.add({ name: "victim" }, text("pwned"));
      }),
      check: (t) => {
        if (Deno.readTextFileSync(`${t}/victim`) !== "pwned") {
          throw new Error("file not replaced");
        }
        if (Deno.lstatSync(`${t}/victim`).isSymlink) {
          throw new Error("symlink kept");
        }
      },
    },
    {
      name: "hardlink-absolute",
      what: "a hard link to an absolute outside file",
      expect: "error",
      tar: tar((w) =>
        w.add({ name: "h", type: "hardlink", linkname: `${outside}/victim` })
      ),
    },
    {
      name: "hardlink-dotdot",
      what: "a hard link climbing out with ..",
      expect: "error",
      tar: tar((w) =>
        w.add({ name: "h", type: "hardlink", linkname: `${UP}/victim` })
      ),
    },
    {
      name: "hardlink-through-symlink",
      what:
        "a hard link whose target path goes through a symlink to the outside",
      expect: "error",
      tar: tar((w) => {
        w.add({ name: "s", type: "symlink", linkname: outside });
        w.add({ name: "h", type: "hardlink", linkname: "s/victim" });
      }),
    },
    {
      name: "hardlink-to-symlink-then-write",
      what:
        "a hard link to a symlink pointing out, then a file written at the link",
      expect: "safe",
      tar: tar((w) => {
        w.add({ name: "s", type: "symlink", linkname: `${outside}/victim` });
        w.add({ name: "h", type: "hardlink", linkname: "s" });
        w.add({ name: "h" }, text("pwned"));
      }),
    },
    {
      name: "dir-replaced-by-symlink",
      what:
        "a directory, then a symlink of the same name pointing out, then a file below it",
      expect: "contained",
      tar: tar((w) => {
        w.add({ name: "d", type: "dir" });
        w.add({ name: "d/f" }, text("x"));
        w.add({ name: "d", type: "symlink", linkname: outside });
        w.add({ name: "d/pwned" }, text("x"));
      }),
    },
    {
      name: "symlink-then-mkdir",
      what: "a directory entry below a symlink pointing out",
      expect: "contained",
      tar: tar((w) => {
        w.add({ name: "l", type: "symlink", linkname: outside });
        w.add({ name: "l/newdir", type: "dir", mode: 0o777 });
      }),
    },
    {
      name: "symlink-then-fifo",
      what: "a FIFO created below a symlink pointing out",
      expect: "contained",
      tar: tar((w) => {
        w.add({ name: "l", type: "symlink", linkname: outside });
        w.add({ name: "l/fifo", type: "fifo" });
      }),
    },
    {
      name: "whiteout-through-symlink",
      what: "a whiteout below a symlink, naming an outside file",
      expect: "contained",
      tar: tar((w) => {
        w.add({ name: "l", type: "symlink", linkname: outside });
        w.add({ name: "l/.wh.victim" });
      }),
    },
    {
      name: "opaque-through-symlink",
      what:
        "an opaque-directory marker below a symlink to an outside directory",
      expect: "contained",
      tar: tar((w) => {
        w.add({ name: "l", type: "symlink", linkname: outside });
        w.add({ name: "l/.wh..wh..opq" });
      }),
    },
    {
      name: "whiteout-dotdot",
      what: "a whiteout naming '..' (would delete the parent)",
      expect: "error",
      tar: tar((w) => {
        w.add({ name: "sub", type: "dir" });
        w.add({ name: "sub/.wh..." });
      }),
    },
    {
      name: "device-node",
      what: "a character device (/dev/mem's numbers) where devices are refused",
      expect: "error",
      options: { devices: "error" },
      tar: tar((w) =>
        w.add({
          name: "mem",
          type: "char",
          devMajor: 1,
          devMinor: 1,
          mode: 0o666,
        })
      ),
    },
    {
      name: "device-node-skipped",
      what: "a block device where devices are skipped (the rootless default)",
      expect: "safe",
      options: { devices: "skip" },
      tar: tar((w) =>
        w.add({
          name: "sda",
          type: "block",
          devMajor: 8,
          devMinor: 0,
          mode: 0o666,
        })
      ),
      check: (t) => {
        if (
          Deno.lstatSync(t).isDirectory && [...Deno.readDirSync(t)].length !== 0
        ) {
          throw new Error("device node created");
        }
      },
    },
    {
      name: "setuid-dropped",
      what: "a setuid-root shell when setuid bits are dropped",
      expect: "safe",
      options: { dropSetuid: true },
      tar: tar((w) => w.add({ name: "sh", mode: 0o4755 }, text("#!/bin/sh\n"))),
      check: (t) => {
        const mode = Deno.statSync(`${t}/sh`).mode! & 0o7777;
        if (mode !== 0o755) throw new Error(`mode ${mode.toString(8)}`);
      },
    },
    {
      name: "nul-in-name",
      what: "a PAX path holding a NUL byte (C would cut it short)",
      expect: "error",
      tar: tar((w) =>
        w.add({ name: `ok\0/${"a/".repeat(130)}${UP}/pwned` }, text("x"))
      ),
    },
    {
      name: "bad-checksum",
      what: "a header whose checksum does not match",
      expect: "error",
      tar: (() => {
        const t = tar((w) => w.add({ name: "f" }, text("x")));
        t[0] = "g".charCodeAt(0);
        return t;
      })(),
    },
    {
      name: "truncated",
      what: "an archive cut inside a member's data",
      expect: "error",
      tar: tar((w) => w.add({ name: "f" }, new Uint8Array(5000))).subarray(
        0,
        2048,
      ),
    },
    {
      name: "huge-size",
      what: "a member claiming 8 GiB of data in a tiny stream",
      expect: "error",
      tar: cat(
        rawHeader({ name: "big", type: "0", size: 0o77777777777 }),
        new Uint8Array(512),
      ),
    },
    {
      name: "huge-pax-header",
      what: "an extended header claiming 64 MiB (memory exhaustion)",
      expect: "error",
      tar: cat(
        rawHeader({ name: "PaxHeader", type: "x", size: 64 << 20 }),
        new Uint8Array(512),
      ),
    },
    {
      name: "overlay-xattr",
      what: "a trusted.overlay.redirect xattr (would steer overlayfs lookups)",
      expect: "safe",
      tar: tar((w) =>
        w.add({
          name: "d",
          type: "dir",
          xattrs: { "trusted.overlay.redirect": text("/etc") },
        })
      ),
    },
    {
      name: "hardlink-to-root",
      what: "a hard link to the root directory",
      expect: "error",
      tar: tar((w) => w.add({ name: "h", type: "hardlink", linkname: "./" })),
    },
  ];
  return cases;
}

if (import.meta.main) {
  const [out, outside] = Deno.args;
  if (!out || !outside) {
    console.error("usage: hostile.ts OUT_DIR OUTSIDE_DIR");
    Deno.exit(2);
  }
  await Deno.mkdir(out, { recursive: true });
  for (const c of hostileCorpus(outside)) {
    await Deno.writeFile(`${out}/${c.name}.tar`, c.tar);
    console.log(`${c.name}.tar  ${c.expect}  ${c.what}`);
  }
}
