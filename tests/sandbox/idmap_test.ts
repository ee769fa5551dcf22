/**
 * Multi-range id maps for a rootless caller: spawn writes them from the parent with
 * newuidmap/newgidmap (Debian `uidmap`) while the child waits, within the caller's
 * /etc/subuid and /etc/subgid ranges. The test gives the rootless test user (nobody, by uid)
 * a range of its own and removes exactly what it added afterwards.
 */
import {
  assertEquals,
  ensureRootfs,
  hasCommand,
  IS_ROOT,
  NOBODY,
  REPO,
  runAsNobody,
} from "../_helpers.ts";

const SUB = 2_100_000_000;
const COUNT = 65536;
const ENTRY = `${NOBODY.uid}:${SUB}:${COUNT}`;

/** Adds `ENTRY` to /etc/subuid and /etc/subgid (creating them if needed) until disposed. */
async function subIdRanges(): Promise<AsyncDisposable> {
  const undo: (() => Promise<void>)[] = [];
  for (const file of ["/etc/subuid", "/etc/subgid"]) {
    let text: string | null = null;
    try {
      text = await Deno.readTextFile(file);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    if (text?.split("\n").includes(ENTRY)) continue;
    const sep = text && !text.endsWith("\n") ? "\n" : "";
    await Deno.writeTextFile(file, `${text ?? ""}${sep}${ENTRY}\n`);
    if (text === null) await Deno.chmod(file, 0o644);
    undo.push(async () => {
      const now = await Deno.readTextFile(file);
      const kept = now.split("\n").filter((l) => l !== ENTRY).join("\n");
      if (text === null && kept.trim() === "") await Deno.remove(file);
      else await Deno.writeTextFile(file, kept);
    });
  }
  return {
    async [Symbol.asyncDispose]() {
      for (const u of undo) await u();
    },
  };
}

const SCRIPT = `
import { spawn } from "${REPO}/sandbox/mod.ts";
const [rootfs, shared] = Deno.args;
const map = [
  { inside: 0, outside: ${NOBODY.uid}, count: 1 },
  { inside: 1, outside: ${SUB}, count: ${COUNT - 1} },
];
await using box = await spawn({
  argv: ["/bin/sh", "-c", "cat /proc/self/uid_map /proc/self/gid_map; touch /mnt/f && chown 1000:1000 /mnt/f && echo chowned"],
  rootfs,
  env: { PATH: "/bin" },
  uidMap: map,
  gidMap: map.map((m) => ({ ...m, outside: m.inside === 0 ? ${NOBODY.gid} : m.outside })),
  mounts: [{ type: "bind", source: shared, target: "/mnt" }],
  stdout: "pipe",
  stderr: "pipe",
});
const o = await box.output();
const dec = new TextDecoder();
console.log(JSON.stringify({ code: o.status.code, out: dec.decode(o.stdout), err: dec.decode(o.stderr) }));
`;

Deno.test(
  `spawn [userns]: multi-range id maps via newuidmap/newgidmap as nobody${
    hasCommand("newuidmap") ? "" : " (skipped: uidmap not installed)"
  }`,
  { ignore: !IS_ROOT || !hasCommand("newuidmap") },
  async () => {
    const rootfs = await ensureRootfs();
    const shared = await Deno.makeTempDir({ prefix: "denobox-idmap-" });
    try {
      await Deno.chown(shared, NOBODY.uid, NOBODY.gid);
      let r;
      {
        await using _ranges = await subIdRanges();
        r = await runAsNobody(SCRIPT, { code: true, args: [rootfs, shared] });
      }
      assertEquals(r.code, 0, r.stderr);
      const res = JSON.parse(r.stdout);
      assertEquals(res.code, 0, res.err);
      const lines = (res.out as string).trim().split("\n").map((l) =>
        l.trim().split(/\s+/).map(Number)
      );
      const want = (first: number) => [
        [0, first, 1],
        [1, SUB, COUNT - 1],
      ];
      assertEquals(lines.slice(0, 2), want(NOBODY.uid), "uid_map");
      assertEquals(lines.slice(2, 4), want(NOBODY.gid), "gid_map");
      const st = await Deno.stat(`${shared}/f`);
      assertEquals(
        [st.uid, st.gid],
        [SUB + 999, SUB + 999],
        "uid 1000 inside is SUB + 999 outside",
      );
      for (const f of ["/etc/subuid", "/etc/subgid"]) {
        const text = await Deno.readTextFile(f).catch(() => "");
        assertEquals(text.split("\n").includes(ENTRY), false, `${f} restored`);
      }
    } finally {
      await Deno.remove(shared, { recursive: true });
    }
  },
);
