/**
 * A container by hand from denobox's typed steps: the syscall program its first process runs
 * (no JS in the child), then `launch()`. Works as root or as an unprivileged user.
 * Run: `tools/deno run -A examples/minimal_container.ts /path/to/rootfs [command...]`
 * (a busybox rootfs: `.cache/rootfs/busybox` after `deno task test`).
 */
import { launch, Program } from "denobox/sandbox";
import { MountFlag } from "denobox/libc";

const [rootfs = `${Deno.cwd()}/.cache/rootfs/busybox`, ...cmd] = Deno.args;
const argv = cmd.length
  ? cmd
  : ["/bin/sh", "-c", "echo pid $$ on $(hostname) as uid $(id -u); ls /"];
const { MS_BIND, MS_REC, MS_PRIVATE, MS_NOSUID, MS_NODEV, MS_NOEXEC } =
  MountFlag;

const p = new Program();
// id maps: uid/gid 0 inside is us outside
p.writeFile("/proc/self/setgroups", "deny");
p.writeFile("/proc/self/uid_map", `0 ${Deno.uid()} 1`);
p.writeFile("/proc/self/gid_map", `0 ${Deno.gid()} 1`);
// a private mount tree, the rootfs bound on itself with a fresh /proc, then pivot_root
p.mount(null, "/", { flags: MS_REC | MS_PRIVATE });
p.mount(rootfs, rootfs, { flags: MS_BIND | MS_REC });
p.mount("proc", `${rootfs}/proc`, {
  type: "proc",
  flags: MS_NOSUID | MS_NODEV | MS_NOEXEC,
});
p.chdir(rootfs);
p.pivotRoot(".", ".");
p.umount(".", { detach: true });
p.chdir("/");
p.sethostname("tiny");
p.resetSignals();
p.setSignalMask(0n);
p.execve(argv[0]!, argv, { PATH: "/bin" });

await using box = await launch(p, {
  namespaces: ["user", "mnt", "pid", "uts", "ipc", "net"],
});
const status = await box.status;
console.log(`exit code ${status.code}`);
