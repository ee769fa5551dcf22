/**
 * The same container as examples/minimal_container.ts through `spawn()`, which adds the safe
 * defaults: every namespace, a minimal /dev, a reaping init as PID 1, cleared environment,
 * no_new_privs, stdio as Web streams.
 * Run: `tools/deno run -A examples/spawn.ts /path/to/rootfs [command...]`
 */
import { SandboxSetupError, spawn } from "denobox/sandbox";

const [rootfs = `${Deno.cwd()}/.cache/rootfs/busybox`, ...cmd] = Deno.args;
try {
  await using box = await spawn({
    argv: cmd.length ? cmd : [
      "/bin/sh",
      "-c",
      "echo pid $$ on $(hostname) as uid $(id -u); ls /; ls /dev",
    ],
    rootfs,
    readOnly: true,
    hostname: "tiny",
    env: { PATH: "/bin" },
    stdout: "pipe",
    rlimits: { nofile: 256 },
  });
  const { status, stdout } = await box.output();
  console.log(new TextDecoder().decode(stdout));
  console.log(
    `exit code ${status.code}, ${
      status.rusage.userTime + status.rusage.sysTime
    } µs of CPU`,
  );
} catch (e) {
  if (e instanceof SandboxSetupError) {
    console.error(`setup failed at ${e.step}: ${e.code}`);
  } else throw e;
}
