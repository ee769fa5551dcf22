/**
 * spawn({ cgroup }) from denobox/sandbox with a Cgroup: the child joins before its first
 * instruction, also inside a full sandbox with its own cgroup namespace; memory peaks come from
 * the group. (cgroup_test.ts runs all its payloads through spawn({ cgroup }) too.)
 */
import { Cgroup, processes, setMemoryLimit, stats } from "denobox/cgroup";
import { spawn } from "denobox/sandbox";
import { assert, assertEquals } from "../_helpers.ts";
import { ensureCgHelper, runInGroup, TAG, VERSION } from "./_helpers.ts";

const MiB = 1024 * 1024;

Deno.test(`${TAG} spawn({ cgroup }) in a full sandbox: the group is the root of its cgroup namespace`, async () => {
  await using cg = Cgroup.create();
  // Default namespaces (user when rootless, mnt with the read-only host view, pid with an
  // init, uts, ipc, net, cgroup, and time from 6.3 on): the cgroup namespace is made after
  // joining the group. In the v2 VM this runs on Debian 12's 6.1 kernel.
  await using box = await spawn({
    argv: ["/bin/sh", "-c", "cat /proc/self/cgroup; sleep 30"],
    cgroup: cg,
    stdout: "pipe",
  });
  const reader = box.stdout!.getReader();
  let text = "";
  const dec = new TextDecoder();
  while (!text.includes("0::")) {
    const { value, done } = await reader.read();
    if (done) break;
    text += dec.decode(value);
  }
  reader.releaseLock();
  const lines = text.trim().split("\n");
  if (VERSION === 2) {
    assertEquals(lines.filter((l) => l.startsWith("0::")), ["0::/"]);
  } else {
    for (const c of ["memory", "pids", "cpu", "freezer"]) {
      const line = lines.find((l) => l.split(":")[1]!.split(",").includes(c));
      assertEquals(line?.split(":")[2], "/", `${c}: ${text}`);
    }
  }
  // Seen from here: the init, the shell and its sleep are all in the group.
  assert(processes(cg).includes(box.pid), `${box.pid} not in ${processes(cg)}`);
  assert(processes(cg).length >= 2);
  await cg.destroy();
  assertEquals((await box.status).signal, "SIGKILL");
});

Deno.test(`${TAG} spawn({ cgroup }): the peak is what the payload touched, read from the group`, async () => {
  const helper = await ensureCgHelper();
  await using cg = Cgroup.create();
  setMemoryLimit(cg, "128m");
  const child = await runInGroup(cg, [helper, "alloc", "24"]);
  assertEquals(await child.stdout, "allocated 24\n");
  assertEquals((await child.status).code, 0);
  const s = stats(cg);
  // 24 MiB touched plus the program itself; nothing of the parent's memory.
  assert(
    s.memory.peak >= 24 * MiB && s.memory.peak < 40 * MiB,
    `peak ${s.memory.peak}`,
  );
  assertEquals(s.memory.oomKills, 0);
});
