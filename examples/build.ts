/**
 * Build an image from a Dockerfile: each RUN runs in a sandbox on an overlay of the layers so
 * far and becomes a layer; a second build comes entirely from the step cache.
 *
 *   tools/deno run -A examples/build.ts       (root: RUN steps use overlayfs)
 */
import { join } from "node:path";
import { spawn } from "denobox/sandbox";
import { build, ImageStore, importTree, mountRootfs } from "denobox/image";

const work = await Deno.makeTempDir({ prefix: "denobox-example-build-" });
try {
  const tree = join(work, "tree");
  await Deno.mkdir(join(tree, "bin"), { recursive: true });
  await Deno.copyFile("/bin/busybox", join(tree, "bin", "busybox"));
  for (const a of ["sh", "cat", "echo", "chmod", "mkdir", "pwd"]) {
    await Deno.symlink("busybox", join(tree, "bin", a));
  }
  const store = await ImageStore.open(join(work, "store"));
  await importTree(store, tree, {
    tag: "busybox:base",
    config: { Env: ["PATH=/bin"] },
  });

  const ctx = join(work, "context");
  await Deno.mkdir(ctx);
  await Deno.writeTextFile(
    join(ctx, "greet.sh"),
    '#!/bin/sh\necho "$GREETING from $(cat /app/built)"\n',
  );
  const dockerfile = `
FROM busybox:base
ENV GREETING="hello"
WORKDIR /app
COPY greet.sh .
RUN chmod +x greet.sh && echo "a RUN step" > built
CMD ["/app/greet.sh"]
`;
  for (const round of [1, 2]) {
    const t = performance.now();
    const result = await build(store, dockerfile, {
      context: ctx,
      tag: "greet:latest",
      output: "null",
    });
    const steps = result.steps.map((s) =>
      `${s.step.kind}${s.cached ? "(cached)" : ""}`
    ).join(" ");
    console.log(
      `build ${round}: ${(performance.now() - t).toFixed(0)} ms: ${steps}`,
    );
  }
  const image = await store.resolve("greet:latest");
  await using rootfs = await mountRootfs(image, join(work, "ctr"));
  await using sb = await spawn({
    argv: image.config.config!.Cmd!,
    env: { PATH: "/bin", GREETING: "hello" },
    rootfs: rootfs.path,
    stdout: "pipe",
  });
  const out = await sb.output();
  console.log(
    `greet:latest says: ${new TextDecoder().decode(out.stdout).trim()}`,
  );
} finally {
  await Deno.remove(work, { recursive: true });
}
