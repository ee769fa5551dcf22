/**
 * The `detached` mount of spawn(): a filesystem never mounted anywhere (fsmount) attached
 * inside one sandbox by its fd, with a plain root and with a `RootTemplate`; its files stay
 * reachable through the fd after the sandbox's end; a second attach and a bad fd are refused.
 * The grader attaches its work directories this way (older kernels refuse a bind of a
 * detached mount: the cgroup v2 VM lane's 6.1 kernel runs the grader through
 * tests/grader/figures_test.ts).
 */
import { assert, assertEquals, assertRejects, IS_ROOT } from "../_helpers.ts";
import { fsmountNew, openat2, OpenFlag } from "../../libc/mod.ts";
import { RootTemplate, spawn, type SpawnOptions } from "../../sandbox/mod.ts";

const text = (b: Uint8Array) => new TextDecoder().decode(b);

async function run(
  o: SpawnOptions,
): Promise<{ code: number | null; out: string }> {
  await using box = await spawn({ stdout: "pipe", stderr: "pipe", ...o });
  const { stdout, stderr } = await box.output();
  const st = await box.status;
  return { code: st.code, out: text(stdout) + text(stderr) };
}

const sh = (script: string) => ["/bin/sh", "-c", script];

Deno.test({
  name:
    "[root] spawn: a detached mount (fsmount) is attached inside by its fd, once, and stays readable through it",
  ignore: !IS_ROOT,
  async fn() {
    using template = await RootTemplate.create({ mountPoints: ["/data"] });
    for (const rootfs of [undefined, template]) {
      using fs = fsmountNew("tmpfs", { config: { size: "1m", mode: "0755" } });
      const hostMounts = Deno.readTextFileSync("/proc/self/mountinfo");
      const r = await run({
        argv: sh(
          "echo inside > /data/f && cat /data/f && grep -c ' /data ' /proc/self/mountinfo",
        ),
        ...(rootfs ? { rootfs } : {}),
        mounts: [{ type: "detached", fd: fs.fd, target: "/data" }],
      });
      assertEquals([r.code, r.out], [0, "inside\n1\n"], r.out);
      // never on the host; after the end the file is still there through the fd
      assertEquals(Deno.readTextFileSync("/proc/self/mountinfo"), hostMounts);
      using f = openat2(fs.fd, "f", { flags: OpenFlag.O_RDONLY });
      assertEquals(
        Deno.readTextFileSync(`/proc/self/fd/${f.fd}`),
        "inside\n",
      );
      // attached once: a second sandbox cannot take the same mount
      const err = await assertRejects(
        () =>
          run({
            argv: ["/bin/true"],
            ...(rootfs ? { rootfs } : {}),
            mounts: [{ type: "detached", fd: fs.fd, target: "/data" }],
          }),
        Error,
        "move_mount",
      );
      assert(String(err).includes("/data"), String(err));
    }
    await assertRejects(
      () =>
        spawn({
          argv: ["/bin/true"],
          mounts: [{ type: "detached", fd: -1, target: "/data" }],
        }),
      TypeError,
      "Invalid detached mount fd",
    );
  },
});
