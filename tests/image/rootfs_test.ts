/** Container root filesystems (overlayfs and copy) and commit of their changes. */
import { join } from "node:path";
import {
  commit,
  ImageStore,
  importImage,
  mountRootfs,
  overlaySpec,
  TarReader,
} from "../../image/mod.ts";
import { decompress } from "../../image/_stream.ts";
import {
  assert,
  assertEquals,
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
        await using r = await mountRootfs(await store.resolve("bb:v2"), dir + "/c");
        await Deno.writeTextFile(r.path + "/etc/new", "new\\n");
        await Deno.remove(r.path + "/bin/ls");
        img = await commit(r, { tag: "bb:mine" });
        console.log(r.mode);
      }
      await using r2 = await mountRootfs(img, dir + "/c2");
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
