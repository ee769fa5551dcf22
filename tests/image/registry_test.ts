/**
 * The registry client against a real docker-registry (distribution 2.8) on 127.0.0.1 that the
 * test starts and stops itself, filled by skopeo from umoci-built layouts.
 */
import { join } from "node:path";
import {
  ImageStore,
  MediaType,
  pull,
  push,
  RegistryClient,
  RegistryError,
} from "../../image/mod.ts";
import { assert, assertEquals, assertRejects, childPids } from "../_helpers.ts";
import {
  busyboxLayout,
  skopeoCopy,
  skopeoPush,
  startRegistry,
} from "./_fixtures.ts";
import { startProxy } from "./_proxy.ts";

async function filled() {
  const layout = await busyboxLayout();
  const reg = await startRegistry();
  await skopeoPush(layout, "latest", `${reg.addr}/busybox:latest`);
  await skopeoPush(layout, "v2", `${reg.addr}/busybox:v2`);
  await skopeoPush(layout, "latest", `${reg.addr}/busybox:v2s2`, [
    "--format",
    "v2s2",
  ]);
  const z = await Deno.makeTempDir();
  try {
    await skopeoCopy(`oci:${layout}:latest`, `oci:${z}/l:latest`, [
      "--dest-compress-format",
      "zstd",
    ]);
    await skopeoPush(`${z}/l`, "latest", `${reg.addr}/busybox:zstd`);
  } finally {
    await Deno.remove(z, { recursive: true });
  }
  return reg;
}

