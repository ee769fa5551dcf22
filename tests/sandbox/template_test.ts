/**
 * `RootTemplate`: a root built once in a mount namespace of its own, copied by each sandbox.
 * Checked from inside: the same host view as a plain spawn, read-only down to /dev; /tmp,
 * /dev/shm and /proc private to each sandbox; host binds and a detached tmpfs (fsmount) bound
 * in; a pty gets its devpts; a directory rootfs works too. From outside: the template is an
 * fd, never a host mount, and nothing is left once it is closed; bad uses are refused first.
 */
import {
  assert,
  assertEquals,
  assertMatch,
  assertRejects,
  childPids,
  ensureRootfs,
  fdTargets,
  IS_ROOT,
  runAsNobody,
} from "../_helpers.ts";
import { fsmountNew } from "../../libc/mod.ts";
import { RootTemplate, spawn, type SpawnOptions } from "../../sandbox/mod.ts";

const text = (b: Uint8Array) => new TextDecoder().decode(b);

async function run(
  o: SpawnOptions,
): Promise<{ code: number | null; out: string; err: string }> {
  await using box = await spawn({ stdout: "pipe", stderr: "pipe", ...o });
  const { stdout, stderr } = await box.output();
  const st = await box.status;
  return { code: st.code, out: text(stdout), err: text(stderr) };
}

const sh = (script: string) => ["/bin/sh", "-c", script];

/** The mount namespaces this process holds by fd. */
function mntFds(): string[] {
  return [...fdTargets().values()].filter((t) => t.startsWith("mnt:"));
}

Deno.test({
  name:
    "[root] RootTemplate: the host view, read-only to /dev; /tmp, /dev/shm, /proc per sandbox",
  ignore: !IS_ROOT,
  async fn() {
    const hostMounts = Deno.readTextFileSync("/proc/self/mountinfo");
    const fdsBefore = mntFds();
    const kidsBefore = childPids();
    {
      using template = await RootTemplate.create({ mountPoints: ["/work"] });
      // nothing of it on the host: one more fd, no mount
      assertEquals(Deno.readTextFileSync("/proc/self/mountinfo"), hostMounts);
      assertEquals(mntFds().length, fdsBefore.length + 1);
      assert(template.mountPoints.has("/work"));
      assert(template.mountPoints.has("/tmp"));

      const probe = sh(
        "echo pid $$; hostname; ls /tmp; touch /tmp/mark$$ /dev/shm/mark$$ && echo wrote; " +
          "echo x > /dev/null && echo null-ok; head -c 4 /dev/zero | wc -c; " +
          "for d in / /etc /usr /dev /work; do touch $d/x 2>/dev/null && echo writable $d; done; " +
          "ls /dev/shm; ls /proc | grep -c '^[0-9]'",
      );
      const first = await run({
        argv: probe,
        rootfs: template,
        hostname: "t1",
      });
      assertEquals(first.code, 0, first.err);
      const second = await run({
        argv: probe,
        rootfs: template,
        hostname: "t2",
      });
      assertEquals(second.code, 0, second.err);
      for (const [r, name] of [[first, "t1"], [second, "t2"]] as const) {
        const lines = r.out.split("\n");
        // PID 2 under the init, its own hostname, an empty /tmp and /dev/shm (the other
        // sandbox's marks are not there), only its own processes in /proc
        assertEquals(lines[0], "pid 2");
        assertEquals(lines[1], name);
        assertEquals(lines[2], "wrote");
        assertEquals(lines[3], "null-ok");
        assertEquals(lines[4], "4");
        assertEquals(lines[5], "mark2");
        // the init, sh, ls and grep
        assertEquals(lines[6], "4");
        assert(!r.out.includes("writable"), r.out);
      }
      // the same tree as spawn()'s own host view
      const tree = sh("ls -A / /etc /usr | sort | tr '\\n' ' '");
      const a = await run({ argv: tree, rootfs: template });
      const b = await run({ argv: tree });
      // (but for the mount point asked for)
      assertEquals(a.out.replace(" work ", " "), b.out);
      assert(!a.out.includes("shadow"), a.out);

      template.close();
      template.close();
      await assertRejects(
        () => spawn({ argv: ["/bin/true"], rootfs: template }),
        TypeError,
        "closed",
      );
    }
    assertEquals(mntFds(), fdsBefore);
    assertEquals(childPids(), kidsBefore);
    assertEquals(Deno.readTextFileSync("/proc/self/mountinfo"), hostMounts);
  },
});

