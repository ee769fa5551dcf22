/**
 * A sandbox that joins the user namespace of another one (by pidfd) and gets new pid and mount
 * namespaces: what its command sees, as JSON. Shared by the root test and the rootless one
 * (run as nobody through runAsNobody).
 */
import { exec, spawn } from "../../sandbox/mod.ts";

const dec = new TextDecoder();

const SCRIPT = [
  "echo pid=$$",
  // a shell glob: no extra process shows up in /proc
  "for d in /proc/[0-9]*; do echo proc=${d#/proc/}; done",
  "echo user=$(readlink /proc/self/ns/user)",
  "echo pidns=$(readlink /proc/self/ns/pid)",
  "echo end",
  "exec sleep 1000",
].join("; ");

/** Runs the probe on `rootfs`; plain JSON out. */
export async function joinUserProbe(
  rootfs: string,
): Promise<Record<string, unknown>> {
  await using holder = await spawn({
    argv: ["/bin/sleep", "1000"],
    rootfs,
    namespaces: { user: true },
  });
  await using box = await spawn({
    argv: ["/bin/sh", "-c", SCRIPT],
    rootfs,
    env: { PATH: "/bin" },
    namespaces: { user: { pidfd: holder.pidfd }, pid: true, mnt: true },
    stdout: "pipe",
  });
  let text = "";
  for (let c; !text.includes("end\n") && (c = await box.read("stdout"));) {
    text += dec.decode(c);
  }
  const lines = text.trim().split("\n");
  const of = (k: string) =>
    lines.filter((l) => l.startsWith(k + "=")).map((l) =>
      l.slice(k.length + 1)
    );
  // exec through the handle's pidfd lands in the same (new) pid namespace
  await using ex = await exec(box, {
    argv: ["/bin/sh", "-c", "readlink /proc/self/ns/pid"],
    stdout: "pipe",
  });
  const execOut = await ex.output();
  box.kill("SIGTERM");
  const status = await box.status;
  return {
    lines,
    pid: of("pid"),
    proc: of("proc"),
    user: of("user"),
    pidns: of("pidns"),
    holderUser: await Deno.readLink(`/proc/${holder.pid}/ns/user`),
    holderPidns: await Deno.readLink(`/proc/${holder.pid}/ns/pid`),
    ourPidns: await Deno.readLink("/proc/self/ns/pid"),
    execPidns: dec.decode(execOut.stdout).trim(),
    execCode: execOut.status.code,
    signal: status.signal,
  };
}

if (import.meta.main) {
  console.log(JSON.stringify(await joinUserProbe(Deno.args[0]!)));
}
