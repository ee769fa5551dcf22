import {
  kill as killPid,
  type SignalName,
  signalNumber,
  SyscallError,
} from "denobox/libc";
import type { Driver } from "./_driver.ts";
import { sleep } from "./_fs.ts";
import { driverOf } from "./_private.ts";
import { waitFreeze } from "./freeze.ts";
import type { Cgroup } from "./cgroup.ts";

/** Waits until `d` has no process, up to `ms`; returns whether it is empty. */
export async function waitEmpty(d: Driver, ms: number): Promise<boolean> {
  const end = performance.now() + ms;
  for (let delay = 1; d.populated(); delay = Math.min(delay * 2, 20)) {
    if (performance.now() >= end) return false;
    await sleep(delay);
  }
  return true;
}

function signalEach(pids: readonly number[], signo: number): void {
  for (const pid of pids) {
    try {
      killPid(pid, signo);
    } catch (e) {
      if (!(e instanceof SyscallError && e.code === "ESRCH")) throw e;
    }
  }
}

/**
 * Signals every process of the group, frozen while it is listed and signalled so that no
 * member can fork a child that escapes the list, and thawed after; with SIGKILL it repeats
 * until the group is empty.
 */
export async function killGroup(
  d: Driver,
  signo: number,
  timeoutMs: number,
): Promise<void> {
  const end = performance.now() + timeoutMs;
  const canFreeze = d.version === 2 || d.controllers().includes("freezer");
  while (d.populated()) {
    // cgroup.kill (v2, 5.14+) kills the whole subtree atomically; frozen or not.
    if (signo === 9 && d.killAll()) {
      if (await waitEmpty(d, Math.max(0, end - performance.now()))) return;
    } else {
      if (canFreeze) {
        d.requestFreeze(true);
        await waitFreeze(d, true, 1000);
      }
      try {
        signalEach(d.procs(), signo);
      } finally {
        if (canFreeze) d.requestFreeze(false);
      }
      if (signo !== 9) break;
      if (await waitEmpty(d, 200)) return;
    }
    if (performance.now() >= end) break;
  }
  if (!(await waitEmpty(d, Math.max(0, end - performance.now())))) {
    throw new Error(
      `Cannot empty cgroup ${
        d.paths[0]
      }: ${d.procs().length} process(es) still there after ${timeoutMs} ms`,
    );
  }
}

/**
 * Sends `signal` (default SIGKILL) to every process of the group and its sub-groups and waits
 * until the group is empty. SIGKILL uses cgroup.kill on v2 and otherwise loops (freeze, signal
 * every member, thaw) until no process is left; other signals are sent once and the group
 * gets `timeout` ms (default 10 s) to exit. The group is left thawed.
 *
 * @throws {Error} when processes remain after `timeout`.
 * @example Stop everything in a group
 * ```ts ignore
 * import { Cgroup, kill } from "denobox/cgroup";
 * const cg = Cgroup.open("box-1");
 * await kill(cg);
 * ```
 */
export async function kill(
  cg: Cgroup,
  signal: SignalName = "SIGKILL",
  options: { timeout?: number } = {},
): Promise<void> {
  const driver = driverOf(cg);
  const signo = signalNumber(signal);
  const timeout = options.timeout ?? 10_000;
  if (!(timeout >= 0)) throw new RangeError(`Invalid timeout: ${timeout}`);
  await killGroup(driver, signo, timeout);
}
