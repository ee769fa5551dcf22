/**
 * The escape suite (issue 9): each attack runs in a sandbox with default settings and must
 * fail with the errno the table gives, as root and as uid 65534; each negative control switches
 * off the protection that stopped it and must succeed, so every test can fail. The attacks
 * only target what the lab made (tests/security/_attacks.ts).
 */
import { join } from "node:path";
import { assert, IS_ROOT, openFds, runAsNobody } from "../_helpers.ts";
import { spawn } from "../../sandbox/mod.ts";
import { ATTACKS, Lab, runAttack, verdict } from "./_attacks.ts";
import type { AttackReport } from "./_runner.ts";

const CGROUP_ROOT = "/sys/fs/cgroup/pids";

/** A scratch pids cgroup pair under the hierarchy's `denobox` group (cgroup v1 here). */
async function scratchCgroup(owner?: { uid: number; gid: number }) {
  const parent = join(
    CGROUP_ROOT,
    "denobox",
    `escape-${crypto.randomUUID().slice(0, 8)}`,
  );
  const box = join(parent, "box");
  await Deno.mkdir(box, { recursive: true });
  if (owner) {
    for (const d of [parent, box]) {
      for (const f of ["", "cgroup.procs", "tasks"]) {
        await Deno.chown(join(d, f), owner.uid, owner.gid);
      }
    }
  }
  return {
    parent,
    box,
    async [Symbol.asyncDispose]() {
      for (const d of [box, parent]) {
        for (let i = 0; i < 100; i++) {
          try {
            await Deno.remove(d);
            break;
          } catch {
            await new Promise((r) => setTimeout(r, 20)); // members still exiting
          }
        }
      }
    },
  };
}

function hasV1Pids(): boolean {
  try {
    return Deno.statSync(join(CGROUP_ROOT, "cgroup.procs")).isFile;
  } catch {
    return false;
  }
}

/** spawn keeps a few fds for its whole life (reaper, lifeline, /dev/null): open them first. */
let warm: Promise<void> | null = null;
function warmUp(): Promise<void> {
  warm ??= (async () => {
    await using box = await spawn({
      argv: ["/bin/true"],
      stdout: "null",
      stderr: "null",
    });
    await box.status;
  })();
  return warm;
}

let rootlessRun: Promise<Record<string, AttackReport>> | null = null;
function rootless(): Promise<Record<string, AttackReport>> {
  rootlessRun ??= (async () => {
    await using cg = hasV1Pids()
      ? await scratchCgroup({ uid: 65534, gid: 65534 })
      : null;
    const arg = JSON.stringify(
      cg ? { cgroup: { parent: cg.parent, box: cg.box } } : {},
    );
    const r = await runAsNobody(new URL("./_runner.ts", import.meta.url), {
      args: [arg],
    });
    if (r.code !== 0) {
      throw new Error(`rootless escape suite failed: ${r.stderr}`);
    }
    return JSON.parse(r.stdout.trim().split("\n").pop()!);
  })();
  return rootlessRun;
}

for (const attack of ATTACKS) {
  const cgroupNeeded = attack.name.includes("cgroup");
  Deno.test({
    name: `escape: ${attack.name} [root]`,
    ignore: !IS_ROOT || (cgroupNeeded && !hasV1Pids()),
    async fn() {
      await warmUp();
      const fds = openFds();
      await using cg = cgroupNeeded ? await scratchCgroup() : null;
      {
        await using lab = await Lab.create(
          cg ? { cgroup: { parent: cg.parent, box: cg.box } } : {},
        );
        const expect = typeof attack.expect === "function"
          ? attack.expect(lab)
          : attack.expect;
        const failed = verdict(await runAttack(lab, attack, false), expect);
        assert(failed === null, `attack: ${failed}`);
        const c = attack.control;
        const cexpect = typeof c.expect === "function"
          ? c.expect(lab)
          : c.expect;
        const cfailed = verdict(await runAttack(lab, attack, true), cexpect);
        assert(cfailed === null, `control (${c.off} off): ${cfailed}`);
      }
      const after = openFds();
      assert(
        after.length <= fds.length,
        `leaked fds: ${after.filter((f) => !fds.includes(f))}`,
      );
    },
  });
  // Attacks with `rootOnly` have no rootless form (the reason is in the table).
  if (attack.rootOnly) continue;
  Deno.test({
    name: `escape: ${attack.name}, as uid 65534`,
    ignore: !IS_ROOT || (cgroupNeeded && !hasV1Pids()),
    async fn() {
      const report = (await rootless())[attack.name];
      assert(report, "the rootless run did not report this attack");
      assert(report.attack === null, `attack: ${report.attack}`);
      if (attack.controlNeedsRoot) {
        assert(
          report.control?.startsWith("skipped"),
          `control: ${report.control}`,
        );
      } else {
        assert(
          report.control === null,
          `control (${attack.control.off} off): ${report.control}`,
        );
      }
    },
  });
}
