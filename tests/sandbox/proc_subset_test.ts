/**
 * spawn() judges which /proc entries to mask and make read-only from this process's /proc: a
 * partial one (mounted with subset=pid) would hide /proc/sys and leave it writable in the
 * sandbox's fresh procfs, so spawn() refuses there, with the reason.
 */
import { assertMatch, denoRunArgs, IS_ROOT } from "../_helpers.ts";

const [major = 0, minor = 0] = Deno.osRelease().split(".").map((x) =>
  parseInt(x, 10)
);
/** procfs took subset=pid in 5.8. */
const HAS_SUBSET = major > 5 || (major === 5 && minor >= 8);

Deno.test({
  name:
    "[root] [procfs subset=pid, kernel 5.8+] spawn() refuses to run under a partial /proc, with the reason",
  ignore: !IS_ROOT || !HAS_SUBSET,
  async fn() {
    const probe = new URL("./_subset_probe.ts", import.meta.url).pathname;
    const args = denoRunArgs(probe).map((a) => `'${a}'`).join(" ");
    const out = await new Deno.Command("unshare", {
      args: [
        "-m",
        "--propagation",
        "private",
        "sh",
        "-c",
        `mount -t proc -o subset=pid proc /proc && exec '${Deno.execPath()}' ${args}`,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout) +
      new TextDecoder().decode(out.stderr);
    // with the default filter too: its compiler learns the kernel from uname(2), not /proc
    for (const seccomp of ["default", "unconfined"]) {
      assertMatch(
        text,
        new RegExp(
          `^${seccomp}: refused: statx\\("/proc/sys"\\): ENOENT .*subset=pid`,
          "m",
        ),
      );
    }
  },
});
