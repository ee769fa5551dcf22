// The CLI rootless (uid 65534, a store of its own): `run` of an image uses an overlay that the
// sandbox mounts (no copy of the image on disk), `commit` stores exactly the change, and `cp`
// and `export` of the stopped container see its whole merged root through a helper process.
// Also the private-copy mode (DENOBOX_STORAGE_DRIVER=vfs): its commit stores only the change.
import { join } from "node:path";
import {
  assert,
  assertEquals,
  assertMatch,
  ensureRootfs,
  exists,
  IS_ROOT,
  mountsUnder,
  NOBODY,
  runAsNobody,
} from "../_helpers.ts";
import { DENOBOX } from "./_cli.ts";

const DRIVER = new URL("./_nobody_cli.ts", import.meta.url);

interface Result {
  args: string[];
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs CLI commands (each with `--root root`) as nobody, in order. */
async function asNobody(
  root: string,
  commands: string[][],
  env: Record<string, string> = {},
): Promise<Result[]> {
  const r = await runAsNobody(DRIVER, {
    args: [
      JSON.stringify(commands.map((c) => ["--root", root, ...c])),
      JSON.stringify({ PATH: "/usr/bin:/bin", ...env }),
    ],
  });
  assertEquals(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

function ok(r: Result | undefined): Result {
  assert(r, "a command's result is missing");
  assertEquals(r.code, 0, `${r.args.slice(2).join(" ")}: ${r.stderr}`);
  return r;
}

async function tarList(file: string, verbose = false): Promise<string[]> {
  const out = await new Deno.Command("tar", {
    args: [verbose ? "-tvf" : "-tf", file],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert(out.success, new TextDecoder().decode(out.stderr));
  return new TextDecoder().decode(out.stdout).split("\n").filter(Boolean);
}

/** The entries of the top layer of image archive `file` (from `denobox save`). */
async function topLayer(file: string, verbose = false): Promise<string[]> {
  const dir = await Deno.makeTempDir({ prefix: "denobox-save-" });
  try {
    const x = await new Deno.Command("tar", { args: ["-xf", file, "-C", dir] })
      .output();
    assert(x.success);
    const manifest = JSON.parse(
      await Deno.readTextFile(join(dir, "manifest.json")),
    );
    const layers: string[] = manifest[0].Layers;
    return await tarList(join(dir, layers[layers.length - 1]!), verbose);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const strip = (names: string[]) =>
  names.map((n) => n.replace(/^\.\//, "").replace(/\/$/, "")).filter(Boolean)
    .sort();

// (rootless on cgroup v1, as here, there is no cgroup delegation: the CLI runs without a
// cgroup by default, and refuses limits with a reason)
// the container's script: the first run makes the change, a later start shows a copied-in file
const SCRIPT = "if test -e /new.txt; then cat /etc/added; else " +
  "echo made > /new.txt && rm /gone.txt; fi";

Deno.test({
  name:
    "cli rootless [userns]: run on a sandbox-mounted overlay, commit of exactly the change, cp and export of the stopped container",
  ignore: !IS_ROOT,
  fn: async () => {
    // the bundle the launcher runs is rebuilt here, as root (nobody cannot write .cache/cli)
    const warm = await new Deno.Command(DENOBOX, {
      args: ["--help"],
      stdout: "null",
      stderr: "null",
    }).output();
    assert(warm.success);
    const root = await Deno.makeTempDir({ prefix: "denobox-rootless-" });
    await Deno.chmod(root, 0o755);
    try {
      const src = await Deno.makeTempDir({ dir: root });
      await Deno.writeTextFile(join(src, "gone.txt"), "old\n");
      await Deno.writeTextFile(join(src, "host.txt"), "from host\n");
      const tar = join(root, "bb.tar");
      const t = await new Deno.Command("tar", {
        args: [
          "-C",
          await ensureRootfs(),
          "-cf",
          tar,
          ".",
          "-C",
          src,
          "gone.txt",
        ],
      }).output();
      assert(t.success);
      for (const p of [root, src, tar, join(src, "host.txt")]) {
        await Deno.chown(p, NOBODY.uid, NOBODY.gid);
      }
      await Deno.chmod(tar, 0o644);

      // run: an overlay, no notice, no copy of the image
      const [imp, run, inspect] = await asNobody(root, [
        ["import", tar, "bb:1"],
        [
          "run",
          "--name",
          "w",
          "bb:1",
          "sh",
          "-c",
          SCRIPT,
        ],
        ["inspect", "w"],
      ]);
      ok(imp);
      ok(run);
      // limits need a cgroup, which rootless v1 cannot have: refused with the reason, exit 125
      if (!exists("/sys/fs/cgroup/cgroup.controllers")) {
        const [limited] = await asNobody(root, [[
          "run",
          "--rm",
          "-m",
          "64m",
          "bb:1",
          "true",
        ]]);
        assertEquals(limited!.code, 125);
        assert(
          limited!.stderr.includes("rootless on cgroup v1"),
          limited!.stderr,
        );
      }
      assert(!run!.stderr.includes("Notice"), run!.stderr);
      const id: string = JSON.parse(ok(inspect).stdout)[0].Id;
      const dir = join(root, "containers", id);
      assert(!exists(join(dir, "rootfs")), "a copy of the image was made");
      const upper = join(dir, "upper");
      assertEquals(
        (await Array.fromAsync(Deno.readDir(upper))).map((e) => e.name).sort(),
        ["gone.txt", "new.txt"],
      );
      const wh = await Deno.lstat(join(upper, "gone.txt"));
      assert(wh.isCharDevice && wh.rdev === 0, "an overlay whiteout");

      // commit, cp and export of the stopped container; cp in, then its own view of it
      const out = join(root, "out");
      const [commit, save, cpOut, cpGone, exp, cpIn, start, run2] =
        await asNobody(root, [
          ["commit", "w", "bb:2"],
          ["save", "bb:2", "-o", join(root, "bb2.tar")],
          ["cp", "w:/new.txt", out],
          ["cp", "w:/gone.txt", join(root, "gone-out")],
          ["export", "w", "-o", join(root, "w.tar")],
          ["cp", join(src, "host.txt"), "w:/etc/added"],
          ["start", "-a", "w"],
          [
            "run",
            "--rm",
            "bb:2",
            "sh",
            "-c",
            "cat /new.txt; test -e /gone.txt || echo gone",
          ],
        ]);
      ok(commit);
      ok(save);
      const layer = await topLayer(join(root, "bb2.tar"), true);
      assertEquals(
        strip(layer.map((l) => l.split(/\s+/).pop()!)),
        [".wh.gone.txt", "new.txt"],
      );
      // owned by root in the image, as it was in the container
      assertMatch(layer.find((l) => l.endsWith("new.txt"))!, /\s0\/0\s/);
      ok(cpOut);
      assertEquals(await Deno.readTextFile(out), "made\n");
      assert(cpGone!.code !== 0, "a deleted file was copied out");
      assertMatch(cpGone!.stderr, /No such file in the container: gone\.txt/);
      ok(exp);
      const exported = strip(await tarList(join(root, "w.tar")));
      assert(exported.includes("new.txt"));
      assert(exported.includes("bin/busybox"), "the image's files are there");
      assert(!exported.includes("gone.txt"), "the deleted file was exported");
      assertMatch(
        (await tarList(join(root, "w.tar"), true)).find((l) =>
          l.endsWith("new.txt")
        )!,
        /\s0\/0\s/,
      );
      ok(cpIn);
      assertEquals(ok(start).stdout, "from host\n");
      assertEquals(ok(run2).stdout, "made\ngone\n");
      // the helper's mount lived in its own namespace; its directory is gone
      assert(!exists(join(root, "run", "containers", id, "view")));

      // the private-copy mode: its commit stores the change only, not the whole copy
      const [runC, inspectC, commitC, saveC, rm] = await asNobody(root, [
        [
          "run",
          "--name",
          "c",
          "bb:1",
          "sh",
          "-c",
          SCRIPT,
        ],
        ["inspect", "c"],
        ["commit", "c", "bb:3"],
        ["save", "bb:3", "-o", join(root, "bb3.tar")],
        ["rm", "w", "c"],
      ], { DENOBOX_STORAGE_DRIVER: "vfs" });
      ok(runC);
      const idC: string = JSON.parse(ok(inspectC).stdout)[0].Id;
      ok(commitC);
      ok(saveC);
      ok(rm);
      assert(!exists(join(root, "containers", idC)));
      assertEquals(strip(await topLayer(join(root, "bb3.tar"))), [
        ".wh.gone.txt",
        "new.txt",
      ]);
      assertEquals(mountsUnder(root), []);
    } finally {
      await asNobody(root, [["rm", "-f", "w", "c"]]).catch(() => {});
      await Deno.remove(root, { recursive: true });
    }
  },
});
