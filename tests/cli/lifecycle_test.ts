// The container lifecycle as a user drives it, only through the CLI (the `denobox` launcher as a
// subprocess) with a temp --root: import an image, run -d, ps, logs, exec, stop, ps -a, rm,
// and nothing left behind (cgroup, mounts, network, overlay directories).
import {
  assert,
  assertEquals,
  assertMatch,
  ensureRootfs,
  exists,
  IS_ROOT,
  mountsUnder,
  type ScriptResult,
} from "../_helpers.ts";
import { join } from "node:path";
import { cli as cliIn, until } from "./_cli.ts";

// a bridge and subnet of the test's own, no NAT: nothing of the host's networking is touched
const NET_ENV = {
  DENOBOX_BRIDGE: "dbxclitest0",
  DENOBOX_SUBNET: "10.213.7.0/24",
  DENOBOX_NAT: "0",
};

/** `denobox --root ROOT ARGS...` on the test's own network. */
async function cli(
  root: string,
  args: string[],
  options: { stdin?: string } = {},
): Promise<ScriptResult> {
  return await cliIn(root, args, { ...options, env: NET_ENV });
}

function cgroupDirs(name: string): string[] {
  const out: string[] = [];
  for (const h of Deno.readDirSync("/sys/fs/cgroup")) {
    for (
      const p of [
        `/sys/fs/cgroup/${h.name}/denobox/${name}`,
        `/sys/fs/cgroup/${h.name}/${name}`,
      ]
    ) {
      if (exists(p)) out.push(p);
    }
  }
  return out;
}

function hostLinks(): string[] {
  return [...Deno.readDirSync("/sys/class/net")].map((e) => e.name);
}

async function makeImage(root: string): Promise<void> {
  const rootfs = await ensureRootfs();
  const tar = join(root, "busybox.tar");
  const t = await new Deno.Command("tar", {
    args: ["-C", rootfs, "-cf", tar, "."],
  }).output();
  assert(t.success, "tar failed");
  const imp = await cli(root, ["import", tar, "bb:1"]);
  assertEquals(imp.code, 0, imp.stderr);
  await Deno.remove(tar);
}

