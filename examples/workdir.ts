/**
 * A private work directory that is never mounted on the host: a tmpfs made with the fd mount
 * API (`fsmountNew`), filled through its fd, attached inside one sandbox (`{ type: "detached" }`,
 * which works on every kernel with the new mount API), and read back through the same fd after
 * the sandbox is gone. This is how the grader gives each run its `/box`. Root only.
 * Run: `tools/deno run -A examples/workdir.ts`
 */
import {
  fsmountNew,
  MountAttr,
  openat2,
  OpenFlag,
  Resolve,
  writeAll,
} from "denobox/libc";
import { spawn } from "denobox/sandbox";

// never beneath a symlink or out of the tmpfs, whatever the sandbox left there
const BENEATH = Resolve.RESOLVE_BENEATH | Resolve.RESOLVE_NO_SYMLINKS;

using work = fsmountNew("tmpfs", {
  config: { size: "4m", mode: "0777" },
  attributes: MountAttr.MOUNT_ATTR_NOSUID | MountAttr.MOUNT_ATTR_NODEV,
});
{
  using input = openat2(work.fd, "input.txt", {
    flags: OpenFlag.O_WRONLY | OpenFlag.O_CREAT,
    mode: 0o644,
    resolve: BENEATH,
  });
  writeAll(input.fd, new TextEncoder().encode("3\n1\n2\n"));
}

{
  await using box = await spawn({
    argv: [
      "/bin/sh",
      "-c",
      "sort -n /box/input.txt > /box/output.txt; ls /box",
    ],
    mounts: [{ type: "detached", fd: work.fd, target: "/box" }],
    stdout: "pipe",
  });
  const { status, stdout } = await box.output();
  console.log(
    `inside (exit ${status.code}):`,
    new TextDecoder().decode(stdout).trim().split("\n"),
  );
}

// the sandbox and its mount namespace are gone; the tmpfs lives on through our fd
using output = openat2(work.fd, "output.txt", {
  flags: OpenFlag.O_RDONLY,
  resolve: BENEATH,
});
console.log(
  "read back:",
  JSON.stringify(Deno.readTextFileSync(`/proc/self/fd/${output.fd}`)),
);
