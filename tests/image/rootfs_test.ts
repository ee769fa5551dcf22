/** Container root filesystems (overlayfs and copy) and commit of their changes. */
import { join } from "node:path";
import {
  commit,
  diffTar,
  ImageStore,
  importImage,
  mountRootfs,
  overlaySpec,
  TarReader,
} from "../../image/mod.ts";
import { decompress } from "../../image/_stream.ts";
import { lsetxattr } from "denobox/libc";
import {
  assert,
  assertEquals,
  assertMatch,
  IS_ROOT,
  mountsUnder,
  openFds,
  runAsNobody,
} from "../_helpers.ts";
import { busyboxLayout } from "./_fixtures.ts";

const exists = async (p: string) =>
  await Deno.lstat(p).then(() => true, () => false);

async function change(root: string): Promise<void> {
  await Deno.writeTextFile(join(root, "etc", "new"), "new\n");
  await Deno.remove(join(root, "bin", "ls"));
  // Replace a lower directory whole: overlay marks the new one opaque.
  await Deno.remove(join(root, "tmp"), { recursive: true }).catch(() => {});
  await Deno.mkdir(join(root, "etc", "sub"));
  await Deno.writeTextFile(join(root, "etc", "sub", "f"), "f\n");
  await Deno.chmod(join(root, "etc", "passwd"), 0o600);
  await Deno.remove(join(root, "sys"));
  await Deno.mkdir(join(root, "sys"));
  await Deno.writeTextFile(join(root, "sys", "x"), "x");
}

async function checkChanged(root: string): Promise<void> {
  assertEquals(await Deno.readTextFile(join(root, "etc", "new")), "new\n");
  assertEquals(await Deno.readTextFile(join(root, "etc", "sub", "f")), "f\n");
  assertEquals(await exists(join(root, "bin", "ls")), false, "ls deleted");
  assertEquals(
    await exists(join(root, "bin", "vi")),
    false,
    "vi deleted (image v2)",
  );
  assertEquals(await exists(join(root, "tmp")), false, "tmp deleted");
  assertEquals(
    (await Deno.stat(join(root, "etc", "passwd"))).mode! & 0o777,
    0o600,
  );
  assert(await exists(join(root, "bin", "cat")), "cat kept");
  assertEquals(await Deno.readTextFile(join(root, "sys", "x")), "x");
}

async function layerNames(
  store: ImageStore,
  digest: string,
): Promise<string[]> {
  const names: string[] = [];
  const r = new TarReader({
    entry: (e) => names.push(e.name),
    data() {},
    end() {},
  });
  for await (const c of decompress(store.readBlob(digest))) r.push(c);
  r.finish();
  return names;
}

