/**
 * `spawn({ whileStarting })`: the caller's work, run right after the clone while the sandbox
 * sets itself up; spawn() settles once both are done.
 */
import {
  assert,
  assertEquals,
  assertRejects,
  childPids,
  ensureRootfs,
  IS_ROOT,
  openFds,
  runAsNobody,
} from "../_helpers.ts";
import { SandboxSetupError, spawn } from "../../sandbox/mod.ts";

Deno.test(
  "spawn [root]: whileStarting runs beside the set-up; spawn waits for both",
  {
    ignore: !IS_ROOT,
  },
  async () => {
    const rootfs = await ensureRootfs();
    let alive = false;
    let finished = false;
    let disposed = false;
    let seen = 0;
    await using box = await spawn({
      argv: ["/bin/true"],
      rootfs,
      whileStarting: async ({ pid }) => {
        seen = pid;
        // at once, in the hook's synchronous part (the sandbox may be done soon after)
        // deno-lint-ignore no-sync-fn-in-async-fn
        alive = Deno.statSync(`/proc/${pid}`).isDirectory;
        // an hook slower than the sandbox's start: spawn() still waits for it
        await new Promise((r) => setTimeout(r, 50));
        finished = true;
        return { [Symbol.dispose]: () => void (disposed = true) };
      },
    });
    assert(finished, "spawn() resolved before the hook ended");
    assertEquals(seen, box.pid);
    assert(alive, "the hook ran while the sandbox's first process existed");
    assertEquals((await box.status).code, 0);
    assert(disposed, "the hook's result is disposed after the reap");
  },
);

Deno.test(
  "spawn [root]: a failing whileStarting kills the sandbox and rejects with its error",
  {
    ignore: !IS_ROOT,
  },
  async () => {
    const rootfs = await ensureRootfs();
    await (await spawn({ argv: ["/bin/true"], rootfs })).status;
    const before = openFds();
    for (const argv of [["/bin/sleep", "60"], ["/no/such/command"]]) {
      // also when the sandbox fails too: the caller's error is the one to report
      await assertRejects(
        () =>
          spawn({
            argv,
            rootfs,
            whileStarting: () => {
              throw new Error("record not made");
            },
          }),
        Error,
        "record not made",
      );
      assertEquals(openFds(), before);
      assertEquals(childPids(), []);
    }
  },
);

Deno.test(
  "spawn [root]: the sandbox's own failure comes after a whileStarting that succeeded",
  {
    ignore: !IS_ROOT,
  },
  async () => {
    const rootfs = await ensureRootfs();
    const before = openFds();
    let ran = false;
    const e = await assertRejects(
      () =>
        spawn({
          argv: ["/no/such/command"],
          rootfs,
          whileStarting: () => void (ran = true),
        }),
      SandboxSetupError,
    );
    assertEquals((e as SandboxSetupError).code, "ENOENT");
    assert(ran, "the hook ran, and the failure is the sandbox's");
    assertEquals(openFds(), before);
    assertEquals(childPids(), []);
  },
);

Deno.test("spawn [rootless]: whileStarting in a user namespace sandbox", {
  ignore: !IS_ROOT,
}, async () => {
  // as uid 65534, in a new user namespace
  const r = await runAsNobody(
    `import { spawn } from ${
      JSON.stringify(new URL("../../sandbox/mod.ts", import.meta.url).href)
    };
let seen = 0;
await using box = await spawn({
  argv: ["/bin/sh", "-c", "id -u"],
  stdout: "pipe",
  whileStarting: ({ pid }) => void (seen = pid),
});
const out = await box.output();
console.log(JSON.stringify({
  same: seen === box.pid,
  code: out.status.code,
  out: new TextDecoder().decode(out.stdout),
}));
`,
    { code: true },
  );
  assertEquals(r.code, 0, r.stderr);
  assertEquals(JSON.parse(r.stdout), { same: true, code: 0, out: "0\n" });
});
