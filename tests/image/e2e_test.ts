/**
 * End to end, as the issue states it: pull from a local registry, run a command in the image
 * (spawn from denobox/sandbox on an overlay rootfs), commit the change, push it back, pull it
 * by digest into another store, and the file is there.
 */
import { join } from "node:path";
import { spawn } from "denobox/sandbox";
import {
  commit,
  ImageStore,
  mountRootfs,
  pull,
  push,
} from "../../image/mod.ts";
import {
  assertEquals,
  childPids,
  IS_ROOT,
  mountsUnder,
  openFds,
} from "../_helpers.ts";
import { busyboxLayout, skopeoPush, startRegistry } from "./_fixtures.ts";

const dec = new TextDecoder();

Deno.test("e2e: pull, run, commit, push, pull by digest elsewhere [root]", async () => {
  if (!IS_ROOT) return;
  // The sandbox reactor's fds live as long as the process: open them before counting.
  await using warm = await spawn({ argv: ["/bin/true"], stdout: "null" });
  await warm.status;
  const fds = openFds();
  const pids = childPids();
  const dir = await Deno.makeTempDir({ prefix: "denobox-e2e-" });
  try {
    await using reg = await startRegistry();
    await skopeoPush(
      await busyboxLayout(),
      "latest",
      `${reg.addr}/busybox:latest`,
    );
    const store = await ImageStore.open(join(dir, "a"));
    const img = await pull(store, `${reg.addr}/busybox:latest`);
    let digest: string;
    {
      await using rootfs = await mountRootfs(img, join(dir, "c1"));
      await using sb = await spawn({
        argv: [
          "/bin/sh",
          "-c",
          "echo made-in-the-sandbox > /hello.txt && rm /bin/vi",
        ],
        env: { PATH: "/bin" },
        rootfs: rootfs.path,
        stdout: "pipe",
        stderr: "pipe",
      });
      const out = await sb.output();
      assertEquals(out.status.success, true, dec.decode(out.stderr));
      const committed = await commit(rootfs, {
        tag: "busybox:hello",
        changes: { cmd: ["/bin/cat", "/hello.txt"] },
      });
      digest = await push(store, committed.digest, `${reg.addr}/busybox:hello`);
      assertEquals(digest, committed.digest);
    }
    const other = await ImageStore.open(join(dir, "b"));
    const back = await pull(other, `${reg.addr}/busybox@${digest}`);
    await using rootfs = await mountRootfs(back, join(dir, "c2"));
    assertEquals(
      await Deno.readTextFile(join(rootfs.path, "hello.txt")),
      "made-in-the-sandbox\n",
    );
    assertEquals(
      await Deno.lstat(join(rootfs.path, "bin", "vi")).then(
        () => true,
        () => false,
      ),
      false,
    );
    await using sb = await spawn({
      argv: back.config.config!.Cmd!,
      env: { PATH: "/bin" },
      rootfs: rootfs.path,
      stdout: "pipe",
    });
    const out = await sb.output();
    assertEquals(dec.decode(out.stdout), "made-in-the-sandbox\n");
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  assertEquals(mountsUnder(dir), []);
  assertEquals(childPids(), pids);
  assertEquals(openFds(), fds);
});
