/**
 * The user mount types of `spawn({ mounts })`, checked from inside the sandbox: fstype and
 * options in /proc/self/mountinfo, tmpfs size and mode, read-only mounts refusing writes, a
 * read-write bind reaching the host, recursive and non-recursive binds, mqueue and devpts
 * working, and bad specs refused before anything runs.
 */
import { createHash } from "node:crypto";
import { dirname, join } from "node:path";
import {
  assert,
  assertEquals,
  assertMatch,
  assertRejects,
  CACHE,
  childPids,
  ensureRootfs,
  IS_ROOT,
  mountsUnder,
  openFds,
  runAsNobody,
} from "../_helpers.ts";
import { mount, umount } from "../../libc/mod.ts";
import { type MountSpec, spawn } from "../../sandbox/mod.ts";
import {
  type MountFixtures,
  type MountInfo,
  mountsProbe,
} from "./_mounts_probe.ts";

const SOURCE = new URL("./mountprobe.c", import.meta.url).pathname;

/** Builds tests/sandbox/mountprobe.c (gcc -static) once per source version, world-readable. */
async function ensureMountProbe(): Promise<string> {
  const src = await Deno.readFile(SOURCE);
  const hash = createHash("sha256").update(src).digest("hex").slice(0, 16);
  const out = join(CACHE, "mountprobe", hash, "mountprobe");
  try {
    await Deno.stat(out);
    return dirname(out);
  } catch { /* build it */ }
  await Deno.mkdir(dirname(out), { recursive: true });
  const tmp = `${out}.tmp-${Deno.pid}`;
  const cc = await new Deno.Command("gcc", {
    args: ["-static", "-O1", "-Wall", "-o", tmp, SOURCE],
    stderr: "piped",
  }).output();
  if (!cc.success) {
    throw new Error(
      `Cannot build mountprobe: ${new TextDecoder().decode(cc.stderr)}`,
    );
  }
  await Deno.chmod(tmp, 0o755);
  await Deno.rename(tmp, out);
  for (const d of [CACHE, dirname(dirname(out)), dirname(out)]) {
    await Deno.chmod(d, 0o755);
  }
  return dirname(out);
}

/** Host fixtures (root): a rw dir, a dir with a tmpfs submount; removed by the disposer. */
async function fixtures(): Promise<MountFixtures & AsyncDisposable> {
  const base = await Deno.makeTempDir({ prefix: "denobox-mounts-" });
  await Deno.chmod(base, 0o755);
  const rwDir = join(base, "rw"), recDir = join(base, "rec");
  await Deno.mkdir(rwDir);
  await Deno.chmod(rwDir, 0o777);
  await Deno.mkdir(join(recDir, "sub"), { recursive: true });
  await Deno.chmod(recDir, 0o755);
  mount("tmpfs", join(recDir, "sub"), { type: "tmpfs", data: "mode=0755" });
  await Deno.writeTextFile(join(recDir, "sub", "marker"), "submount\n");
  await Deno.chmod(join(recDir, "sub", "marker"), 0o644);
  return {
    rootfs: await ensureRootfs(),
    probeDir: await ensureMountProbe(),
    rwDir,
    recDir,
    async [Symbol.asyncDispose]() {
      umount(join(recDir, "sub"));
      await Deno.remove(base, { recursive: true });
    },
  };
}

function mountAt(mounts: MountInfo[], target: string): MountInfo {
  // the last mount at a path is the visible one
  const m = mounts.filter((x) => x.target === target).pop();
  if (!m) throw new Error(`No mount at ${target}: ${JSON.stringify(mounts)}`);
  return m;
}

function hasOptions(m: MountInfo, want: string[]): void {
  for (const o of want) {
    assert(m.options.includes(o), `${m.target}: ${o} in ${m.options}`);
  }
}