Deno.test({
  name:
    "[root] RootTemplate: host binds (read-only and read-write) and a detached tmpfs are bound in",
  ignore: !IS_ROOT,
  async fn() {
    const dir = await Deno.makeTempDir();
    await Deno.writeTextFile(`${dir}/in`, "from the host\n");
    const out = await Deno.makeTempDir();
    using template = await RootTemplate.create({
      mountPoints: ["/data", "/out", "/box"],
    });
    using work = fsmountNew("tmpfs", { config: { size: "1m" } });
    try {
      const r = await run({
        argv: sh(
          "cat /data/in; touch /data/x 2>/dev/null || echo ro; echo hi > /out/f; echo w > /box/w; cat /box/w",
        ),
        rootfs: template,
        mounts: [
          { type: "bind", source: dir, target: "/data", readOnly: true },
          { type: "bind", source: out, target: "/out" },
          { type: "bind", source: `/proc/self/fd/${work.fd}`, target: "/box" },
        ],
      });
      assertEquals(r.code, 0, r.err);
      assertEquals(r.out, "from the host\nro\nw\n");
      assertEquals(await Deno.readTextFile(`${out}/f`), "hi\n");
      // a target the read-only root lacks: the error names the mount
      await assertRejects(
        () =>
          spawn({
            argv: ["/bin/true"],
            rootfs: template,
            mounts: [{ type: "bind", source: dir, target: "/nowhere" }],
          }),
        Error,
        "/nowhere",
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
      await Deno.remove(out, { recursive: true });
    }
  },
});

Deno.test({
  name: "[root] RootTemplate: a pty gets its devpts; a directory rootfs works",
  ignore: !IS_ROOT,
  async fn() {
    {
      using template = await RootTemplate.create();
      await using box = await spawn({
        argv: ["/usr/bin/tty"],
        rootfs: template,
        pty: true,
      });
      const chunks: Uint8Array[] = [];
      const reader = box.pty!.readable.getReader();
      for (;;) {
        const { value, done } = await reader.read().catch(() => ({
          value: undefined,
          done: true,
        }));
        if (done || !value) break;
        chunks.push(value);
      }
      assertEquals((await box.status).code, 0);
      assertMatch(
        text(new Uint8Array(chunks.flatMap((c) => [...c]))),
        /\/dev\/pts\/0/,
      );
    }
    const rootfs = await ensureRootfs();
    using busybox = await RootTemplate.create({ rootfs });
    const r = await run({
      argv: sh(
        "ls /bin/busybox && touch /x 2>/dev/null || echo ro; touch /tmp/y && echo tmp",
      ),
      rootfs: busybox,
    });
    assertEquals(r.code, 0, r.err);
    assertEquals(r.out, "/bin/busybox\nro\ntmp\n");
  },
});

Deno.test({
  name: "[root] RootTemplate: bad uses are refused before anything runs",
  ignore: !IS_ROOT,
  async fn() {
    const before = mntFds();
    await assertRejects(
      () =>
        RootTemplate.create({
          mounts: [{ type: "tmpfs", target: "/scratch" }],
        }),
      TypeError,
      "read-only",
    );
    await assertRejects(
      () => RootTemplate.create({ mountPoints: ["relative"] }),
      TypeError,
      "absolute",
    );
    await assertRejects(
      () => RootTemplate.create({ rootfs: "/nonexistent/denobox-root" }),
      Error,
      "/nonexistent/denobox-root",
    );
    using template = await RootTemplate.create();
    await assertRejects(
      () =>
        spawn({
          argv: ["/bin/true"],
          rootfs: template,
          namespaces: { user: true },
        }),
      TypeError,
      "RootTemplate",
    );
    template.close();
    assertEquals(mntFds(), before);
  },
});

Deno.test({
  name: "[root] RootTemplate: refused rootless, with the reason",
  ignore: !IS_ROOT,
  async fn() {
    const r = await runAsNobody(
      `import { RootTemplate } from "${
        new URL("../../sandbox/mod.ts", import.meta.url).href
      }";
try { await RootTemplate.create(); console.log("made"); }
catch (e) { console.log(e.constructor.name, e.message); }`,
      { code: true },
    );
    assertEquals(r.code, 0, r.stderr);
    assertMatch(
      r.stdout,
      /^TypeError Cannot create a RootTemplate: it needs root/,
    );
  },
});
