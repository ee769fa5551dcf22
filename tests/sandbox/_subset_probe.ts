/**
 * Spawns a sandbox with a new pid and mount namespace (so its own /proc, masked and partly
 * read-only) and prints what happened: run by tests/sandbox/proc_subset_test.ts in a process
 * whose /proc is mounted with subset=pid.
 */
import { spawn } from "../../sandbox/mod.ts";

try {
  await using box = await spawn({ argv: ["/bin/true"], seccomp: "unconfined" });
  console.log(`spawned ${(await box.status).code}`);
} catch (e) {
  console.log(`refused: ${(e as Error).message.replaceAll("\n", " | ")}`);
}
