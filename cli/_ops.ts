/**
 * Operations on a container that another process owns: signal it (only if the PID is still
 * the container's), wait for its owner to finish, open its cgroup, release what a crashed
 * owner left behind.
 * @module
 */
import { pidfdOpen, pidfdSendSignal } from "denobox/libc";
import type { ContainerInfo, Store } from "./_store.ts";
import { CliError } from "./_errors.ts";
import { signalNo } from "./_format.ts";
import { removeRuntimeDir } from "./_rootfs.ts";

/** The cgroup name a container's owner creates. */
export function cgroupName(id: string): string {
  return `ctr-${id.slice(0, 32)}`;
}

/** Whether `pid` is a member of container `id`'s cgroup (so a recycled PID is never signalled). */
export function pidBelongs(pid: number, id: string): boolean {
  try {
    return Deno.readTextFileSync(`/proc/${pid}/cgroup`).includes(
      cgroupName(id),
    );
  } catch {
    return false;
  }
}

/** A signal name or number as Docker takes them (`TERM`, `SIGTERM`, `15`) → its number. */
export function parseSignal(sig: string): number {
  const n = signalNo(sig);
  if (!Number.isInteger(n) || n < 1 || n > 64) {
    throw new CliError(
      `Invalid signal: ${sig} (use a name such as TERM or KILL, or a number)`,
    );
  }
  return n;
}

/** Sends `signal` to the container's first process; false when it is not running. */
export function signalContainer(c: ContainerInfo, signal: number): boolean {
  const pid = c.state.pid;
  if (c.status !== "running" && c.status !== "paused") return false;
  if (!pid) return false;
  let fd;
  try {
    fd = pidfdOpen(pid);
  } catch {
    return false;
  }
  try {
    // checked after pidfd_open: the fd pins this very process, the check proves it is ours
    if (!pidBelongs(pid, c.config.id)) return false;
    pidfdSendSignal(fd.fd, signal);
    return true;
  } catch {
    return false;
  } finally {
    fd.close();
  }
}

/** Kills every process of the container's cgroup (SIGKILL), thawing it if frozen. */
export async function killAll(c: ContainerInfo): Promise<void> {
  if (!c.state.cgroup) return;
  const cg = await openCgroup(c);
  if (!cg) return;
  const mod = await import("denobox/cgroup");
  await mod.kill(cg, "SIGKILL");
  await mod.thaw(cg).catch(() => {});
}

/** The container's cgroup, or null when it no longer exists. */
export async function openCgroup(
  c: ContainerInfo,
): Promise<import("denobox/cgroup").Cgroup | null> {
  const { Cgroup } = await import("denobox/cgroup");
  try {
    return Cgroup.open(cgroupName(c.config.id));
  } catch {
    return null;
  }
}

/** Waits until the container's owner has finished (exit recorded, resources released). */
export async function waitOwnerExit(
  store: Store,
  id: string,
  timeoutMs = Infinity,
): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  let delay = 5;
  for (;;) {
    if (!store.ownerAlive(id)) return true;
    if (Date.now() >= end) return false;
    await new Promise((r) =>
      setTimeout(r, Math.min(delay, Math.max(1, end - Date.now())))
    );
    delay = Math.min(delay * 2, 50);
  }
}

/**
 * Releases what a dead owner may have left: the cgroup (processes killed), the overlay mount
 * and runtime directory. Safe to call on a clean container. The caller holds the monitor lock
 * (no owner runs).
 */
export async function releaseLeftovers(
  store: Store,
  c: ContainerInfo,
): Promise<void> {
  if (c.state.cgroup) {
    const cg = await openCgroup(c);
    if (cg) await cg.destroy();
    store.updateState(c.config.id, { cgroup: null });
  }
  removeRuntimeDir(store.paths, c.config.id);
  if (c.state.rootfsMount) {
    store.updateState(c.config.id, { rootfsMount: null });
  }
}
