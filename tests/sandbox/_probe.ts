/**
 * The isolation probe shared by the root tests and the rootless ones (run as nobody through
 * runAsNobody): spawns sandboxes on the busybox rootfs and reports what they see as JSON.
 */
import { SandboxSetupError, spawn } from "../../sandbox/mod.ts";

const dec = new TextDecoder();

async function run(
  rootfs: string,
  script: string,
  extra: Record<string, unknown> = {},
) {
  await using box = await spawn({
    argv: ["/bin/sh", "-c", script],
    rootfs,
    env: { A: "1", PATH: "/bin" },
    stdout: "pipe",
    stderr: "pipe",
    ...extra,
  });
  const out = await box.output();
  return {
    code: out.status.code,
    out: dec.decode(out.stdout),
    err: dec.decode(out.stderr),
    pid: box.pid,
  };
}

async function errorOf(p: Promise<unknown>) {
  try {
    const b = await p as AsyncDisposable;
    await b[Symbol.asyncDispose]();
    return null;
  } catch (e) {
    if (e instanceof SandboxSetupError) {
      return { code: e.code, step: e.step, message: e.message };
    }
    return { code: "other", step: "", message: String(e) };
  }
}

/** Runs every probe; the result is plain JSON. */
export async function probe(rootfs: string): Promise<Record<string, unknown>> {
  const id = await run(
    rootfs,
    `echo "$$"; hostname; ls /; ip -o link | cut -d: -f2 | tr -d " "; readlink /proc/self/ns/ipc; cat /proc/self/uid_map; ls /proc/$$/fd; xargs -0 -n1 echo < /proc/$$/environ`,
    { hostname: "probe-host" },
  );
  const lines = id.out.split("\n");
  const ro = await run(rootfs, "touch /probe-file 2>/dev/null; echo $?", {
    readOnly: true,
  });
  const rw = await run(
    rootfs,
    "touch /tmp/probe-file && rm /tmp/probe-file; echo $?",
  );
  const zombies = await run(
    rootfs,
    "(sleep 0.1 &); sleep 0.4; ps -o stat | grep -c '^Z' ; true",
  );
  const pid1 = await run(rootfs, "echo $$", { init: false });
  return {
    pid: lines[0],
    hostname: lines[1],
    root: id.out.split("\n").slice(2).filter((l) =>
      /^[a-z]+$/.test(l) &&
      ["bin", "dev", "etc", "mnt", "proc", "root", "sys", "tmp"].includes(l)
    ),
    rootRaw: id.out,
    links: lines.filter((l) =>
      /^(lo|eth\d+|ens\d+|enp\w+|docker\d|veth\w+|br\w*|wl\w+)$/.test(l)
    ),
    ipc: lines.find((l) => l.startsWith("ipc:")),
    hostIpc: await Deno.readLink("/proc/self/ns/ipc"),
    uidMap: lines.find((l) => /^\s*0\s+\d+\s+\d+$/.test(l))?.trim().split(/\s+/)
      .map(Number),
    callerUid: Deno.uid(),
    fds: lines.filter((l) => /^\d+$/.test(l)).slice(1).map(Number),
    env: lines.filter((l) => /^[A-Z_]+=/.test(l)),
    readOnlyWrite: ro.out.trim(),
    tmpWrite: rw.out.trim(),
    zombies: zombies.out.trim(),
    pidWithoutInit: pid1.out.trim(),
    missingRootfs: await errorOf(
      spawn({ argv: ["/bin/true"], rootfs: rootfs + "-missing" }),
    ),
    missingCommand: await errorOf(
      spawn({ argv: ["/bin/no-such-command"], rootfs }),
    ),
    missingInPath: await errorOf(
      spawn({ argv: ["no-such-command"], rootfs, env: { PATH: "/bin:/sbin" } }),
    ),
    noPrivileges: Deno.uid() === 0 ? null : await errorOf(
      spawn({ argv: ["/bin/true"], rootfs, namespaces: { user: false } }),
    ),
  };
}

if (import.meta.main) {
  console.log(JSON.stringify(await probe(Deno.args[0]!)));
}
