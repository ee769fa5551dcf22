/**
 * spawn() keeps the memory of finished syscall programs (a memfd mapped at its fixed address)
 * for the next ones, zeroed where it was written: bounded, and reused run after run.
 */
import { assert, assertEquals, programMemories } from "../_helpers.ts";
import { spawn } from "../../sandbox/mod.ts";

const dec = new TextDecoder();

Deno.test("spawn: program memories are reused, at most 16 kept, and each run reads its own program", async () => {
  // other test modules of this process may hold some (kept, or under way): count the growth
  const before = programMemories();
  // many at once: each needs a memory of its own while it runs
  const boxes = await Promise.all(
    Array.from({ length: 24 }, (_, i) =>
      spawn({
        argv: ["/bin/sh", "-c", `echo run-${i}`],
        stdout: "pipe",
        namespaces: { user: true, pid: true, mnt: false, net: false },
      })),
  );
  const outs = await Promise.all(boxes.map(async (b) => {
    const { stdout } = await b.output();
    await b[Symbol.asyncDispose]();
    return dec.decode(stdout);
  }));
  assertEquals(outs, Array.from({ length: 24 }, (_, i) => `run-${i}\n`));
  // the last program's memory goes back once its init is reaped, right after status
  await new Promise((r) => setTimeout(r, 10));
  const kept = programMemories();
  assert(kept > 0 && kept - before <= 16, `kept ${kept} (${before} before)`);
  // one at a time: the same memories serve, no new one
  for (let i = 0; i < 5; i++) {
    await using b = await spawn({
      argv: ["/bin/sh", "-c", `echo again-${i}`],
      stdout: "pipe",
      namespaces: { user: true, pid: true, mnt: false, net: false },
    });
    assertEquals(dec.decode((await b.output()).stdout), `again-${i}\n`);
  }
  await new Promise((r) => setTimeout(r, 10));
  assertEquals(programMemories(), kept);
});
