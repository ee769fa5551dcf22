import {
  assert,
  assertEquals,
  denoRunArgs,
  ensureRootfs,
  IS_ROOT,
  NOBODY,
  openFds,
  REPO,
} from "../_helpers.ts";
import { spawn } from "../../sandbox/mod.ts";

function rssKiB(): number {
  const m = Deno.readTextFileSync("/proc/self/status").match(
    /^VmRSS:\s+(\d+)/m,
  );
  return Number(m![1]);
}

Deno.test("spawn [root]: 1,000 sandboxes leave fd count and RSS flat", {
  ignore: !IS_ROOT,
}, async () => {
  const rootfs = await ensureRootfs();
  const opts = {
    argv: ["/bin/true"],
    rootfs,
    namespaces: { cgroup: false, time: false },
  };
  for (let i = 0; i < 100; i++) {
    assert((await (await spawn(opts)).status).success);
  }
  const fds = openFds();
  const rss = rssKiB();
  for (let i = 0; i < 1000; i++) {
    await using box = await spawn(opts);
    assert((await box.status).success);
  }
  assertEquals(openFds(), fds);
  const grown = rssKiB() - rss;
  assert(grown < 16 * 1024, `RSS grew by ${grown} KiB over 1,000 sandboxes`);
});

Deno.test(
  "spawn [root]: 200 concurrent sandboxes are waited on without blocking",
  { ignore: !IS_ROOT },
  async () => {
    const rootfs = await ensureRootfs();
    const boxes = await Promise.all(
      Array.from({ length: 200 }, () =>
        spawn({
          argv: ["/bin/sleep", "0.2"],
          rootfs,
          namespaces: { net: false },
        })),
    );
    let ticks = 0;
    const t = setInterval(() => ticks++, 5);
    const st = await Promise.all(boxes.map((b) => b.status));
    clearInterval(t);
    assert(st.every((s) => s.success));
    assert(
      ticks > 0,
      "the event loop kept running while 200 sandboxes were awaited",
    );
  },
);

const PARENT = `
import { spawn } from "${REPO}/sandbox/mod.ts";
const box = await spawn({ argv: ["/bin/sleep", "1000"], rootfs: Deno.args[0] });
console.log(box.pid);
await box.status;
`;

/** The child of `ppid` whose /proc cmdline is `cmdline`. */
function childWithCmdline(ppid: number, cmdline: string): number | undefined {
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      if (
        Deno.readTextFileSync(`/proc/${e.name}/cmdline`) === cmdline &&
        Deno.readTextFileSync(`/proc/${e.name}/status`).includes(
          `PPid:\t${ppid}\n`,
        )
      ) return Number(e.name);
    } catch { /* exited meanwhile */ }
  }
  return undefined;
}

/** Those of `pids` that still exist and are not zombies. */
function notExited(pids: number[]): number[] {
  return pids.filter((p) => {
    try {
      return !Deno.readTextFileSync(`/proc/${p}/status`).includes("State:\tZ");
    } catch {
      return false;
    }
  });
}

async function killParentLeavesNothing(asNobody: boolean): Promise<void> {
  const rootfs = await ensureRootfs();
  const dir = await Deno.makeTempDir({
    dir: `${REPO}/tests`,
    prefix: ".parent-",
  });
  await Deno.chmod(dir, 0o755);
  const file = `${dir}/parent.ts`;
  await Deno.writeTextFile(file, PARENT);
  await Deno.chmod(file, 0o644);
  try {
    const args = [...denoRunArgs(file), rootfs];
    const cmd = asNobody
      ? new Deno.Command("setpriv", {
        args: [
          `--reuid=${NOBODY.uid}`,
          `--regid=${NOBODY.gid}`,
          "--clear-groups",
          Deno.execPath(),
          ...args,
        ],
        env: { DENO_DIR: "/tmp/denobox-nobody-deno", HOME: "/tmp" },
        stdout: "piped",
      })
      : new Deno.Command(Deno.execPath(), { args, stdout: "piped" });
    const child = cmd.spawn();
    const reader = child.stdout.getReader();
    let text = "";
    while (!text.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    const pid = Number(text.trim());
    assert(pid > 0, `sandbox pid: ${text}`);
    assert(
      await Deno.stat(`/proc/${pid}`).then(() => true, () => false),
      "sandbox running",
    );
    const sleeper = childWithCmdline(pid, "/bin/sleep\u00001000\u0000");
    assert(sleeper, "the command runs under the sandbox's init");
    child.kill("SIGKILL");
    await child.status;
    reader.releaseLock();
    await child.stdout.cancel();
    // the kernel delivers the parent-death signal as the parent exits; wait for the reaping
    for (let i = 0; i < 200; i++) {
      const alive = notExited([pid, sleeper]);
      if (alive.length === 0) return;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error(
      `sandbox processes ${pid}, ${sleeper} outlived their parent`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test(
  "spawn [root]: killing the parent with SIGKILL leaves no sandbox process",
  { ignore: !IS_ROOT },
  () => killParentLeavesNothing(false),
);

Deno.test(
  "spawn [userns]: killing a rootless parent with SIGKILL leaves no sandbox process",
  { ignore: !IS_ROOT },
  () => killParentLeavesNothing(true),
);