Deno.test({
  name:
    "cli lifecycle [root]: run -d, ps, logs, exec, stop, ps -a, rm leaves nothing",
  ignore: !IS_ROOT,
  fn: async () => {
    const root = await Deno.makeTempDir({ prefix: "denobox-life-" });
    try {
      await makeImage(root);
      const script =
        'trap "exit 7" TERM; echo hello; echo oops >&2; echo made-by-init > /tmp/marker; ' +
        "while :; do sleep 0.05; done";
      const run = await cli(root, [
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "bridge",
        "bb:1",
        "sh",
        "-c",
        script,
      ]);
      assertEquals(run.code, 0, run.stderr);
      const id = run.stdout.trim();
      assertMatch(id, /^[0-9a-f]{64}$/);

      // ps shows it running
      const ps = await cli(root, ["ps", "--format", "json"]);
      const row = JSON.parse(ps.stdout.trim());
      assertEquals([row.ID, row.Names, row.State], [id, "web", "running"]);

      // resources exist while it runs
      const info = JSON.parse((await cli(root, ["inspect", "web"])).stdout)[0];
      assert(info.State.Pid > 0);
      assert(
        info.Cgroup.length > 0 && info.Cgroup.every(exists),
        "cgroup dirs exist",
      );
      assert(mountsUnder(root).length > 0, "overlay mounted under the root");
      assertMatch(info.NetworkSettings.IPAddress, /^10\.213\.7\.\d+$/);
      assert(hostLinks().includes("dbxclitest0"), "bridge exists");

      // logs: both streams, in order per stream
      const logs = await until("logs", async () => {
        const l = await cli(root, ["logs", "web"]);
        return l.stdout.includes("hello") && l.stderr.includes("oops")
          ? l
          : null;
      });
      assertEquals(logs.stdout, "hello\n");
      assertEquals(logs.stderr, "oops\n");

      // exec: same PID namespace and same root as the container's first process
      await until("marker", async () => {
        const m = await cli(root, ["exec", "web", "cat", "/tmp/marker"]);
        return m.code === 0 ? m : null;
      });
      const ex = await cli(root, [
        "exec",
        "web",
        "sh",
        "-c",
        "readlink /proc/self/ns/pid; cat /tmp/marker; hostname; ps -o args",
      ]);
      assertEquals(ex.code, 0, ex.stderr);
      const [nsSelf, marker, hostname, ...procs] = ex.stdout.trim().split("\n");
      // the container's first process (as the host sees it) is in the same pid namespace
      assertEquals(
        nsSelf,
        await Deno.readLink(`/proc/${info.State.Pid}/ns/pid`),
      );
      assert(
        nsSelf !== (await Deno.readLink("/proc/self/ns/pid")),
        "not the host's pid namespace",
      );
      assert(
        procs.some((l) => l.includes("made-by-init")),
        "exec sees the container's processes",
      );
      assertEquals(marker, "made-by-init");
      assertEquals(hostname, id.slice(0, 12));
      // exec's own exit status and a missing command
      assertEquals(
        (await cli(root, ["exec", "web", "sh", "-c", "exit 4"])).code,
        4,
      );
      const nf = await cli(root, ["exec", "web", "/no/such/cmd"]);
      assertEquals(nf.code, 127, nf.stderr);
      // -i feeds stdin
      const cat = await cli(root, ["exec", "-i", "web", "cat"], {
        stdin: "piped in\n",
      });
      assertEquals(cat.stdout, "piped in\n");

      // stop: SIGTERM reaches the trap (exit 7), long before the 30 s timeout's SIGKILL
      const stop = await cli(root, ["stop", "-t", "30", "web"]);
      assertEquals(stop.code, 0, stop.stderr);
      const after = JSON.parse(
        (await cli(root, ["ps", "-a", "--format", "json"])).stdout.trim(),
      );
      assertEquals([after.State, after.ExitCode], ["exited", 7]);
      assertMatch(after.Status, /^Exited \(7\)/);
      assertEquals((await cli(root, ["ps", "-q"])).stdout.trim(), "");

      // rm: nothing of it is left
      const rm = await cli(root, ["rm", "web"]);
      assertEquals(rm.code, 0, rm.stderr);
      assertEquals((await cli(root, ["ps", "-aq"])).stdout.trim(), "");
      assertEquals(info.Cgroup.filter(exists), []);
      assertEquals(cgroupDirs(`ctr-${id.slice(0, 32)}`), []);
      assertEquals(mountsUnder(root), []);
      assert(
        !exists(join(root, "containers", id)),
        "container directory removed",
      );
      assert(
        !exists(join(root, "run", "containers", id)),
        "runtime directory removed",
      );
      assertEquals(
        hostLinks().filter((l) => l.startsWith("dbx") && l !== "dbxclitest0"),
        [],
      );
    } finally {
      await cli(root, ["rm", "-f", "web"]);
      await new Deno.Command("ip", {
        args: ["link", "del", "dbxclitest0"],
        stderr: "null",
      }).output();
      for (const m of mountsUnder(root).reverse()) {
        await new Deno.Command("umount", { args: ["-l", m] }).output();
      }
      await Deno.remove(root, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "cli lifecycle [root]: exit codes, stop escalates to SIGKILL, rm -f, a killed monitor",
  ignore: !IS_ROOT,
  fn: async () => {
    const root = await Deno.makeTempDir({ prefix: "denobox-life-" });
    try {
      // the command's own status, 127 not found, 126 not executable, 125 denobox itself
      assertEquals(
        (await cli(root, ["run", "--rm", "--", "sh", "-c", "exit 3"])).code,
        3,
      );
      const nf = await cli(root, ["run", "--rm", "/no/such/thing"]);
      assertEquals(nf.code, 127, nf.stderr);
      assertMatch(nf.stderr, /not found/);
      assertEquals((await cli(root, ["run", "--rm", "/etc/passwd"])).code, 126);
      assertEquals((await cli(root, ["run", "--bogus"])).code, 125);
      const out = await cli(root, [
        "run",
        "--rm",
        "-e",
        "X=42",
        "--",
        "sh",
        "-c",
        'echo "$X"; echo e >&2',
      ]);
      assertEquals([out.code, out.stdout, out.stderr], [0, "42\n", "e\n"]);
      // the host view is read-only
      assertEquals(
        (await cli(root, [
          "run",
          "--rm",
          "--",
          "sh",
          "-c",
          "touch /etc/denobox-x",
        ])).code,
        1,
      );
      assertEquals(
        (await cli(root, ["ps", "-aq"])).stdout.trim(),
        "",
        "--rm removed them",
      );

      // stop of a command that ignores SIGTERM: SIGKILL after the timeout, exit 137
      const id = (await cli(root, [
        "run",
        "-d",
        "--",
        "sh",
        "-c",
        'trap "" TERM; echo ready; while :; do sleep 0.05; done',
      ])).stdout.trim();
      // only once the trap is set (else SIGTERM ends it before: 143)
      await until("the trap", async () => {
        const l = await cli(root, ["logs", id]);
        return l.stdout.includes("ready") ? l : null;
      });
      assertEquals(
        (await cli(root, ["stop", "-t", "1", id.slice(0, 10)])).code,
        0,
      );
      assertEquals(
        JSON.parse((await cli(root, ["inspect", id])).stdout)[0].State.ExitCode,
        137,
      );

      // rm of a running container needs -f
      const id2 = (await cli(root, ["run", "-d", "--", "sleep", "1000"])).stdout
        .trim();
      const refused = await cli(root, ["rm", id2]);
      assertEquals(refused.code, 1);
      assertMatch(refused.stderr, /stop it first.*rm -f/);
      const pid =
        JSON.parse((await cli(root, ["inspect", id2])).stdout)[0].State.Pid;
      assertEquals((await cli(root, ["rm", "-f", id, id2])).code, 0);
      assert(
        !exists(`/proc/${pid}`) ||
          !(await Deno.readTextFile(`/proc/${pid}/cmdline`).catch(() => ""))
            .includes("sleep"),
      );

      // a monitor killed with SIGKILL: the container dies with it and shows as exited (unknown)
      const id3 = (await cli(root, [
        "run",
        "-d",
        "--name",
        "victim",
        "--",
        "sleep",
        "1000",
      ])).stdout.trim();
      const st =
        JSON.parse((await cli(root, ["inspect", id3])).stdout)[0].State;
      Deno.kill(st.MonitorPid, "SIGKILL");
      const row = await until("monitor death seen", async () => {
        const r = JSON.parse(
          (await cli(root, ["ps", "-a", "--format", "json"])).stdout.trim(),
        );
        return r.State === "exited" ? r : null;
      });
      assertMatch(row.Status, /^Exited \(unknown\)/);
      await until(
        "container process gone",
        () => Promise.resolve(exists(`/proc/${st.Pid}`) ? null : true),
      );
      const rm = await cli(root, ["rm", "victim"]);
      assertEquals(rm.code, 0, rm.stderr);
      assertEquals(cgroupDirs(`ctr-${id3.slice(0, 32)}`), []);
    } finally {
      const ids = (await cli(root, ["ps", "-aq", "--no-trunc"])).stdout.trim()
        .split("\n").filter(Boolean);
      if (ids.length) await cli(root, ["rm", "-f", ...ids]);
      await Deno.remove(root, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "cli lifecycle [root]: cp never follows a symlink out of the container; commit, export, rmi",
  ignore: !IS_ROOT,
  fn: async () => {
    const root = await Deno.makeTempDir({ prefix: "denobox-cp-" });
    try {
      await makeImage(root);
      const script =
        "ln -s /etc /tmp/escdir; ln -s /etc/passwd /tmp/esc; echo inside > /tmp/f; " +
        "while :; do sleep 0.05; done";
      const run = await cli(root, [
        "run",
        "-d",
        "--name",
        "w",
        "bb:1",
        "sh",
        "-c",
        script,
      ]);
      assertEquals(run.code, 0, run.stderr);
      await until("files", async () => {
        const r = await cli(root, ["exec", "w", "test", "-e", "/tmp/f"]);
        return r.code === 0 ? r : null;
      });
      // out: a path through the symlink resolves inside the container's root
      assertEquals(
        (await cli(root, ["cp", "w:/tmp/escdir/passwd", join(root, "p")])).code,
        0,
      );
      const inner = await Deno.readTextFile(join(root, "p"));
      const image = await Deno.readTextFile(
        join(await ensureRootfs(), "etc", "passwd"),
      );
      assertEquals(inner, image);
      // a symlink itself is copied as a symlink, not followed
      assertEquals(
        (await cli(root, ["cp", "w:/tmp/esc", join(root, "esc")])).code,
        0,
      );
      assertEquals(await Deno.readLink(join(root, "esc")), "/etc/passwd");
      // in: writing through the symlink lands in the container's /etc, never the host's
      const name = `denobox-cp-${Deno.pid}`;
      await Deno.writeTextFile(join(root, name), "from host\n");
      assertEquals(
        (await cli(root, ["cp", join(root, name), "w:/tmp/escdir/"])).code,
        0,
      );
      assert(!exists(`/etc/${name}`), "the host's /etc was written");
      assertEquals(
        (await cli(root, ["exec", "w", "cat", `/etc/${name}`])).stdout,
        "from host\n",
      );
      // stopped: cp, commit and export still see its layer
      assertEquals((await cli(root, ["stop", "-t", "0", "w"])).code, 0);
      assertEquals(
        (await cli(root, ["cp", "w:/tmp/f", join(root, "f")])).code,
        0,
      );
      assertEquals(await Deno.readTextFile(join(root, "f")), "inside\n");
      const commit = await cli(root, ["commit", "w", "bb:2"]);
      assertEquals(commit.code, 0, commit.stderr);
      const out = await cli(root, ["run", "--rm", "bb:2", "cat", "/tmp/f"]);
      assertEquals(out.stdout, "inside\n");
      assertEquals(
        (await cli(root, ["export", "w", "-o", join(root, "w.tar")])).code,
        0,
      );
      const tar = await new Deno.Command("tar", {
        args: ["tf", join(root, "w.tar")],
        stdout: "piped",
      }).output();
      assertMatch(new TextDecoder().decode(tar.stdout), /^(\.\/)?tmp\/f$/m);
      const inUse = await cli(root, ["rmi", "bb:1"]);
      assertMatch(inUse.stderr, /containers use it \(w\)/);
      assertEquals((await cli(root, ["rm", "w"])).code, 0);
      assertEquals((await cli(root, ["rmi", "bb:1", "bb:2"])).code, 0);
      assertEquals((await cli(root, ["images", "-q"])).stdout.trim(), "");
      assertEquals(mountsUnder(root), []);
    } finally {
      await cli(root, ["rm", "-f", "w"]);
      await Deno.remove(root, { recursive: true });
    }
  },
});
