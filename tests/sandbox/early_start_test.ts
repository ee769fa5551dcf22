/**
 * The early start of `spawn()`: the child is cloned once its first steps are written, makes
 * its namespaces itself and waits at a gate while the rest of its program is written.
 */
import {
  assert,
  assertEquals,
  assertRejects,
  childPids,
  ensureRootfs,
  IS_ROOT,
  openFds,
} from "../_helpers.ts";
import { spawn } from "../../sandbox/mod.ts";

const dec = new TextDecoder();

Deno.test(
  "spawn [root]: a mistake found after the clone kills the waiting child and leaves nothing",
  {
    ignore: !IS_ROOT,
  },
  async () => {
    const rootfs = await ensureRootfs();
    await (await spawn({ argv: ["/bin/true"], rootfs })).status;
    const before = openFds();
    // the uts check is made while the rest of the program is written, after the clone
    await assertRejects(
      () =>
        spawn({
          argv: ["/bin/true"],
          rootfs,
          hostname: "x",
          namespaces: { uts: false },
          stdout: "pipe",
        }),
      TypeError,
      "need a new uts namespace",
    );
    assertEquals(openFds(), before);
    assertEquals(childPids(), []);
  },
);

Deno.test(
  "spawn [root]: the net, mnt, uts and ipc namespaces the child makes itself are new",
  {
    ignore: !IS_ROOT,
  },
  async () => {
    const rootfs = await ensureRootfs();
    await using box = await spawn({
      argv: [
        "/bin/sh",
        "-c",
        "for n in net mnt uts ipc; do readlink /proc/self/ns/$n; done",
      ],
      rootfs,
      stdout: "pipe",
    });
    const mine = await Promise.all(
      ["net", "mnt", "uts", "ipc"].map((n) =>
        Deno.readLink(`/proc/self/ns/${n}`)
      ),
    );
    const out = await box.output();
    assertEquals(out.status.code, 0);
    const theirs = dec.decode(out.stdout).trim().split("\n");
    assertEquals(theirs.length, 4);
    // the init (PID 1) and the command share them, none is ours
    for (let i = 0; i < 4; i++) assert(theirs[i] !== mine[i], theirs[i]);
  },
);
