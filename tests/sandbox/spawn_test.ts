import {
  assert,
  assertEquals,
  assertMatch,
  assertRejects,
  childPids,
  ensureRootfs,
  IS_ROOT,
  mountsUnder,
  openFds,
  REPO,
  runAsNobody,
} from "../_helpers.ts";
import { exec, SandboxSetupError, spawn } from "../../sandbox/mod.ts";
import { probe } from "./_probe.ts";

const dec = new TextDecoder();

function checkProbe(r: Record<string, unknown>, rootless: boolean): void {
  assertEquals(r.pid, "2", "the command runs under a reaping init as PID 2");
  assertEquals(r.pidWithoutInit, "1", "init: false makes the command PID 1");
  assertEquals(r.hostname, "probe-host");
  assertEquals(r.root, [
    "bin",
    "dev",
    "etc",
    "mnt",
    "proc",
    "root",
    "sys",
    "tmp",
  ]);
  assert(
    !String(r.rootRaw).includes("work\n") &&
      !String(r.rootRaw).includes("home\n"),
    "host paths absent",
  );
  assertEquals(r.links, ["lo"]);
  assert(typeof r.ipc === "string" && r.ipc !== r.hostIpc, "own IPC namespace");
  if (rootless) {
    assertEquals(
      r.uidMap,
      [0, r.callerUid, 1],
      "uid 0 inside maps to the caller outside",
    );
  } else {assertEquals(
      r.uidMap,
      [0, 0, 4294967295],
      "root: no user namespace by default",
    );}
  assertEquals(r.fds, [0, 1, 2]);
  assertEquals(r.env, ["A=1", "PATH=/bin"]);
  assertEquals(r.readOnlyWrite, "1", "a read-only rootfs refuses writes");
  assertEquals(r.zombies, "0", "orphaned zombies are reaped");
  assertEquals((r.missingRootfs as { code: string }).code, "ENOENT");
  const mc = r.missingCommand as { code: string; step: string };
  assertEquals(mc.code, "ENOENT");
  assertMatch(mc.step, /no-such-command/);
  assertEquals((r.missingInPath as { code: string }).code, "ENOENT");
  if (rootless) {
    assertEquals((r.noPrivileges as { code: string }).code, "EPERM");
  }
}

Deno.test("spawn [root]: isolation probe on the busybox rootfs", {
  ignore: !IS_ROOT,
}, async () => {
  const rootfs = await ensureRootfs();
  // the engine's process-wide fds (epoll, lifeline pipe, init memfd) exist after a first spawn
  await (await spawn({ argv: ["/bin/true"], rootfs })).status;
  const before = openFds();
  checkProbe(await probe(rootfs), false);
  assertEquals(openFds(), before);
  assertEquals(mountsUnder(rootfs), []);
  assertEquals(childPids(), []);
});

Deno.test(
  "spawn [userns]: isolation probe as nobody",
  { ignore: !IS_ROOT },
  async () => {
    const rootfs = await ensureRootfs();
    const r = await runAsNobody(new URL("./_probe.ts", import.meta.url), {
      args: [rootfs],
    });
    assertEquals(r.code, 0, r.stderr);
    checkProbe(JSON.parse(r.stdout), true);
  },
);

const HOST_VIEW_SCRIPT = `
import { spawn } from "${REPO}/sandbox/mod.ts";
await using box = await spawn({
  argv: ["/bin/sh", "-c", "ls /; ls /etc; cat /etc/passwd; test -e /etc/shadow && echo SHADOW; ls /home /root; echo pid=$$; id -u; touch /usr/x 2>/dev/null || echo ro; touch /tmp/x && echo tmp-ok"],
  stdout: "pipe", stderr: "pipe", cwd: "/",
});
const out = await box.output();
console.log(new TextDecoder().decode(out.stdout) + "code=" + out.status.code);
`;

function checkHostView(out: string): void {
  assertMatch(out, /code=0/);
  const top = out.split("\n");
  for (const d of ["usr", "bin", "etc", "tmp", "proc", "dev"]) {
    assert(top.includes(d), `${d} present`);
  }
  for (const d of ["var", "srv", "work", "boot"]) {
    assert(!top.includes(d), `${d} absent`);
  }
  assert(!out.includes("SHADOW"), "/etc/shadow absent");
  assert(
    top.includes("ld.so.cache") && top.includes("passwd") &&
      top.includes("hosts"),
  );
  assertMatch(out, /^root:x:0:0:/m);
  assertEquals(
    out.split("\n").filter((l) => /^[a-z_-]+:x:\d+:/.test(l)).length,
    2,
    "passwd holds root and nobody",
  );
  assertMatch(out, /pid=2/);
  assertMatch(out, /^ro$/m);
  assertMatch(out, /^tmp-ok$/m);
}

