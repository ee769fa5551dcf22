/** The tar reader and writer, against each other and against GNU tar (no root needed). */
import { join } from "node:path";
import {
  type TarEntry,
  TarFormatError,
  TarReader,
  TarWriter,
} from "../../image/mod.ts";
import { assert, assertEquals, assertThrows } from "../_helpers.ts";
import { run } from "./_fixtures.ts";

function readAll(
  bytes: Uint8Array,
  chunk = bytes.length,
): { e: TarEntry; data: string }[] {
  const out: { e: TarEntry; data: string }[] = [];
  let cur = "";
  const dec = new TextDecoder();
  const r = new TarReader({
    entry: (e) => out.push({ e, data: "" }),
    data: (c) => cur += dec.decode(c),
    end: () => {
      out[out.length - 1]!.data = cur;
      cur = "";
    },
  });
  for (let i = 0; i < bytes.length; i += chunk) {
    r.push(bytes.subarray(i, i + chunk));
  }
  r.finish();
  return out;
}

Deno.test("tar: writer output reads back, whatever the chunking (long names, PAX, xattrs)", () => {
  const w = new TarWriter();
  const long = `${"dir/".repeat(40)}file-${"é".repeat(10)}`;
  w.add({
    name: "a.txt",
    mode: 0o640,
    uid: 1000,
    gid: 1001,
    mtimeMs: 1_700_000_000_500,
  }, new TextEncoder().encode("hello"));
  w.add(
    { name: long, uid: 3_000_000 },
    new TextEncoder().encode("x".repeat(700)),
  );
  w.add({
    name: "d",
    type: "dir",
    xattrs: { "user.k": new TextEncoder().encode("v") },
  });
  w.add({ name: "l", type: "symlink", linkname: `/${"t".repeat(150)}` });
  w.add({ name: "n", type: "char", devMajor: 1, devMinor: 3 });
  const bytes = w.finish();
  for (const chunk of [bytes.length, 512, 100, 7]) {
    const got = readAll(bytes, chunk);
    assertEquals(got.map((g) => g.e.name), ["a.txt", long, "d/", "l", "n"]);
    assertEquals(got[0]!.data, "hello");
    assertEquals(got[0]!.e.mode, 0o640);
    assertEquals([got[0]!.e.uid, got[0]!.e.gid], [1000, 1001]);
    assertEquals(got[0]!.e.mtimeMs, 1_700_000_000_500);
    assertEquals(got[1]!.data.length, 700);
    assertEquals(got[1]!.e.uid, 3_000_000);
    assertEquals(new TextDecoder().decode(got[2]!.e.xattrs["user.k"]), "v");
    assertEquals(got[3]!.e.linkname.length, 151);
    assertEquals([got[4]!.e.type, got[4]!.e.devMajor, got[4]!.e.devMinor], [
      "char",
      1,
      3,
    ]);
  }
});

Deno.test("tar: GNU tar reads what we write and we read what GNU tar writes", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const w = new TarWriter();
    const long = `${"x".repeat(120)}/${"y".repeat(120)}/z.txt`;
    w.add({ name: long }, new TextEncoder().encode("deep"));
    w.add({ name: "s", type: "symlink", linkname: "z" });
    await Deno.writeFile(join(dir, "ours.tar"), w.finish());
    const listing = await run("tar", ["-tvf", join(dir, "ours.tar")]);
    assert(listing.includes(long), listing);
    await Deno.mkdir(join(dir, "x"));
    await run("tar", ["-C", join(dir, "x"), "-xf", join(dir, "ours.tar")]);
    assertEquals(await Deno.readTextFile(join(dir, "x", long)), "deep");
    // GNU format long names (././@LongLink) and POSIX (PAX) from GNU tar.
    for (const format of ["gnu", "posix"]) {
      const out = join(dir, `${format}.tar`);
      await run("tar", [
        "-C",
        join(dir, "x"),
        `--format=${format}`,
        "-cf",
        out,
        ".",
      ]);
      const names = readAll(await Deno.readFile(out)).map((g) => g.e.name);
      assert(names.includes(`./${long}`), `${format}: ${names}`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("tar: malformed archives are refused with TarFormatError", () => {
  const ok = new TarWriter();
  ok.add({ name: "f" }, new Uint8Array(600));
  const bytes = ok.finish();
  assertThrows(
    () => readAll(bytes.subarray(0, 700)),
    TarFormatError,
    "truncated",
  );
  const bad = bytes.slice();
  bad[10] = 0x41;
  assertThrows(() => readAll(bad), TarFormatError, "checksum");
  const sparse = bytes.slice();
  sparse[156] = "S".charCodeAt(0);
  // fix the checksum so the type is what fails
  sparse.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += sparse[i]!;
  sparse.set(
    new TextEncoder().encode(sum.toString(8).padStart(6, "0") + "\0 "),
    148,
  );
  assertThrows(() => readAll(sparse), TarFormatError, "sparse");
  // An archive without end-of-archive blocks that stops on a member boundary is accepted.
  assertEquals(readAll(bytes.subarray(0, 512 + 1024)).length, 1);
});
