/**
 * Images end to end, without a registry: make a base image from busybox-static, give a
 * container an overlay rootfs of it, run a command in a sandbox, commit the change as a new
 * layer, export it as an OCI layout and a `docker save` tarball, and collect garbage.
 *
 *   tools/deno run -A examples/image.ts        (as root: overlayfs; otherwise a private copy)
 *
 * Everything lives in a temp directory that is removed at the end.
 */
import { join } from "node:path";
import { spawn } from "denobox/sandbox";
import {
  commit,
  exportImage,
  ImageStore,
  importTree,
  mountRootfs,
} from "denobox/image";

const work = await Deno.makeTempDir({ prefix: "denobox-example-image-" });
try {
  // A busybox tree: /bin/busybox and its applets as symlinks.
  const tree = join(work, "tree");
  await Deno.mkdir(join(tree, "bin"), { recursive: true });
  await Deno.mkdir(join(tree, "etc"));
  await Deno.copyFile("/bin/busybox", join(tree, "bin", "busybox"));
  for (const applet of ["sh", "cat", "echo", "ls", "rm"]) {
    await Deno.symlink("busybox", join(tree, "bin", applet));
  }
  await Deno.writeTextFile(
    join(tree, "etc", "passwd"),
    "root:x:0:0:root:/root:/bin/sh\n",
  );

  const store = await ImageStore.open(join(work, "store"));
  const base = await importTree(store, tree, {
    tag: "busybox:base",
    config: { Env: ["PATH=/bin"], Cmd: ["/bin/sh"] },
  });
  console.log(
    `base image ${
      base.digest.slice(0, 19)
    } (${base.manifest.layers.length} layer)`,
  );

  let committed;
  {
    await using rootfs = await mountRootfs(base, join(work, "ctr"));
    console.log(`rootfs (${rootfs.mode}) at ${rootfs.path}`);
    await using sb = await spawn({
      argv: [
        "/bin/sh",
        "-c",
        "echo hello from a layer > /hello && rm /bin/ls && cat /hello",
      ],
      env: { PATH: "/bin" },
      rootfs: rootfs.path,
      stdout: "pipe",
    });
    const out = await sb.output();
    console.log(`sandbox said: ${new TextDecoder().decode(out.stdout).trim()}`);
    committed = await commit(rootfs, {
      tag: "busybox:hello",
      createdBy: "example: echo hello > /hello; rm /bin/ls",
      changes: { cmd: ["/bin/cat", "/hello"] },
    });
  }
  console.log(
    `committed ${
      committed.digest.slice(0, 19)
    }: ${committed.manifest.layers.length} layers`,
  );
  for (const img of await store.list()) {
    console.log(`  ${img.name.padEnd(16)} ${img.size} bytes`);
  }

  await exportImage(store, ["busybox:hello"], join(work, "oci"));
  await exportImage(store, ["busybox:hello"], join(work, "hello.tar"), {
    format: "docker",
  });
  console.log(
    `exported to ${join(work, "oci")} and ${join(work, "hello.tar")}`,
  );

  await store.untag("busybox:base");
  await store.untag("busybox:hello");
  const gc = await store.gc();
  console.log(
    `gc removed ${gc.blobs.length} blobs, ${gc.layers.length} unpacked layers`,
  );
} finally {
  await Deno.remove(work, { recursive: true });
}