Deno.test(
  "spawn [root]: built-in host view",
  { ignore: !IS_ROOT },
  async () => {
    const f = await Deno.makeTempFile({ suffix: ".ts" });
    await Deno.writeTextFile(f, HOST_VIEW_SCRIPT);
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--quiet", `--config=${REPO}/deno.json`, f],
      stdout: "piped",
    }).output();
    await Deno.remove(f);
    checkHostView(dec.decode(out.stdout));
  },
);

Deno.test(
  "spawn [userns]: built-in host view as nobody",
  { ignore: !IS_ROOT },
  async () => {
    const r = await runAsNobody(HOST_VIEW_SCRIPT, { code: true });
    assertEquals(r.code, 0, r.stderr);
    checkHostView(r.stdout);
  },
);

Deno.test("spawn [root]: stdin pipe, exit code, signal status, kill via init", {
  ignore: !IS_ROOT,
}, async () => {
  const rootfs = await ensureRootfs();
  {
    await using box = await spawn({
      argv: ["/bin/sh", "-c", "read x; echo got-$x; exit 7"],
      rootfs,
      stdin: "pipe",
      stdout: "pipe",
    });
    const w = box.stdin!.getWriter();
    await w.write(new TextEncoder().encode("hello\n"));
    await w.close();
    const out = await box.output();
    assertEquals(dec.decode(out.stdout), "got-hello\n");
    assertEquals(out.status.code, 7);
    assert(out.status.rusage.userTime + out.status.rusage.sysTime >= 0);
  }
  {
    await using box = await spawn({ argv: ["/bin/sleep", "60"], rootfs });
    box.kill("SIGTERM");
    const st = await box.status;
    assertEquals(
      st.signal,
      "SIGTERM",
      "the init forwards the signal and reports how the command died",
    );
    assertEquals(st.code, null);
  }
  {
    const box = await spawn({ argv: ["/bin/sleep", "60"], rootfs });
    const pid = box.pid;
    await box[Symbol.asyncDispose]();
    assertEquals((await box.status).signal, "SIGKILL");
    assertEquals(
      await Deno.stat(`/proc/${pid}`).then(() => true, () => false),
      false,
    );
  }
});

Deno.test(
  "spawn [root]: setup hook runs while the child waits; cgroup hook joins before exec",
  { ignore: !IS_ROOT },
  async () => {
    const rootfs = await ensureRootfs();
    const dir = `/sys/fs/cgroup/pids/denobox/spawn-test-${Deno.pid}`;
    await Deno.mkdir(dir, { recursive: true });
    try {
      let seen = "";
      let disposed = false;
      const box = await spawn({
        argv: ["/bin/sh", "-c", "readlink /proc/self/ns/net"],
        rootfs,
        stdout: "pipe",
        cgroup: dir,
        namespaces: { cgroup: false },
        setup: async ({ pid }) => {
          seen = await Deno.readLink(`/proc/${pid}/ns/net`);
          assertEquals(
            (await Deno.readTextFile(`${dir}/cgroup.procs`)).trim(),
            String(pid),
          );
          return { [Symbol.dispose]: () => void (disposed = true) };
        },
      });
      const out = await box.output();
      assertEquals(dec.decode(out.stdout).trim(), seen);
      assert(seen !== await Deno.readLink("/proc/self/ns/net"));
      assert(disposed, "the setup result is disposed after the reap");
    } finally {
      await Deno.remove(dir);
    }
  },
);

Deno.test("spawn [root]: a failing setup hook kills the child and rejects", {
  ignore: !IS_ROOT,
}, async () => {
  const rootfs = await ensureRootfs();
  await (await spawn({ argv: ["/bin/true"], rootfs })).status;
  const before = openFds();
  await assertRejects(
    () =>
      spawn({
        argv: ["/bin/true"],
        rootfs,
        setup: () => Promise.reject(new Error("boom")),
      }),
    Error,
    "boom",
  );
  assertEquals(openFds(), before);
  assertEquals(childPids(), []);
});

Deno.test("spawn [root]: exec runs inside the sandbox's namespaces and root", {
  ignore: !IS_ROOT,
}, async () => {
  const rootfs = await ensureRootfs();
  await using box = await spawn({
    argv: ["/bin/sleep", "60"],
    rootfs,
    hostname: "exec-box",
  });
  await using e = await exec(box, {
    argv: [
      "/bin/sh",
      "-c",
      "hostname; ps -o args | grep -c '^/bin/sleep 60'; ls /",
    ],
    stdout: "pipe",
    env: { PATH: "/bin" },
  });
  const out = await e.output();
  const lines = dec.decode(out.stdout).split("\n");
  assertEquals(lines[0], "exec-box");
  assertEquals(lines[1], "1", "sees the sandbox's processes");
  assert(lines.includes("mnt") && !lines.includes("usr"), "the sandbox's root");
  assertEquals(out.status.code, 0);
});

