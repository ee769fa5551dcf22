import {
  CloneFlag,
  ids,
  NAMESPACE_FLAGS,
  type NamespaceName,
  type OwnedFd,
  pidfdOpen,
  Prctl,
  signalNumber,
} from "denobox/libc";
import { Program, recycleProgram } from "./program.ts";
import { appendInitTail } from "./_init.ts";
import { launch } from "./launch.ts";
import type { Sandbox } from "./sandbox.ts";
import { resolveHardening } from "./_defaults.ts";
import {
  ALL_NS,
  cgroupDirs,
  type CommandOptions,
  commandSteps,
  extraFdsOf,
  lifelinePipe,
  SPAWNED,
  type SpawnOptions,
  stdioSteps,
} from "./spawn.ts";

/** Options of `exec()`: the command and its process, as for `spawn()`. */
export interface ExecOptions extends CommandOptions {
  /** Cgroup directories to join (default: those the sandbox was spawned into). */
  cgroup?: SpawnOptions["cgroup"];
}

// not "time": setns into a time namespace needs a process that shares its memory with no one
// (EUSERS), and our child starts in the parent's address space; spawn() never sets time
// offsets, so the clocks read the same.
const NS_ORDER: readonly NamespaceName[] = ALL_NS.filter((n) => n !== "time");

/**
 * Runs another command inside a running sandbox: setns() into all of its namespaces through
 * its pidfd (same root, same hostname, same network), with the same user, capabilities,
 * no_new_privs and seccomp filter as the sandbox's command unless given (for a bare
 * `{ pid }`: the defaults, as for `spawn()`). The new process is
 * the child of a small waiter that forwards signals and reports its status, so `status`,
 * `kill` and stdio behave as for `spawn()`.
 *
 * @example Run `ps` next to a sleeping command
 * ```ts ignore
 * import { exec, spawn } from "denobox/sandbox";
 * await using box = await spawn({ argv: ["/bin/sleep", "60"] });
 * await using ps = await exec(box, { argv: ["/bin/ps"], stdout: "pipe" });
 * console.log(new TextDecoder().decode((await ps.output()).stdout));
 * ```
 */
export async function exec(
  target: Sandbox | { pid: number },
  options: ExecOptions,
): Promise<Sandbox> {
  const pid = target.pid;
  if (!Number.isInteger(pid) || pid <= 0) {
    throw new RangeError(`Invalid pid: ${pid}`);
  }
  const known = "status" in target ? SPAWNED.get(target as Sandbox) : undefined;
  // a sandbox spawn() made: its user, capabilities, filter; anything else: the defaults
  const o: ExecOptions = {
    ...(known?.user ? { user: known.user } : {}),
    ...(known ? { capabilities: known.capabilities } : {}),
    ...(known ? { seccomp: known.seccomp } : {}),
    noNewPrivs: known?.noNewPrivs ?? true,
    ...options,
  };
  const hardening = await resolveHardening(o);
  let own: OwnedFd | null = null;
  const pidfd = "pidfd" in target && typeof target.pidfd === "number"
    ? target.pidfd
    : (own = pidfdOpen(pid)).fd;
  const cleanup = new AsyncDisposableStack();
  if (own) cleanup.defer(() => own!.close());
  // only the namespaces it does not share with us (re-entering our own user ns is EINVAL)
  const flags = differingNamespaces(pid);
  const p = new Program();
  const childFds: OwnedFd[] = [];
  const parentEnds = {};
  try {
    for (
      const dir of o.cgroup !== undefined
        ? cgroupDirs(o.cgroup)
        : known?.cgroups ?? []
    ) {
      p.writeFile(`${dir}/cgroup.procs`, "0", {
        label: `write(${JSON.stringify(dir + "/cgroup.procs")})`,
      });
    }
    if (o.newSession ?? true) p.setsid();
    const pdeath = o.parentDeathSignal ?? "SIGKILL";
    if (pdeath !== false) {
      p.prctl(Prctl.PR_SET_PDEATHSIG, signalNumber(pdeath), 0, 0, 0, {
        label: "prctl(PR_SET_PDEATHSIG)",
      });
      p.close(lifelinePipe().write.fd, { mayFail: true });
    }
    if (flags) p.setns(pidfd, flags, { label: `setns(pid ${pid})` });
    const ptySlave = stdioSteps(p, o, { parentEnds, childFds });
    const extra = extraFdsOf(o);
    const copies = appendInitTail(p, [
      ...extra,
      ...(ptySlave === null ? [] : [ptySlave]),
    ]);
    if (pdeath !== false) {
      p.prctl(Prctl.PR_SET_PDEATHSIG, signalNumber(pdeath), 0, 0, 0, {
        label: "prctl(PR_SET_PDEATHSIG)",
      });
    }
    const root = ids().euid === 0;
    commandSteps(p, o, {
      root: root && !(flags & CloneFlag.CLONE_NEWUSER),
      hardening,
      inUserNs: (flags & CloneFlag.CLONE_NEWUSER) !== 0,
      useInit: true,
      parentEnds,
      childFds,
      ptySlave: ptySlave === null ? null : copies[extra.length]!,
      extraFds: copies.slice(0, extra.length),
    });
  } catch (e) {
    recycleProgram(p); // never ran
    for (const f of childFds) f.close();
    for (const f of Object.values(parentEnds) as (OwnedFd | null)[]) f?.close();
    await cleanup.disposeAsync();
    throw e;
  }
  const ends = parentEnds as {
    stdin?: OwnedFd;
    stdout?: OwnedFd;
    stderr?: OwnedFd;
    pty?: OwnedFd;
  };
  return await launch(p, { init: true }, {
    childFds,
    stdin: ends.stdin ?? null,
    stdout: ends.stdout ?? null,
    stderr: ends.stderr ?? null,
    pty: ends.pty ?? null,
    cleanup,
  });
}

/** The CLONE_NEW* bits of the namespaces `pid` does not share with us. */
function differingNamespaces(pid: number): number {
  let flags = 0;
  for (const n of NS_ORDER) {
    try {
      if (
        Deno.readLinkSync(`/proc/${pid}/ns/${n}`) !==
          Deno.readLinkSync(`/proc/self/ns/${n}`)
      ) {
        flags |= NAMESPACE_FLAGS[n];
      }
    } catch { /* the kernel lacks this namespace */ }
  }
  return flags;
}
