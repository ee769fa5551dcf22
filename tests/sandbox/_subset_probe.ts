/**
 * Spawns sandboxes with a new pid and mount namespace (so their own /proc, masked and partly
 * read-only), with the default seccomp profile and without one, and prints what happened:
 * run by tests/sandbox/proc_subset_test.ts in a process whose /proc is mounted with
 * subset=pid.
 */
import { spawn } from "../../sandbox/mod.ts";

for (const seccomp of ["default", "unconfined"] as const) {
  try {
    await using box = await spawn({ argv: ["/bin/true"], seccomp });
    console.log(`${seccomp}: spawned ${(await box.status).code}`);
  } catch (e) {
    console.log(
      `${seccomp}: refused: ${(e as Error).message.replaceAll("\n", " | ")}`,
    );
  }
}