function checkMounts(
  r: Record<string, unknown>,
  f: MountFixtures,
  rootless: boolean,
): void {
  assertEquals(r.code, 0, String(r.stderr));
  const mounts = r.mounts as MountInfo[];
  const c = r.checks as Record<string, string>;
  const at = (t: string) => mountAt(mounts, t);

  // tmpfs: size and mode as asked, nosuid+nodev, rw unless asked read-only
  assertEquals(at("/tmp").fstype, "tmpfs");
  hasOptions(at("/tmp"), ["rw", "nosuid", "nodev"]);
  assert(at("/tmp").superOptions.includes("size=2048k"), "size=2m");
  assertEquals(c.tmpStat, `ok bytes=${2 * 1024 * 1024} mode=1777`);
  assert(at("/tmp/small").superOptions.includes("size=64k"));
  assertEquals(c.smallStat, "ok bytes=65536 mode=700");
  hasOptions(at("/mnt"), ["ro", "nosuid", "nodev"]);
  assertEquals(c.roTmpfsCreate, "err EROFS");

  // binds: read-only refuses writes (the probe still runs from it), read-write reaches the host
  hasOptions(at("/tmp/bin"), ["ro"]);
  assertEquals(c.roBindCreate, "err EROFS");
  hasOptions(at("/tmp/rw"), ["rw"]);
  assertEquals(c.rwBindCreate, "ok");
  assertEquals(
    Deno.statSync(join(f.rwDir, "from-sandbox")).isFile,
    true,
    "the write reached the host",
  );
  // recursive (the default): the submount comes along
  assertEquals(at("/tmp/rec/sub").fstype, "tmpfs");
  assertEquals(c.recMarker, "submount");

  // kernel file systems with the flags spawn promises
  assertEquals(at("/tmp/proc2").fstype, "proc");
  hasOptions(at("/tmp/proc2"), ["rw", "nosuid", "nodev", "noexec"]);
  const [mine, theirs] = c.procPidns!.split(" ");
  assertEquals(mine, theirs, "the proc of the sandbox's pid namespace");
  // the init, the shell and the shell's few children: none of the host's processes
  const pids = c.procPids!.trim().split(" ").map((p) => Number(p.slice(11)));
  assertEquals(pids.slice(0, 2), [1, 2], c.procPids);
  assert(pids.every((p) => p < 100), c.procPids);
  assertEquals(at("/tmp/sys").fstype, "sysfs");
  hasOptions(at("/tmp/sys"), ["ro", "nosuid", "nodev", "noexec"]);
  assertEquals(c.sysCreate, "err EROFS", "sysfs is read-only");
  assertEquals(at("/tmp/mq").fstype, "mqueue");
  hasOptions(at("/tmp/mq"), ["rw", "nosuid", "nodev", "noexec"]);
  assertEquals(
    c.mq,
    "ok /tmp/mq/denobox-probe",
    "the queue shows in the mount",
  );
  assertEquals(at("/tmp/pts").fstype, "devpts");
  hasOptions(at("/tmp/pts"), ["rw", "nosuid", "noexec"]);
  assertMatch(c.pty!, /^ok \/tmp\/pts\/0$/, "a fresh devpts instance");

  // non-recursive: the submount stays behind; rootless, the kernel refuses it (EINVAL) since
  // it would uncover what the (locked) submount hides
  const nr = r.nonRecursive as Record<string, unknown>;
  if (rootless) {
    assertEquals(nr.error, "EINVAL", JSON.stringify(nr));
    assertMatch(String(nr.step), /^mount\(/);
  } else {
    assertEquals(nr, { listing: "end\n", code: 0 });
  }
}

Deno.test(
  "spawn [root]: every user mount type, checked from inside",
  { ignore: !IS_ROOT },
  async () => {
    await using f = await fixtures();
    await (await spawn({ argv: ["/bin/true"], rootfs: f.rootfs })).status;
    const before = openFds();
    checkMounts(await mountsProbe(f), f, false);
    assertEquals(openFds(), before);
    assertEquals(mountsUnder(f.rootfs), []);
    assertEquals(mountsUnder(f.rwDir), []);
    assertEquals(childPids(), []);
  },
);

Deno.test(
  "spawn [userns]: every user mount type as nobody (a non-recursive bind over a locked submount is EINVAL)",
  { ignore: !IS_ROOT },
  async () => {
    await using f = await fixtures();
    const r = await runAsNobody(
      new URL("./_mounts_probe.ts", import.meta.url),
      { args: [JSON.stringify(f)] },
    );
    assertEquals(r.code, 0, r.stderr);
    checkMounts(JSON.parse(r.stdout), f, true);
  },
);

Deno.test("spawn: bad mount specs are TypeError/RangeError before anything runs", async () => {
  const before = openFds();
  const bad: [unknown, ErrorConstructor][] = [
    [{ type: "tmpfs", target: "tmp" }, TypeError],
    [{ type: "bind", source: "/etc", target: "../etc" }, TypeError],
    [{ type: "bind", source: "etc", target: "/etc" }, TypeError],
    [{ type: "nfs", target: "/mnt" }, TypeError],
    [null, TypeError],
    [{ type: "tmpfs", target: "/t", size: "lots" }, RangeError],
    [{ type: "tmpfs", target: "/t", size: -1 }, RangeError],
    [{ type: "tmpfs", target: "/t", mode: 0o17777 }, RangeError],
    [{ type: "tmpfs", target: "/t", mode: 1.5 }, RangeError],
  ];
  for (const [m, type] of bad) {
    await assertRejects(
      () => spawn({ argv: ["/bin/true"], mounts: [m as MountSpec] }),
      type,
    );
  }
  await assertRejects(
    () => spawn({ argv: ["/bin/true"], mounts: {} as MountSpec[] }),
    TypeError,
  );
  assertEquals(childPids(), []);
  assertEquals(openFds(), before);
});