Deno.test("spawn [root]: pty gives the command a terminal of the asked size", {
  ignore: !IS_ROOT,
}, async () => {
  const rootfs = await ensureRootfs();
  await using box = await spawn({
    argv: ["/bin/sh", "-c", "stty size"],
    rootfs,
    pty: { rows: 33, cols: 101 },
  });
  const text = await new Response(box.pty!.readable).text();
  assertEquals(text.trim(), "33 101");
  assertEquals((await box.status).code, 0);
});

Deno.test("spawn: bad arguments are TypeErrors before anything runs", async () => {
  await assertRejects(() => spawn({ argv: [] }), TypeError);
  await assertRejects(
    () => spawn({ argv: ["/bin/true"], cwd: "relative" }),
    TypeError,
  );
  await assertRejects(
    () => spawn({ argv: ["/bin/true"], env: { "A=B": "x" } }),
    TypeError,
  );
  await assertRejects(
    () =>
      spawn({ argv: ["/bin/true"], namespaces: { mnt: false }, rootfs: "/" }),
    TypeError,
  );
  await assertRejects(
    () => spawn({ argv: ["/bin/true"], stdout: "bogus" as "pipe" }),
    TypeError,
  );
});

Deno.test(
  "spawn [root]: a missing command is a SandboxSetupError with the step index",
  { ignore: !IS_ROOT },
  async () => {
    const rootfs = await ensureRootfs();
    const e = await assertRejects(
      () => spawn({ argv: ["/bin/nope"], rootfs }),
      SandboxSetupError,
    ) as SandboxSetupError;
    assertEquals(e.code, "ENOENT");
    assertEquals(e.errno, 2);
    assertEquals(e.path, "/bin/nope");
    assert(e.index > 0);
  },
);

Deno.test(
  "spawn [root]: /dev nodes are 0666 whatever the caller's umask, and the command keeps that umask",
  { ignore: !IS_ROOT },
  async () => {
    const rootfs = await ensureRootfs();
    for (const base of [{}, { rootfs }]) {
      await using box = await spawn({
        argv: [
          "/bin/sh",
          "-c",
          "stat -c '%a %n' /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty; umask; echo x > /dev/null && echo written",
        ],
        env: { PATH: "/usr/bin:/bin" },
        user: { uid: 1000, gid: 1000 },
        stdout: "pipe",
        stderr: "pipe",
        ...base,
      });
      const { status, stdout, stderr } = await box.output();
      assertEquals(status.code, 0, dec.decode(stderr));
      const lines = dec.decode(stdout).trim().split("\n");
      assertEquals(
        lines.slice(0, 6).map((l) => l.split(" ")[0]),
        Array(6).fill("666"),
      );
      const mask = Deno.umask();
      Deno.umask(mask);
      assertEquals(parseInt(lines[6]!, 8), mask, "the caller's umask");
      assertEquals(
        lines[7],
        "written",
        "an unprivileged command can write /dev/null",
      );
    }
  },
);

Deno.test(
  "spawn [root]: the command starts with every signal default and unblocked",
  {
    ignore: !IS_ROOT,
  },
  async () => {
    // Deno ignores SIGPIPE and handles others; none of that may reach the command, with the
    // init (whose child resets only what this process ignores) or without it
    const mine = await Deno.readTextFile("/proc/self/status");
    assertMatch(mine, /^SigIgn:\s*0*[1-9a-f]/m);
    for (const init of [true, false]) {
      await using box = await spawn({
        // cat installs no handler of its own (grep does, for SIGSEGV)
        argv: ["/bin/cat", "/proc/self/status"],
        init,
        stdout: "pipe",
      });
      const { status, stdout } = await box.output();
      assertEquals(status.code, 0);
      assertEquals(
        dec.decode(stdout).split("\n")
          .filter((l) => /^Sig(Blk|Ign|Cgt)/.test(l)).map((l) => l + "\n")
          .join(""),
        "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\nSigCgt:\t0000000000000000\n",
        `init: ${init}`,
      );
    }
  },
);

Deno.test("spawn: beforeStart runs before the child exists; its failure starts nothing", async () => {
  // a first sandbox opens what spawn keeps for the process (epoll set, lifeline, init memfd)
  await (await spawn({ argv: ["/bin/true"] })).status;
  const fds = openFds().length;
  const kids = childPids();
  let seen: number[] | null = null;
  await using box = await spawn({
    argv: ["/bin/true"],
    beforeStart: () => {
      seen = childPids();
      return Promise.resolve();
    },
  });
  assertEquals((await box.status).code, 0);
  assertEquals(seen, kids);
  await assertRejects(
    () =>
      spawn({
        argv: ["/bin/true"],
        stdout: "pipe",
        beforeStart: () => Promise.reject(new Error("not now")),
      }),
    Error,
    "not now",
  );
  assertEquals(childPids(), kids);
  assertEquals(openFds().length, fds);
});
