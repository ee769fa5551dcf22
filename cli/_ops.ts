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
import { processStartTime } from "./_proc.ts";

export { processStartTime };

/** The cgroup name a container's owner creates. */
export function cgroupName(id: string): string {
  return `ctr-${id.slice(0, 32)}`;
}

/**
 * Whether `pid` is still container `c`'s first process (so a recycled PID is never
 * signalled): the start time recorded when it started matches, or (for records without one)
 * it is a member of the container's cgroup.
 */
export function pidBelongs(pid: number, c: ContainerInfo): boolean {
  const recorded = c.state.pidStartTime;
  if (recorded !== undefined && recorded !== null) {
    return pid === c.state.pid && processStartTime(pid) === recorded;
  }
  try {
    return Deno.readTextFileSync(`/proc/${pid}/cgroup`).includes(
      cgroupName(c.config.id),
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
    if (!pidBelongs(pid, c)) return false;
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
  try {
    await mod.kill(cg, "SIGKILL");
  } catch (e) {
    // its owner removed the cgroup meanwhile (the container ended): nothing left to kill
    const code = (e as { code?: string }).code;
    if (code === "ENODEV" || code === "ENOENT") return;
    throw e;
  }
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

/**
 * The host PIDs of the container's processes: its cgroup's members, or (a container without
 * a cgroup) every process in the PID namespace of its first process.
 */
export async function containerPids(c: ContainerInfo): Promise<number[]> {
  const cg = c.config.cgroup === false ? null : await openCgroup(c);
  if (cg) return (await import("denobox/cgroup")).processes(cg);
  const pid = c.state.pid;
  if (!pid || !pidBelongs(pid, c)) return [];
  let ns: string;
  try {
    ns = await Deno.readLink(`/proc/${pid}/ns/pid`);
  } catch {
    return [];
  }
  const out: number[] = [];
  for await (const e of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      if ((await Deno.readLink(`/proc/${e.name}/ns/pid`)) === ns) {
        out.push(Number(e.name));
      }
    } catch { /* exited meanwhile */ }
  }
  return out;
}

/** The error for pause/unpause/stats on a container that runs without a cgroup. */
export function noCgroupError(what: string, ref: string): CliError {
  return new CliError(
    `Cannot ${what} container ${ref}: it runs without a cgroup (started with --rm in the ` +
      `foreground and no limits); run it with --cgroups enabled to ${what} it`,
  );
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
