/**
 * spawn({ rootfs: { overlay } }): an overlayfs root mounted inside the sandbox's own mount
 * namespace, as root and rootless (user namespace + userxattr, kernel 5.11+).
 */
import {
  assert,
  assertEquals,
  assertRejects,
  childPids,
  ensureRootfs,
  IS_ROOT,
  mountsUnder,
  NOBODY,
  openFds,
  runAsNobody,
} from "../_helpers.ts";
import { SandboxSetupError, spawn } from "../../sandbox/mod.ts";
import { type OverlayProbe, overlayProbe } from "./_overlay_probe.ts";

const [major = 0, minor = 0] = Deno.osRelease().split(/[.-]/).map(Number);
const ROOTLESS_OVERLAY = major > 5 || (major === 5 && minor >= 11);

/**
 * A top layer (etc/who, an etc/group over busybox's) and empty upper/work dirs, all owned by
 * `owner` (rootless: layers owned by ids outside the user namespace cannot be changed).
 */
async function layers(owner?: { uid: number; gid: number }) {
  const dir = await Deno.makeTempDir({ prefix: "denobox-overlay-" });
  await Deno.chmod(dir, 0o755);
  const top = `${dir}/top`, upper = `${dir}/upper`, work = `${dir}/work`;
  await Deno.mkdir(`${top}/etc`, { recursive: true });
  await Deno.writeTextFile(`${top}/etc/who`, "top\n");
  await Deno.writeTextFile(`${top}/etc/group`, "layer-group\n");
  await Deno.mkdir(upper);
  await Deno.mkdir(work);
  if (owner) {
    for (const p of [top, `${top}/etc`, `${top}/etc/who`, `${top}/etc/group`]) {
      await Deno.chown(p, owner.uid, owner.gid);
    }
    for (const d of [upper, work]) await Deno.chown(d, owner.uid, owner.gid);
  }
  return {
    dir,
    top,
    upper,
    work,
    [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }),
  };
}

function check(r: OverlayProbe, l: { top: string; upper: string }): void {
  assertEquals(r.rw.code, 0, r.rw.err);
  assertEquals(
    r.rw.out,
    "top\nlayer-group\ngone\npid=2\n",
    `layers merge top first; the root is writable: ${r.rw.err}`,
  );
  assertEquals(Deno.readTextFileSync(`${l.upper}/new`), "hi\n");
  const wh = Deno.lstatSync(`${l.upper}/etc/who`);
  assert(wh.isCharDevice, "the removal is a whiteout in upper");
  assertEquals(
    Deno.readTextFileSync(`${l.top}/etc/who`),
    "top\n",
    "lower untouched",
  );
  assertEquals(r.ro.code, 0, r.ro.err);
  assertEquals(r.ro.out, "top\nrefused\n", "no upper: a read-only root");
}

Deno.test("spawn [root]: overlay rootfs", { ignore: !IS_ROOT }, async () => {
  const rootfs = await ensureRootfs();
  await (await spawn({ argv: ["/bin/true"], rootfs })).status;
  const before = openFds();
  await using l = await layers();
  check(await overlayProbe(rootfs, l.top, l.upper, l.work), l);
  assertEquals(mountsUnder(l.dir), []);
  assertEquals(mountsUnder(rootfs), []);
  assertEquals(openFds(), before);
  assertEquals(childPids(), []);
  // shapes are checked before anything runs; missing layers name themselves
  await assertRejects(
    () =>
      spawn({
        argv: ["/bin/true"],
        rootfs: { overlay: { lower: [rootfs], upper: l.upper } },
      }),
    TypeError,
    "upper and work",
  );
  await assertRejects(
    () =>
      spawn({
        argv: ["/bin/true"],
        rootfs: { overlay: { lower: ["/a:b"] } },
      }),
    TypeError,
    "holds ','",
  );
  const e = await assertRejects(
    () =>
      spawn({
        argv: ["/bin/true"],
        rootfs: { overlay: { lower: [`${l.dir}/missing`, rootfs] } },
      }),
    SandboxSetupError,
  ) as SandboxSetupError;
  assertEquals(e.code, "ENOENT");
  assertEquals(openFds(), before);
});

Deno.test(
  `spawn [userns]: overlay rootfs as nobody${
    ROOTLESS_OVERLAY ? "" : " (skipped: kernel before 5.11)"
  }`,
  { ignore: !IS_ROOT || !ROOTLESS_OVERLAY },
  async () => {
    const rootfs = await ensureRootfs();
    await using l = await layers(NOBODY);
    const r = await runAsNobody(
      new URL("./_overlay_probe.ts", import.meta.url),
      { args: [rootfs, l.top, l.upper, l.work] },
    );
    assertEquals(r.code, 0, r.stderr);
    check(JSON.parse(r.stdout), l);
    assertEquals(
      (await Deno.stat(`${l.upper}/new`)).uid,
      NOBODY.uid,
      "uid 0 inside wrote as nobody outside",
    );
    assertEquals(mountsUnder(l.dir), []);
  },
);
