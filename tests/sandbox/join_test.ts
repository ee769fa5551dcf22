/**
 * Joined namespaces next to new ones: a sandbox that joins an existing network namespace (by
 * path or pidfd) still gets its new pid namespace from clone(), so the command runs under the
 * reaping init (not as PID 1), sees a fresh /proc, and the joined namespace's links.
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
import {
  type NamespaceSetting,
  SandboxSetupError,
  spawn,
} from "../../sandbox/mod.ts";
import { joinUserProbe } from "./_join_user_probe.ts";

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
  user = false,
) {
  await using box = await spawn({
    argv: ["/bin/sh", "-c", SCRIPT],
    rootfs,
    env: { PATH: "/bin" },
    namespaces: { net, pid: true, mnt: true, user },
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

Deno.test(
  "spawn [root]: a new user ns with a joined netns and a new pid ns runs under an init with its own /proc",
  { ignore: !IS_ROOT },
  async () => {
    const rootfs = await ensureRootfs();
    await (await spawn({ argv: ["/bin/true"], rootfs })).status;
    const before = openFds();
    {
      await using holder = await netnsHolder(rootfs);
      const r = await joinedRun(rootfs, { pidfd: holder.pidfd }, true);
      assertEquals(r.of("pid"), ["2"], "the command runs under the init");
      assertEquals(r.of("proc"), ["1", "2"], `only this sandbox: ${r.lines}`);
      assertEquals(r.of("link").sort(), ["jn0", "jn1", "lo"]);
      assertEquals(r.status.signal, "SIGSEGV", r.stderr);
    }
    assertEquals(openFds(), before);
    assertEquals(childPids(), []);
  },
);

/**
 * A joined user namespace with new pid and mount namespaces: the child joins, then unshares,
 * and unshare(CLONE_NEWPID) only moves its children, so it forks its successor into the new
 * pid namespace. The command must run under that init with the new namespace's /proc.
 */
function checkJoinedUser(r: Record<string, unknown>): void {
  const lines = String(r.lines);
  assertEquals(r.pid, ["2"], `the command runs under the init: ${lines}`);
  assertEquals(r.proc, ["1", "2"], `/proc shows only this sandbox: ${lines}`);
  assertEquals(r.user, [r.holderUser], "the holder's user namespace");
  const pidns = (r.pidns as string[])[0];
  assert(
    pidns !== r.holderPidns && pidns !== r.ourPidns,
    `a new pid namespace: ${lines}`,
  );
  assertEquals(r.execCode, 0);
  assertEquals(r.execPidns, pidns, "exec joins the sandbox's pid namespace");
  assertEquals(r.signal, "SIGTERM", "kill() reaches the command via the init");
}

Deno.test(
  "spawn [root]: a joined user ns (by pidfd) with new pid+mnt runs under an init with its own /proc",
  { ignore: !IS_ROOT },
  async () => {
    const rootfs = await ensureRootfs();
    await (await spawn({ argv: ["/bin/true"], rootfs })).status;
    const before = openFds();
    checkJoinedUser(await joinUserProbe(rootfs));
    assertEquals(openFds(), before);
    assertEquals(childPids(), []);
  },
);

Deno.test(
  "spawn [userns]: the same as nobody, joining a rootless sandbox's user ns",
  { ignore: !IS_ROOT },
  async () => {
    const rootfs = await ensureRootfs();
    const r = await runAsNobody(
      new URL("./_join_user_probe.ts", import.meta.url),
      { args: [rootfs] },
    );
    assertEquals(r.code, 0, r.stderr);
    checkJoinedUser(JSON.parse(r.stdout));
  },
);

Deno.test(
  "spawn [root]: with a joined user ns, a failing step after the fork leaves no process; init: false gives PID 1",
  { ignore: !IS_ROOT },
  async () => {
    const rootfs = await ensureRootfs();
    await (await spawn({ argv: ["/bin/true"], rootfs })).status;
    const before = openFds();
    {
      await using holder = await spawn({
        argv: ["/bin/sleep", "1000"],
        rootfs,
        namespaces: { user: true },
      });
      const namespaces = {
        user: { pidfd: holder.pidfd },
        pid: true,
        mnt: true,
      } as const;
      const e = await assertRejects(
        () => spawn({ argv: ["/bin/nope"], rootfs, namespaces }),
        SandboxSetupError,
      ) as SandboxSetupError;
      assertEquals(e.code, "ENOENT");
      assertEquals(e.path, "/bin/nope");
      await using box = await spawn({
        argv: ["/bin/sh", "-c", "echo $$; ls -d /proc/[0-9]*"],
        rootfs,
        namespaces,
        init: false,
        stdout: "pipe",
      });
      const out = await box.output();
      assertEquals(dec.decode(out.stdout).split("\n"), ["1", "/proc/1", ""]);
      assertEquals(childPids(), [holder.pid]);
    }
    assertEquals(openFds(), before);
    assertEquals(childPids(), []);
  },
);
