/**
 * The hostile-tar corpus: every attack is refused with a clear error or applied harmlessly
 * inside the target; the tree around the target (holding the files the attacks aim at) is
 * byte-for-byte and inode-for-inode unchanged afterwards.
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import {
  applyLayer,
  type ApplyOptions,
  LayerError,
  TarFormatError,
} from "../../image/mod.ts";
import {
  assert,
  assertEquals,
  IS_ROOT,
  openFds,
  runAsNobody,
} from "../_helpers.ts";
import { hostileCorpus } from "./hostile.ts";

// Everything under `dir` except `skip`: type, mode, owner, size, mtime, inode, link count,
// symlink target and content hash.
function fingerprint(dir: string, skip: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of Deno.readDirSync(d)) {
      const p = join(d, e.name);
      if (p === skip) continue;
      const st = Deno.lstatSync(p);
      let extra = "";
      if (st.isSymlink) extra = Deno.readLinkSync(p);
      else if (st.isFile) {
        extra = createHash("sha256").update(Deno.readFileSync(p)).digest("hex");
      }
      out[p] = [
        st.mode,
        st.uid,
        st.gid,
        st.size,
        st.mtime?.getTime(),
        st.ino,
        st.nlink,
        extra,
      ]
        .join(" ");
      if (st.isDirectory) walk(p);
    }
  };
  walk(dir);
  return out;
}

async function world(): Promise<
  { base: string; outside: string; target: string }
> {
  const base = await Deno.makeTempDir({ prefix: "denobox-hostile-" });
  const outside = join(base, "outside");
  await Deno.mkdir(join(outside, "victimdir"), { recursive: true });
  await Deno.writeTextFile(join(outside, "victim"), "original");
  await Deno.writeTextFile(join(outside, "victimdir", "keep"), "keep");
  await Deno.mkdir(join(base, "a", "b"), { recursive: true });
  return { base, outside, target: join(base, "a", "b", "target") };
}

for (const mode of ["apply", "overlay"] as const) {
  Deno.test(`hostile corpus (${mode} whiteouts): nothing outside the target changes [root]`, async () => {
    const { base, outside, target } = await world();
    const fdsBefore = openFds();
    try {
      const corpus = hostileCorpus(outside);
      assert(corpus.length >= 15, "at least 15 attacks");
      const before = fingerprint(outside, "");
      const around = () => [
        [...Deno.readDirSync(base)].map((e) => e.name).sort(),
        [...Deno.readDirSync(join(base, "a"))].map((e) => e.name),
        [...Deno.readDirSync(join(base, "a", "b"))].map((e) => e.name),
      ];
      for (const c of corpus) {
        await Deno.mkdir(target, { recursive: true });
        const options = { whiteouts: mode, ...c.options } as ApplyOptions;
        let error: unknown = null;
        try {
          await applyLayer(target, c.tar, options);
        } catch (e) {
          error = e;
        }
        if (c.expect === "contained" && error !== null) {
          assert(
            error instanceof LayerError,
            `${c.name}: expected a LayerError, got ${error}`,
          );
        } else if (c.expect === "error") {
          assert(
            error instanceof LayerError || error instanceof TarFormatError,
            `${c.name}: expected a LayerError/TarFormatError, got ${error}`,
          );
          assert(
            /^Cannot /.test((error as Error).message),
            `${c.name}: message ${error}`,
          );
        } else if (c.expect === "safe") {
          assertEquals(error, null, `${c.name}: ${error}`);
          c.check?.(target);
        }
        assertEquals(
          fingerprint(outside, ""),
          before,
          `${c.name} changed the world outside`,
        );
        assertEquals(
          around(),
          [["a", "outside"], ["b"], ["target"]],
          `${c.name} left files around`,
        );
        await Deno.remove(target, { recursive: true });
      }
      assertEquals(openFds(), fdsBefore, "fds leaked");
    } finally {
      await Deno.remove(base, { recursive: true });
    }
  });
}

Deno.test("hostile corpus as an unprivileged user: devices skipped, nothing outside changes [root]", async () => {
  if (!IS_ROOT) return;
  const { base, outside } = await world();
  try {
    await Deno.chmod(base, 0o755);
    const script = `
      import { applyLayer, TarWriter } from "${
      new URL("../../image/mod.ts", import.meta.url).href
    }";
      import { hostileCorpus } from "${
      new URL("./hostile.ts", import.meta.url).href
    }";
      const results = [];
      const w = new TarWriter();
      w.add({ name: "null", type: "char", devMajor: 1, devMinor: 3, mode: 0o666 });
      w.add({ name: "wh/.wh.gone" });
      const extra = [{ name: "rootless-device", expect: "safe", tar: w.finish() }];
      for (const c of [...hostileCorpus(${
      JSON.stringify(outside)
    }), ...extra]) {
        const t = await Deno.makeTempDir();
        try {
          const r = await applyLayer(t, c.tar, { whiteouts: "overlay", ...(c.options ?? {}) });
          results.push([c.name, "ok", r.skipped.map((s) => s.reason).join(";"), [...Deno.readDirSync(t)].map((e) => e.name).sort().join(",")]);
        } catch (e) {
          results.push([c.name, "error", e.name, e.message]);
        } finally {
          await Deno.remove(t, { recursive: true });
        }
      }
      console.log(JSON.stringify(results));
    `;
    const before = fingerprint(base, "");
    const r = await runAsNobody(script, { code: true });
    assertEquals(r.code, 0, r.stderr);
    const results = JSON.parse(r.stdout) as string[][];
    const byName = Object.fromEntries(results.map((x) => [x[0], x.slice(1)]));
    assertEquals(byName["rootless-device"]![0], "ok");
    assert(
      byName["rootless-device"]![1]!.includes("device node"),
      "device skipped",
    );
    // The whiteout (a 0/0 char device) is allowed rootless; the real device is not created.
    assertEquals(byName["rootless-device"]![2], "wh");
    for (const c of hostileCorpus(outside)) {
      const [outcome, kind] = byName[c.name]!;
      if (c.expect === "contained") {
        assert(
          outcome === "ok" || kind === "LayerError",
          `${c.name}: ${byName[c.name]}`,
        );
      } else {
        assertEquals(
          outcome,
          c.expect === "error" ? "error" : "ok",
          `${c.name}: ${byName[c.name]}`,
        );
      }
    }
    assertEquals(fingerprint(base, ""), before);
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});
