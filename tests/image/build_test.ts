/**
 * Build from a Dockerfile (FROM, RUN, COPY, ENV, WORKDIR, CMD): RUN steps execute in a sandbox
 * on an overlay of the layers so far; a second build takes every step from the cache.
 */
import { join } from "node:path";
import { spawn } from "denobox/sandbox";
import {
  build,
  ImageStore,
  importImage,
  mountRootfs,
} from "../../image/mod.ts";
import {
  assert,
  assertEquals,
  assertRejects,
  IS_ROOT,
  mountsUnder,
} from "../_helpers.ts";
import { busyboxLayout } from "./_fixtures.ts";

const DOCKERFILE = `
FROM bb:latest
ENV GREETING=hello NAME="the world"
WORKDIR /app
COPY app.sh data/ ./
RUN echo "$GREETING $NAME from $(pwd)" > greeting && chmod +x app.sh
CMD ["/app/app.sh"]
`;

Deno.test("build: Dockerfile build, then a second build reuses every layer from the cache [root]", async () => {
  if (!IS_ROOT) return;
  const dir = await Deno.makeTempDir({ prefix: "denobox-build-" });
  try {
    const store = await ImageStore.open(join(dir, "store"));
    await importImage(store, await busyboxLayout(), { name: "bb" });
    const ctx = join(dir, "ctx");
    await Deno.mkdir(join(ctx, "data"), { recursive: true });
    await Deno.writeTextFile(
      join(ctx, "app.sh"),
      "#!/bin/sh\ncat /app/greeting /app/file\n",
    );
    await Deno.writeTextFile(join(ctx, "data", "file"), "data\n");
    const first = await build(store, DOCKERFILE, {
      context: ctx,
      tag: "app:1",
      output: "null",
    });
    assertEquals(first.steps.map((s) => s.cached), [
      false,
      false,
      false,
      false,
      false,
      false,
    ]);
    assertEquals(first.image.manifest.layers.length, 3, "base + COPY + RUN");
    assertEquals(first.image.config.config?.WorkingDir, "/app");
    const second = await build(store, DOCKERFILE, {
      context: ctx,
      tag: "app:2",
      output: "null",
    });
    assertEquals(second.steps.slice(1).map((s) => s.cached), [
      true,
      true,
      true,
      true,
      true,
    ]);
    assertEquals(second.image.digest, first.image.digest);
    assertEquals(second.image.manifest.layers, first.image.manifest.layers);
    // A changed COPY source invalidates that step and the ones after it only.
    await Deno.writeTextFile(join(ctx, "data", "file"), "changed\n");
    const third = await build(store, DOCKERFILE, {
      context: ctx,
      output: "null",
    });
    assertEquals(third.steps.slice(1).map((s) => s.cached), [
      true,
      true,
      false,
      false,
      false,
    ]);
    // The image runs.
    {
      await using rootfs = await mountRootfs(
        await store.resolve("app:1"),
        join(dir, "c"),
      );
      await using sb = await spawn({
        argv: first.image.config.config!.Cmd!,
        env: { PATH: "/bin" },
        cwd: "/app",
        rootfs: rootfs.path,
        stdout: "pipe",
      });
      const out = await sb.output();
      assertEquals(
        new TextDecoder().decode(out.stdout),
        "hello the world from /app\ndata\n",
      );
    }
    // A failing RUN is an error naming the step, and leaves no mount behind.
    await assertRejects(
      () => build(store, "FROM bb:latest\nRUN exit 3\n", { output: "null" }),
      Error,
      "RUN exit 3",
    );
    assertEquals(mountsUnder(dir), []);
    assertEquals(
      (await store.gc()).blobs.length,
      0,
      "the cache keeps the third build",
    );
    assert(
      (await store.gc({ keepCache: false })).blobs.length > 0,
      "unnamed once uncached",
    );
    await store.resolve("app:1");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