Deno.test("rootfs: overlay of the layers, commit, then the commit seen through both modes [root]", async () => {
  if (!IS_ROOT) return;
  const dir = await Deno.makeTempDir({ prefix: "denobox-rootfs-" });
  const fds = openFds();
  try {
    const store = await ImageStore.open(join(dir, "store"));
    await importImage(store, await busyboxLayout(), { name: "bb" });
    const v2 = await store.resolve("bb:v2");
    let committed;
    {
      await using rootfs = await mountRootfs(v2, join(dir, "c1"));
      assertEquals(rootfs.mode, "overlay");
      assertEquals(mountsUnder(join(dir, "c1")), [join(dir, "c1", "merged")]);
      assertEquals(
        await Deno.readTextFile(join(rootfs.path, "etc", "hello")),
        "hello\n",
      );
      assertEquals(
        await exists(join(rootfs.path, "bin", "vi")),
        false,
        "whiteout from layer 2",
      );
      await change(rootfs.path);
      committed = await commit(rootfs, {
        tag: "bb:changed",
        createdBy: "test",
        changes: { cmd: ["cat", "/etc/new"], env: { A: "1" }, workdir: "/etc" },
      });
    }
    assertEquals(mountsUnder(dir), []);
    assertEquals(await exists(join(dir, "c1")), false, "container dir removed");
    assertEquals(committed.manifest.layers.length, 3);
    const names = await layerNames(store, committed.manifest.layers[2]!.digest);
    for (
      const n of [
        ".wh.tmp",
        "bin/.wh.ls",
        "sys/",
        "sys/.wh..wh..opq",
        "sys/x",
        "etc/new",
        "etc/passwd",
      ]
    ) {
      assert(names.includes(n), `${n} in ${names}`);
    }
    assertEquals(committed.config.config?.Cmd, ["cat", "/etc/new"]);
    assertEquals(committed.config.config?.Env, ["PATH=/bin", "A=1"]);
    assertEquals(committed.config.config?.WorkingDir, "/etc");
    assertEquals(committed.config.history?.at(-1)?.created_by, "test");
    for (const mode of ["overlay", "copy"] as const) {
      await using r = await mountRootfs(committed, join(dir, `c-${mode}`), {
        mode,
      });
      await checkChanged(r.path);
    }
    assertEquals(mountsUnder(dir), []);
    assertEquals(openFds(), fds);
  } finally {
    for (const m of mountsUnder(dir).reverse()) {
      await new Deno.Command("umount", { args: ["-l", m] }).output();
    }
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("rootfs: copy mode and commit as an unprivileged user [root]", async () => {
  if (!IS_ROOT) return;
  const layout = await busyboxLayout();
  const script = `
    import { commit, ImageStore, importImage, mountRootfs } from ${
    JSON.stringify(new URL("../../image/mod.ts", import.meta.url).href)
  };
    const dir = await Deno.makeTempDir();
    try {
      const store = await ImageStore.open(dir + "/store");
      await importImage(store, ${JSON.stringify(layout)}, { name: "bb" });
      let img;
      {
        await using r = await mountRootfs(await store.resolve("bb:v2"), dir + "/c", { mode: "copy" });
        await Deno.writeTextFile(r.path + "/etc/new", "new\\n");
        await Deno.remove(r.path + "/bin/ls");
        img = await commit(r, { tag: "bb:mine" });
        console.log(r.mode);
      }
      await using r2 = await mountRootfs(img, dir + "/c2", { mode: "copy" });
      console.log(await Deno.readTextFile(r2.path + "/etc/new"));
      console.log(await Deno.lstat(r2.path + "/bin/ls").then(() => "ls", () => "no-ls"));
      console.log(store.root.startsWith("/tmp") ? "tmp" : store.root);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  `;
  const r = await runAsNobody(script, { code: true });
  assertEquals(r.code, 0, r.stderr);
  assertEquals(r.stdout.split("\n").filter(Boolean), [
    "copy",
    "new",
    "no-ls",
    "tmp",
  ]);
});

Deno.test("rootfs: rootless overlay mounted by the sandbox, commit of its upper (whiteouts, owners) [userns]", async () => {
  if (!IS_ROOT) return;
  const layout = await busyboxLayout();
  // Run as uid 65534: the sandbox mounts the overlay in its own user + mount namespace.
  const script = `
    import { commit, ImageStore, importImage, mountRootfs, rootlessOverlaySupport, TarReader } from ${
    JSON.stringify(new URL("../../image/mod.ts", import.meta.url).href)
  };
    import { decompress } from ${
    JSON.stringify(new URL("../../image/_stream.ts", import.meta.url).href)
  };
    import { spawn } from ${
    JSON.stringify(new URL("../../sandbox/mod.ts", import.meta.url).href)
  };
    const out = (k, v) => console.log(JSON.stringify([k, v]));
    const dir = await Deno.makeTempDir();
    const sh = async (rootfs, cmd) => {
      await using sb = await spawn({
        argv: ["/bin/sh", "-c", cmd], env: { PATH: "/bin" }, rootfs,
        stdin: "null", stdout: "pipe", stderr: "inherit",
      });
      const text = await new Response(sb.stdout).text();
      if (!(await sb.status).success) throw new Error("sh failed: " + cmd);
      return text;
    };
    try {
      const support = await rootlessOverlaySupport(dir);
      out("support", support.supported || support.reason);
      if (!support.supported) Deno.exit(0);
      const store = await ImageStore.open(dir + "/store");
      await importImage(store, ${JSON.stringify(layout)}, { name: "bb" });
      let img;
      {
        await using r = await mountRootfs(await store.resolve("bb:v2"), dir + "/c");
        out("mode", r.mode);
        out("fallback", r.fallbackReason);
        out("lower", r.spawnRootfs.overlay.lower.length);
        out("id", await sh(r.spawnRootfs, "echo new > /etc/new && rm /bin/ls && rm -r /tmp && id -u"));
        out("host-sees-new", await Deno.readTextFile(r.upper + "/etc/new"));
        const wh = await Deno.lstat(r.upper + "/bin/ls");
        out("upper-whiteout", [wh.isCharDevice, wh.rdev]);
        img = await commit(r, { tag: "bb:mine" });
      }
      const names = [];
      const layer = img.manifest.layers.at(-1).digest;
      const rd = new TarReader({ entry: (e) => names.push([e.name, e.uid ?? 0]), data() {}, end() {} });
      for await (const c of decompress(store.readBlob(layer))) rd.push(c);
      rd.finish();
      out("layer", names.sort((a, b) => a[0] < b[0] ? -1 : 1));
      {
        await using r2 = await mountRootfs(img, dir + "/c2");
        out("after", await sh(r2.spawnRootfs, "cat /etc/new; ls /bin/ls 2>/dev/null || echo no-ls; ls -d /tmp 2>/dev/null || echo no-tmp"));
      }
      out("left", [...Deno.readDirSync(dir)].map((e) => e.name).sort());
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  `;
  const r = await runAsNobody(script, { code: true });
  assertEquals(r.code, 0, r.stderr);
  const got = new Map<string, unknown>(
    r.stdout.split("\n").filter(Boolean).map((l) => JSON.parse(l)),
  );
  if (got.get("support") !== true) {
    // The kernel refused the probe: copy mode is the fallback, with the reason.
    assertMatch(String(got.get("support")), /overlayfs|kernel/);
    return;
  }
  assertEquals(got.get("mode"), "sandbox");
  assertEquals(got.get("fallback"), null);
  assertEquals(got.get("lower"), 2);
  assertEquals(got.get("id"), "0\n", "root inside the user namespace");
  assertEquals(got.get("host-sees-new"), "new\n", "the write went to upper");
  assertEquals(got.get("upper-whiteout"), [true, 0], "overlay's 0/0 device");
  // Exactly the change: a new file (owned by root as the container saw it), a whiteout for
  // each deletion, and the directories holding them.
  assertEquals(got.get("layer"), [
    [".wh.tmp", 0],
    ["bin/", 0],
    ["bin/.wh.ls", 0],
    ["etc/", 0],
    ["etc/new", 0],
  ]);
  assertEquals(got.get("after"), "new\nno-ls\nno-tmp\n");
  assertEquals(got.get("left"), ["store"], "container dirs removed");
});

Deno.test("rootfs: overlay mount spec for a sandbox to mount itself", () => {
  const s = overlaySpec(["/s/l1", "/s/l2"], "/c/u", "/c/w", {
    userxattr: true,
  });
  assertEquals(s.lowerdir, ["/s/l2", "/s/l1"]);
  assertEquals(
    s.data,
    "lowerdir=/s/l2:/s/l1,upperdir=/c/u,workdir=/c/w,userxattr",
  );
});

Deno.test("diff: overlay whiteouts in both forms (0/0 device, overlay.whiteout xattr), opaque only for y", async () => {
  const dir = await Deno.makeTempDir({ prefix: "denobox-diff-" });
  try {
    await Deno.mkdir(join(dir, "d"));
    await Deno.writeFile(join(dir, "d", "gone"), new Uint8Array());
    lsetxattr(
      join(dir, "d", "gone"),
      "user.overlay.whiteout",
      new Uint8Array(),
    );
    // "x" marks a directory that may hold xattr whiteouts: not opaque.
    lsetxattr(
      join(dir, "d"),
      "user.overlay.opaque",
      new TextEncoder().encode("x"),
    );
    await Deno.mkdir(join(dir, "o"));
    lsetxattr(
      join(dir, "o"),
      "user.overlay.opaque",
      new TextEncoder().encode("y"),
    );
    await Deno.writeFile(join(dir, "empty"), new Uint8Array());
    if (IS_ROOT) {
      await new Deno.Command("mknod", {
        args: [join(dir, "dev0"), "c", "0", "0"],
      })
        .output();
    }
    const names: string[] = [];
    const r = new TarReader({
      entry: (e) => names.push(e.name),
      data() {},
      end() {},
    });
    for await (const c of diffTar(dir)) r.push(c);
    r.finish();
    assertEquals(names, [
      "d/",
      "d/.wh.gone",
      ...(IS_ROOT ? [".wh.dev0"] : []),
      "empty",
      "o/",
      "o/.wh..wh..opq",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
