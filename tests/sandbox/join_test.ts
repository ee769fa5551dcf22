/**
 * Joined namespaces next to new ones: a sandbox that joins an existing network namespace (by
 * path or pidfd) still gets its new pid namespace from clone(), so the command runs under the
 * reaping init (not as PID 1), sees a fresh /proc, and the joined namespace's links.
 */
import {
  assert,
  assertEquals,
  childPids,
  ensureRootfs,
  IS_ROOT,
  openFds,
} from "../_helpers.ts";
import { type NamespaceSetting, spawn } from "../../sandbox/mod.ts";

const dec = new TextDecoder();

/** A sandbox holding a new netns with a veth pair the test made in it (never in ours). */
async function netnsHolder(rootfs: string) {
  const holder = await spawn({
    argv: ["/bin/sleep", "1000"],
    rootfs,
    namespaces: { net: true },
  });
  const add = await new Deno.Command("ip", {
    args: [
      "link",
      "add",
      "jn0",
      "netns",
      String(holder.pid),
      "type",
      "veth",
      "peer",
      "name",
      "jn1",
      "netns",
      String(holder.pid),
    ],
    stderr: "piped",
  }).output();
  if (!add.success) {
    await holder[Symbol.asyncDispose]();
    throw new Error(`ip link add: ${dec.decode(add.stderr)}`);
  }
  return holder;
}

const SCRIPT = [
  "echo pid=$$",
  // a shell glob: no extra process shows up in /proc
  "for d in /proc/[0-9]*; do echo proc=${d#/proc/}; done",
  "ip -o link | sed -n 's/^[0-9]*: \\([^:@]*\\).*/link=\\1/p'",
  "echo ns=$(readlink /proc/self/ns/net)",
  "kill -SEGV $$",
  "echo survived",
].join("; ");

async function joinedRun(
  rootfs: string,
  net: NamespaceSetting,
) {
  await using box = await spawn({
    argv: ["/bin/sh", "-c", SCRIPT],
    rootfs,
    env: { PATH: "/bin" },
    namespaces: { net, pid: true, mnt: true },
    stdout: "pipe",
    stderr: "pipe",
  });
  const { status, stdout, stderr } = await box.output();
  const lines = dec.decode(stdout).trim().split("\n");
  const of = (k: string) =>
    lines.filter((l) => l.startsWith(k + "=")).map((l) =>
      l.slice(k.length + 1)
    );
  return { status, lines, of, stderr: dec.decode(stderr) };
}

for (const by of ["path", "pidfd"] as const) {
  Deno.test(
    `spawn [root]: a joined netns (by ${by}) with a new pid ns keeps the init and a fresh /proc`,
    { ignore: !IS_ROOT },
    async () => {
      const rootfs = await ensureRootfs();
      await (await spawn({ argv: ["/bin/true"], rootfs })).status;
      const before = openFds();
      {
        await using holder = await netnsHolder(rootfs);
        const nsPath = `/proc/${holder.pid}/ns/net`;
        const r = await joinedRun(
          rootfs,
          by === "path" ? { path: nsPath } : { pidfd: holder.pidfd },
        );
        assertEquals(r.of("pid"), ["2"], "the command runs under the init");
        assertEquals(
          r.of("proc"),
          ["1", "2"],
          `/proc shows only the sandbox's processes: ${r.lines}`,
        );
        assertEquals(r.of("link").sort(), ["jn0", "jn1", "lo"]);
        assertEquals(r.of("ns"), [await Deno.readLink(nsPath)]);
        assert(!r.lines.includes("survived"), "SIGSEGV is not ignored");
        assertEquals(r.status.signal, "SIGSEGV", r.stderr);
      }
      assertEquals(openFds(), before);
      assertEquals(childPids(), []);
    },
  );
}
