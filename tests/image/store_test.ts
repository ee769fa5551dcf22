/** The content-addressed store: verified atomic writes, names, locks, GC, import/export. */
import { join } from "node:path";
import {
  defaultStoreDir,
  DigestMismatchError,
  exportImage,
  ImageStore,
  importImage,
} from "../../image/mod.ts";
import { sha256 } from "../../image/_stream.ts";
import {
  assert,
  assertEquals,
  assertRejects,
  IS_ROOT,
  openFds,
} from "../_helpers.ts";
import { busyboxLayout, run } from "./_fixtures.ts";

async function tempStore(): Promise<[ImageStore, string]> {
  const dir = await Deno.makeTempDir({ prefix: "denobox-store-" });
  return [await ImageStore.open(join(dir, "store")), dir];
}

const ls = async (d: string) => {
  const out: string[] = [];
  for await (const e of Deno.readDir(d)) out.push(e.name);
  return out.sort();
};

Deno.test("store: blobs are verified on write and on use; bad input leaves nothing", async () => {
  const [store, dir] = await tempStore();
  try {
    const data = new TextEncoder().encode("layer bytes");
    const d = await store.putBlob(data);
    assertEquals(d.digest, sha256(data));
    assertEquals(await store.blobBytes(d.digest), data);
    await assertRejects(
      () =>
        store.putBlob(new TextEncoder().encode("other"), {
          expected: d.digest.replace(/.$/, "0"),
        }),
      DigestMismatchError,
    );
    assertEquals(await ls(join(store.root, "blobs", "sha256")), [
      d.digest.slice(7),
    ]);
    assertEquals(await ls(join(store.root, "tmp")), []);
    // A blob changed on disk is caught when used.
    await Deno.writeTextFile(store.blobPath(d.digest), "tampered");
    await assertRejects(() => store.blobBytes(d.digest), DigestMismatchError);
    await assertRejects(async () => {
      for await (const _ of store.readBlob(d.digest)) { /* drain */ }
    }, DigestMismatchError);
    // Work left by a dead process in tmp/ is cleaned on open.
    await Deno.writeTextFile(
      join(store.root, "tmp", "999999999-blob-x"),
      "half",
    );
    await ImageStore.open(store.root);
    assertEquals(await ls(join(store.root, "tmp")), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("store: a corrupt layer blob never becomes an unpacked layer", async () => {
  const [store, dir] = await tempStore();
  try {
    const [img] =
      (await importImage(store, await busyboxLayout(), { name: "bb" })).filter((
        i,
      ) => i.names.includes("bb:latest"));
    const layer = img!.manifest.layers[0]!;
    const bytes = await Deno.readFile(store.blobPath(layer.digest));
    bytes[bytes.length - 100] = bytes[bytes.length - 100]! ^ 0xff;
    await Deno.writeFile(store.blobPath(layer.digest), bytes);
    await assertRejects(() => store.unpackLayers(img!));
    assertEquals(await ls(join(store.root, "layers")), []);
    assertEquals(await ls(join(store.root, "tmp")), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("store: names, digests and prefixes resolve; GC keeps what names and leases reach", async () => {
  const [store, dir] = await tempStore();
  try {
    const fds = openFds();
    const imgs = await importImage(store, await busyboxLayout(), {
      name: "bb",
    });
    assertEquals(imgs.map((i) => i.names).flat().sort(), [
      "bb:latest",
      "bb:v2",
    ]);
    const v2 = await store.resolve("bb:v2");
    assertEquals((await store.resolve(v2.digest)).digest, v2.digest);
    assertEquals(
      (await store.resolve(v2.digest.slice(7, 19))).digest,
      v2.digest,
    );
    assertEquals((await store.resolve(`bb@${v2.digest}`)).digest, v2.digest);
    await assertRejects(
      () => store.resolve("bb:nope"),
      Error,
      "not in the store",
    );
    assertEquals((await store.list()).map((s) => s.name), [
      "bb:latest",
      "bb:v2",
    ]);
    await store.unpackLayers(v2);
    assertEquals((await store.gc()).blobs, []);
    await store.untag("bb:v2");
    {
      await using _lease = await store.lease([v2.digest]);
      const kept = await store.gc();
      assertEquals(kept.blobs, [], "the lease keeps v2");
    }
    const gone = await store.gc();
    // v2's manifest, config and top layer go; the shared bottom layer stays for bb:latest.
    assertEquals(gone.blobs.length, 3);
    assertEquals(gone.layers, [v2.config.rootfs.diff_ids[1]]);
    assert(gone.blobs.includes(v2.digest));
    await store.untag("bb:latest");
    await store.gc();
    assertEquals(await ls(join(store.root, "blobs", "sha256")), []);
    assertEquals(await ls(join(store.root, "layers")), []);
    assertEquals(openFds(), fds);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("store: GC waits for a writer in another process (flock)", async () => {
  const [store, dir] = await tempStore();
  try {
    const script = `
      import { ImageStore } from ${
      JSON.stringify(new URL("../../image/mod.ts", import.meta.url).href)
    };
      const s = await ImageStore.open(${JSON.stringify(store.root)});
      const l = await s.lock();
      console.log("locked");
      for await (const _ of Deno.stdin.readable) { /* until closed */ }
      l[Symbol.dispose]();
    `;
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "eval",
        "--config",
        join(import.meta.dirname!, "../../deno.json"),
        script,
      ],
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const reader = child.stdout.getReader();
    const first = await reader.read();
    assertEquals(new TextDecoder().decode(first.value).trim(), "locked");
    let done = false;
    const gc = store.gc().then(() => done = true);
    await new Promise((r) => setTimeout(r, 300));
    assertEquals(done, false, "gc must wait for the shared lock holder");
    await child.stdin.close();
    await gc;
    assert(done);
    reader.releaseLock();
    await child.stdout.cancel();
    await child.status;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("store: default directory", () => {
  if (IS_ROOT) assertEquals(defaultStoreDir(), "/var/lib/denobox");
  else assert(defaultStoreDir().endsWith("/denobox"));
});

Deno.test("import/export: OCI layout and docker-save round trips, readable by skopeo and umoci", async () => {
  const [store, dir] = await tempStore();
  try {
    await importImage(store, await busyboxLayout(), { name: "bb" });
    const v2 = await store.resolve("bb:v2");
    // OCI layout directory and tar.
    await exportImage(store, ["bb:v2", "bb:latest"], join(dir, "oci"));
    const umociLs = await run("umoci", ["ls", "--layout", join(dir, "oci")]);
    assertEquals(umociLs.trim().split("\n").sort(), ["bb:latest", "bb:v2"]);
    const inspect = JSON.parse(
      await run("skopeo", ["inspect", `oci:${join(dir, "oci")}:bb:v2`]),
    );
    assertEquals(inspect.Digest, v2.digest);
    await exportImage(store, ["bb:v2"], join(dir, "oci.tar"));
    // docker save tarball (uncompressed layers named by DiffID).
    await exportImage(store, ["bb:v2"], join(dir, "docker.tar"), {
      format: "docker",
    });
    const listing = await run("tar", ["-tf", join(dir, "docker.tar")]);
    assert(listing.includes("manifest.json"));
    assert(
      listing.includes(`${v2.config.rootfs.diff_ids[1]!.slice(7)}/layer.tar`),
    );
    const skopeoDocker = JSON.parse(
      await run("skopeo", [
        "inspect",
        `docker-archive:${join(dir, "docker.tar")}`,
      ]),
    );
    assertEquals(skopeoDocker.Layers.length, 2);
    for (const src of ["oci", "oci.tar", "docker.tar"]) {
      const other = await ImageStore.open(join(dir, `s-${src}`));
      const [img] = await importImage(other, join(dir, src));
      assertEquals(img!.config.rootfs.diff_ids, v2.config.rootfs.diff_ids, src);
      assert(img!.names.includes("bb:v2"), `${src}: ${img!.names}`);
      const layers = await other.unpackLayers(img!);
      assertEquals(
        await Deno.readTextFile(join(layers[1]!, "etc", "hello")),
        "hello\n",
      );
    }
    // Something that is neither.
    await Deno.mkdir(join(dir, "junk"));
    await assertRejects(
      () => importImage(store, join(dir, "junk")),
      Error,
      "neither",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