Deno.test("registry: pull OCI, Docker v2s2, zstd and whiteout images, verified and unpacked", async () => {
  const pidsBefore = childPids();
  {
    await using reg = await filled();
    const dir = await Deno.makeTempDir();
    try {
      const store = await ImageStore.open(dir);
      const kinds: Record<string, [string, string]> = {
        latest: [MediaType.OCI_MANIFEST, MediaType.OCI_LAYER_GZIP],
        v2s2: [MediaType.DOCKER_MANIFEST, MediaType.DOCKER_LAYER_GZIP],
        zstd: [MediaType.OCI_MANIFEST, MediaType.OCI_LAYER_ZSTD],
      };
      for (const [tag, [mt, lt]] of Object.entries(kinds)) {
        const img = await pull(store, `${reg.addr}/busybox:${tag}`);
        assertEquals(img.mediaType, mt);
        assertEquals(img.manifest.layers[0]!.mediaType, lt);
        assertEquals(img.names, [`${reg.addr}/busybox:${tag}`]);
        const [layer] = await store.unpackLayers(img);
        const st = await Deno.lstat(join(layer!, "bin", "busybox"));
        assertEquals(st.size, (await Deno.stat("/bin/busybox")).size);
      }
      const v2 = await pull(store, `${reg.addr}/busybox:v2`);
      const layers = await store.unpackLayers(v2);
      const top = await Deno.lstat(join(layers[1]!, "bin", "vi"));
      assert(
        top.isCharDevice && top.rdev === 0,
        "bin/vi is an overlay whiteout in the top layer",
      );
      assertEquals(
        await Deno.readTextFile(join(layers[1]!, "etc", "hello")),
        "hello\n",
      );
      // By digest: the same image, verified against the digest asked for.
      const again = await pull(store, `${reg.addr}/busybox@${v2.digest}`);
      assertEquals(again.digest, v2.digest);
      await assertRejects(
        () => pull(store, `${reg.addr}/busybox:nope`),
        RegistryError,
        "MANIFEST_UNKNOWN",
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }
  assertEquals(childPids(), pidsBefore, "registry stopped");
});

Deno.test("registry: image index with platform selection (linux/amd64, linux/arm64)", async () => {
  await using reg = await filled();
  const dir = await Deno.makeTempDir();
  try {
    const store = await ImageStore.open(dir);
    const a = await pull(store, `${reg.addr}/busybox:latest`);
    const b = await pull(store, `${reg.addr}/busybox:v2`);
    using client = new RegistryClient(reg.addr);
    const size = async (d: string) => (await store.blobBytes(d)).length;
    const index = {
      schemaVersion: 2,
      mediaType: MediaType.OCI_INDEX,
      manifests: [
        {
          mediaType: a.mediaType,
          digest: a.digest,
          size: await size(a.digest),
          platform: { os: "linux", architecture: "amd64" },
        },
        {
          mediaType: b.mediaType,
          digest: b.digest,
          size: await size(b.digest),
          platform: { os: "linux", architecture: "arm64", variant: "v8" },
        },
      ],
    };
    await client.putManifest(
      "busybox",
      "multi",
      new TextEncoder().encode(JSON.stringify(index)),
      MediaType.OCI_INDEX,
    );
    const s2 = await ImageStore.open(join(dir, "s2"));
    const amd = await pull(s2, `${reg.addr}/busybox:multi`, {
      platform: { architecture: "amd64" },
    });
    const arm = await pull(s2, `${reg.addr}/busybox:multi`, {
      platform: { architecture: "arm64" },
    });
    assertEquals(amd.digest, a.digest);
    assertEquals(arm.digest, b.digest);
    await assertRejects(
      () =>
        pull(s2, `${reg.addr}/busybox:multi`, {
          platform: { architecture: "s390x" },
        }),
      Error,
      "linux/amd64, linux/arm64/v8",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("registry: push in chunks, then pull by digest into another store", async () => {
  await using reg = await filled();
  const dir = await Deno.makeTempDir();
  try {
    const store = await ImageStore.open(join(dir, "a"));
    const img = await pull(store, `${reg.addr}/busybox:v2`);
    await using proxy = await startProxy(reg.addr);
    const events: number[] = [];
    const digest = await push(
      store,
      img.digest,
      `${proxy.addr}/copy/busybox:pushed`,
      {
        chunkSize: 256 * 1024,
        progress: (e) => events.push(e.done),
      },
    );
    assertEquals(digest, img.digest);
    const patches = proxy.log.filter((r) => r.method === "PATCH");
    assert(
      patches.length >= 4,
      `chunked upload (${patches.length} PATCH requests)`,
    );
    assert(events.length > 0, "progress events");
    const other = await ImageStore.open(join(dir, "b"));
    const back = await pull(other, `${reg.addr}/copy/busybox@${digest}`);
    assertEquals(back.digest, digest);
    assertEquals(back.names, []);
    // Pushing again sends no blob (HEAD finds them).
    const before = proxy.log.length;
    await push(store, img.digest, `${proxy.addr}/copy/busybox:again`);
    assertEquals(
      proxy.log.slice(before).filter((r) => r.method === "PATCH").length,
      0,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("registry: basic auth and bearer tokens from WWW-Authenticate", async () => {
  await using reg = await filled();
  const dir = await Deno.makeTempDir();
  try {
    const creds = { username: "ann", password: "s3cret" };
    {
      await using proxy = await startProxy(reg.addr, {
        auth: "basic",
        user: "ann",
        password: "s3cret",
      });
      const store = await ImageStore.open(join(dir, "basic"));
      await assertRejects(
        () => pull(store, `${proxy.addr}/busybox:latest`),
        RegistryError,
        "401",
      );
      const img = await pull(store, `${proxy.addr}/busybox:latest`, {
        auth: creds,
      });
      assertEquals(img.manifest.layers.length, 1);
      assert(proxy.log.some((r) => r.auth?.startsWith("Basic ")));
      assert(
        proxy.log.some((r) => r.accept?.includes(MediaType.OCI_MANIFEST)),
        "Accept sent",
      );
    }
    {
      await using proxy = await startProxy(reg.addr, {
        auth: "bearer",
        user: "ann",
        password: "s3cret",
      });
      const store = await ImageStore.open(join(dir, "bearer"));
      const img = await pull(store, `${proxy.addr}/busybox:v2`, {
        auth: creds,
      });
      assertEquals(img.manifest.layers.length, 2);
      const tokenReqs = proxy.log.filter((r) => r.path.startsWith("/token"));
      assert(tokenReqs.length >= 1, "token fetched");
      assert(
        tokenReqs[0]!.path.includes("scope=repository%3Abusybox%3Apull"),
        tokenReqs[0]!.path,
      );
      assert(proxy.log.some((r) => r.auth === "Bearer denobox-test-token"));
      const pushed = await push(store, img.digest, `${proxy.addr}/tokened:v1`, {
        auth: creds,
      });
      assertEquals(pushed, img.digest);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("registry: a broken download resumes with Range and still verifies", async () => {
  await using reg = await filled();
  await using proxy = await startProxy(reg.addr, { breakBlobs: true });
  const dir = await Deno.makeTempDir();
  try {
    const store = await ImageStore.open(dir);
    const img = await pull(store, `${proxy.addr}/busybox:latest`);
    const layer = img.manifest.layers[0]!;
    const ranged = proxy.log.filter((r) =>
      r.range !== null && r.path.endsWith(layer.digest)
    );
    assertEquals(ranged.length, 1, "one resumed request");
    const from = Number(/bytes=(\d+)-/.exec(ranged[0]!.range!)![1]);
    assert(
      from > 0 && from < layer.size,
      `resumed at ${from} of ${layer.size}`,
    );
    const bytes = await store.blobBytes(layer.digest);
    assertEquals(bytes.length, layer.size);
    const [unpacked] = await store.unpackLayers(img);
    assert((await Deno.lstat(join(unpacked!, "bin", "busybox"))).isFile);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

async function tmpNames(store: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(join(store, "tmp"))) names.push(e.name);
  return names.sort();
}

Deno.test("registry: a pull broken in one process resumes in another from the kept partial; GC drops stale partials", async () => {
  await using reg = await filled();
  await using proxy = await startProxy(reg.addr, { breakBlobs: true });
  const dir = await Deno.makeTempDir();
  try {
    const ref = `${proxy.addr}/busybox:latest`;
    {
      const store = await ImageStore.open(dir);
      await assertRejects(() => pull(store, ref, { retries: 1 }));
    }
    const store = await ImageStore.open(dir);
    const partials = new Map<string, number>();
    for (const name of await tmpNames(dir)) {
      const m = /^partial-([a-f0-9]{64})$/.exec(name);
      if (m) {
        partials.set(
          `sha256:${m[1]}`,
          (await Deno.stat(join(dir, "tmp", name))).size,
        );
      }
    }
    assert(partials.size > 0, "the broken pull kept its bytes");
    const seen = proxy.log.length;
    // A second process resumes: a fresh store and client, nothing shared but the directory.
    const script = `
      import { ImageStore, pull } from ${
      JSON.stringify(new URL("../../image/mod.ts", import.meta.url).href)
    };
      const store = await ImageStore.open(${JSON.stringify(dir)});
      const img = await pull(store, ${JSON.stringify(ref)});
      console.log(JSON.stringify(img.manifest.layers));
    `;
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "eval",
        `--config=${new URL("../../deno.json", import.meta.url).pathname}`,
        script,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const dec = new TextDecoder();
    assertEquals(out.code, 0, dec.decode(out.stderr));
    const layers = JSON.parse(dec.decode(out.stdout)) as {
      digest: string;
      size: number;
    }[];
    const layer = layers[0]!;
    const kept = partials.get(layer.digest);
    assert(
      kept !== undefined && kept > 0 && kept < layer.size,
      `partial of the layer: ${kept} of ${layer.size}`,
    );
    const ranged = proxy.log.slice(seen).filter((r) =>
      r.path.endsWith(`/blobs/${layer.digest}`) && r.method === "GET"
    );
    assertEquals(
      ranged.map((r) => r.range),
      [`bytes=${kept}-`],
      "one request, from the partial's length",
    );
    const bytes = await store.blobBytes(layer.digest);
    assertEquals(bytes.length, layer.size);
    assertEquals(
      await tmpNames(dir),
      [],
      "no partial left",
    );

    // A bad partial (wrong bytes) fails verification and is downloaded again whole.
    await store.untag(ref);
    await store.gc();
    const part = store.partialPath(layer.digest);
    await Deno.writeFile(part, new Uint8Array(kept!).fill(7));
    const before = proxy.log.length;
    await pull(store, ref);
    assertEquals(
      proxy.log.slice(before).filter((r) =>
        r.path.endsWith(`/blobs/${layer.digest}`) && r.method === "GET"
      ).map((r) => r.range),
      [`bytes=${kept}-`, null],
    );
    assertEquals((await store.blobBytes(layer.digest)).length, layer.size);

    // GC: stale partials and those of blobs the store holds go; a fresh one stays.
    const stale = `sha256:${"a".repeat(64)}`,
      fresh = `sha256:${"b".repeat(64)}`;
    await Deno.writeFile(store.partialPath(stale), new Uint8Array(3));
    const old = new Date(Date.now() - 2 * 24 * 3600 * 1000);
    await Deno.utime(store.partialPath(stale), old, old);
    await Deno.writeFile(store.partialPath(fresh), new Uint8Array(3));
    await Deno.writeFile(store.partialPath(layer.digest), new Uint8Array(3));
    const gc = await store.gc();
    assertEquals(gc.partials.sort(), [layer.digest, stale].sort());
    assertEquals(
      await tmpNames(dir),
      [`partial-${"b".repeat(64)}`],
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
