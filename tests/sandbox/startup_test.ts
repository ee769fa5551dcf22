// The start-up paths: reading pipes without Web streams (`read`), and the host view's plan
// kept in `cacheDir` between processes (used only while valid; a tampered file shows no more).
import { assert, assertEquals, IS_ROOT, openFds } from "../_helpers.ts";
import { spawn } from "denobox/sandbox";

const dec = new TextDecoder();

Deno.test({
  name: "spawn [root]: read() drains stdout and stderr without streams",
  ignore: !IS_ROOT,
  async fn() {
    // the engine's process-wide fds (reactor, lifeline) exist after a first spawn
    await (await spawn({ argv: ["/bin/true"] })).status;
    const before = openFds();
    {
      await using box = await spawn({
        argv: ["/bin/sh", "-c", "echo out; echo err >&2; exit 4"],
        stdout: "pipe",
        stderr: "pipe",
      });
      let out = "", err = "";
      for (let c; (c = await box.read("stdout")) !== null;) {
        out += dec.decode(c);
      }
      for (let c; (c = await box.read("stderr")) !== null;) {
        err += dec.decode(c);
      }
      assertEquals([out, err], ["out\n", "err\n"]);
      assertEquals((await box.status).code, 4);
      assert(box.stdout === null || box.stdout instanceof ReadableStream);
    }
    assertEquals(openFds(), before);
  },
});

Deno.test({
  name: "spawn [root]: the host view plan is cached in cacheDir and checked",
  ignore: !IS_ROOT,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const run = async () => {
        await using box = await spawn({
          argv: ["/bin/sh", "-c", "ls /etc | sort | tr '\\n' ' '"],
          stdout: "pipe",
          cacheDir: `${dir}/c`,
        });
        const o = await box.output();
        assertEquals(o.status.code, 0);
        return dec.decode(o.stdout);
      };
      const first = await run();
      const file = `${dir}/c/host-view.json`;
      // written when / and /etc were left alone for a while (true on a test machine)
      const stored = JSON.parse(Deno.readTextFileSync(file));
      assert(stored.plan.etc.length > 0);
      assertEquals(await run(), first);
      // a tampered plan naming /etc/shadow is not used
      stored.plan.etc.push({ name: "shadow", kind: "file", flags: 0 });
      Deno.writeTextFileSync(file, JSON.stringify(stored));
      const third = await run();
      assertEquals(third, first);
      assert(!third.includes("shadow"));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
