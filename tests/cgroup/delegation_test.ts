/**
 * cgroup v2 delegation: the default parent below the caller's own cgroup, the caller's
 * processes moved into a leaf so controllers can be enabled, rootless use in a delegated
 * cgroup, and the error where there is no delegation. Needs cgroup v2 controllers and root
 * (to set up the delegated group), so it runs in the v2 VM lane (v2vm_test.ts).
 */
import { join } from "node:path";
import {
  assert,
  assertEquals,
  assertMatch,
  denoRunArgs,
  IS_ROOT,
  NOBODY,
  REPO,
} from "../_helpers.ts";
import { VERSION } from "./_helpers.ts";

const RUNS = VERSION === 2 && IS_ROOT;
const SKIP = VERSION !== 2
  ? " (skipped: this host binds the controllers to cgroup v1; runs in the v2 VM lane)"
  : !IS_ROOT
  ? " (skipped: needs root to set up the delegated group)"
  : "";
const CHILD = join(REPO, "tests", "cgroup", "_delegated_child.ts");

interface ChildResult {
  ok: boolean;
  ownBefore: string;
  ownAfter?: string;
  paths?: string[][];
  memoryMax?: string;
  childCgroup?: string;
  pidsPeak?: number | null;
  code?: string;
  message?: string;
}

/** A fresh group D below the v2 root; optionally delegated (chowned) to uid 65534. */
function makeGroup(
  delegate: boolean,
): { dir: string; cg: string; [Symbol.dispose](): void } {
  const cg = `/deleg-${crypto.randomUUID().slice(0, 8)}`;
  const dir = `/sys/fs/cgroup${cg}`;
  Deno.mkdirSync(dir);
  if (delegate) {
    // What systemd does for Delegate=yes: the directory and the files a manager writes.
    for (
      const f of [
        "",
        "/cgroup.procs",
        "/cgroup.subtree_control",
        "/cgroup.threads",
      ]
    ) {
      Deno.chownSync(dir + f, NOBODY.uid, NOBODY.gid);
    }
  }
  return {
    dir,
    cg,
    [Symbol.dispose]() {
      for (const d of [`${dir}/denobox`, `${dir}/leaf`, dir]) {
        try {
          Deno.removeSync(d);
        } catch { /* not made */ }
      }
    },
  };
}

/** Runs the child inside `dir` (joined by a shell as root), as root or as uid 65534. */
async function runChild(dir: string, asNobody: boolean): Promise<ChildResult> {
  const deno = [Deno.execPath(), ...denoRunArgs(CHILD)];
  const priv = asNobody
    ? [
      "setpriv",
      `--reuid=${NOBODY.uid}`,
      `--regid=${NOBODY.gid}`,
      "--clear-groups",
      "--inh-caps=-all",
    ]
    : [];
  const denoDir = asNobody
    ? "/tmp/denobox-nobody-deno"
    : Deno.env.get("DENO_DIR") ?? "";
  if (asNobody) {
    await Deno.mkdir(denoDir, { recursive: true });
    await Deno.chown(denoDir, NOBODY.uid, NOBODY.gid);
  }
  const out = await new Deno.Command("/bin/sh", {
    args: [
      "-c",
      `echo $$ > ${dir}/cgroup.procs && exec "$@"`,
      "sh",
      ...priv,
      ...deno,
    ],
    cwd: "/",
    env: {
      HOME: asNobody ? "/tmp" : Deno.env.get("HOME") ?? "/root",
      NO_COLOR: "1",
      PATH: "/usr/sbin:/usr/bin:/sbin:/bin",
      ...(denoDir ? { DENO_DIR: denoDir } : {}),
    },
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim();
  assert(
    out.success,
    `child failed: ${text}\n${new TextDecoder().decode(out.stderr)}`,
  );
  return JSON.parse(text) as ChildResult;
}

function checkDelegated(r: ChildResult, g: { dir: string; cg: string }): void {
  assert(r.ok, `create failed: ${r.message}`);
  assertEquals(r.ownBefore, `0::${g.cg}`);
  // The caller moved into the leaf; both groups went to <D>/denobox, not <D>/leaf/denobox.
  assertEquals(r.ownAfter, `0::${g.cg}/leaf`);
  for (const p of r.paths!) {
    assertMatch(p[0]!, new RegExp(`^${g.dir}/denobox/box-[0-9a-f]+$`));
  }
  assertEquals(r.paths!.length, 2);
  assertEquals(r.memoryMax, String(64 * 1024 * 1024));
  assertEquals(
    r.childCgroup,
    `0::${r.paths![0]![0]!.slice("/sys/fs/cgroup".length)}`,
  );
  const enabled = Deno.readTextFileSync(`${g.dir}/cgroup.subtree_control`)
    .trim().split(" ");
  for (const c of ["cpu", "memory", "pids", "io"]) {
    assert(enabled.includes(c), `${c} not enabled`);
  }
}

Deno.test({
  name:
    `[cgroup v2] default parent below the caller's cgroup: processes move to a leaf, controllers get enabled${SKIP}`,
  ignore: !RUNS,
  async fn() {
    using g = makeGroup(false);
    checkDelegated(await runChild(g.dir, false), g);
  },
});

Deno.test({
  name:
    `[cgroup v2] [rootless] uid 65534 creates and limits groups in a delegated cgroup${SKIP}`,
  ignore: !RUNS,
  async fn() {
    using g = makeGroup(true);
    checkDelegated(await runChild(g.dir, true), g);
  },
});

Deno.test({
  name:
    `[cgroup v2] [rootless] without delegation, create fails with a hint naming what to do${SKIP}`,
  ignore: !RUNS,
  async fn() {
    using g = makeGroup(false);
    const r = await runChild(g.dir, true);
    assertEquals(r.ok, false);
    assert(r.code === "EACCES" || r.code === "EPERM", `code ${r.code}`);
    assertMatch(r.message!, /Delegate=yes/);
    assertMatch(r.message!, new RegExp(g.cg));
  },
});
