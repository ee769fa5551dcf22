/**
 * `stop`, `kill`, `wait`, `pause`, `unpause`.
 * @module
 */
import type { Context } from "./_commands.ts";
import { type ContainerInfo, Store } from "./_store.ts";
import { CliError } from "./_errors.ts";
import { exitStatusOf } from "./_format.ts";
import {
  killAll,
  noCgroupError,
  openCgroup,
  parseSignal,
  signalContainer,
  waitOwnerExit,
} from "./_ops.ts";

/** Runs `fn` for each argument; prints errors, returns 1 if any failed (Docker's behaviour). */
async function each(
  ctx: Context,
  fn: (c: ContainerInfo, store: Store, ref: string) => Promise<void>,
): Promise<number> {
  const store = new Store(ctx.paths);
  let failed = false;
  for (const ref of ctx.args) {
    try {
      await fn(store.resolve(ref), store, ref);
    } catch (e) {
      failed = true;
      console.error(`Error: ${e instanceof Error ? e.message : e}`);
    }
  }
  return failed ? 1 : 0;
}

const running = (c: ContainerInfo) =>
  c.status === "running" || c.status === "paused";

/** Stops one container: SIGTERM, then SIGKILL after `seconds`; returns once its owner finished. */
export async function stopContainer(
  store: Store,
  c: ContainerInfo,
  seconds: number,
): Promise<void> {
  if (!running(c)) return;
  signalContainer(c, 15);
  if (c.status === "paused") {
    const cg = await openCgroup(c);
    if (cg) await (await import("denobox/cgroup")).thaw(cg).catch(() => {});
  }
  if (
    seconds < 0 || !(await waitOwnerExit(store, c.config.id, seconds * 1000))
  ) {
    if (seconds >= 0) {
      signalContainer(c, 9);
      await killAll(c);
    }
  }
  if (!(await waitOwnerExit(store, c.config.id, 30_000))) {
    throw new CliError(
      `Container ${c.config.name} did not stop: its monitor (pid ${c.state.monitorPid}) still runs; ` +
        "'denobox rm -f' it",
    );
  }
}

/** `denobox stop`. */
export function stopCommand(ctx: Context): Promise<number> {
  const t = ctx.options.str("time");
  let secs: number | undefined;
  if (t !== undefined) {
    secs = Number(t);
    if (!Number.isInteger(secs) || secs < -1) {
      throw new CliError(`Invalid --time ${t}: whole seconds`);
    }
  }
  return each(ctx, async (c, store, ref) => {
    await stopContainer(store, c, secs ?? c.config.stopTimeout);
    console.log(ref);
  });
}

/** `denobox kill`. */
export function killCommand(ctx: Context): Promise<number> {
  const sig = parseSignal(ctx.options.str("signal") ?? "KILL");
  return each(ctx, async (c, _store, ref) => {
    if (!running(c)) {
      throw new CliError(`Cannot kill container ${ref}: it is not running`);
    }
    if (!signalContainer(c, sig)) {
      throw new CliError(`Cannot kill container ${ref}: it is not running`);
    }
    if (sig === 9) await killAll(c);
    console.log(ref);
  });
}

/** `denobox wait`. */
export function waitCommand(ctx: Context): Promise<number> {
  return each(ctx, async (c, store) => {
    if (running(c)) await waitOwnerExit(store, c.config.id);
    const after = store.info(c.config.id);
    const code = after ? exitStatusOf(after.state) : exitStatusOf(c.state);
    console.log(code ?? -1);
  });
}

/** `denobox pause`. */
export function pauseCommand(ctx: Context): Promise<number> {
  return each(ctx, async (c, store, ref) => {
    if (c.status === "paused") {
      throw new CliError(`Container ${ref} is already paused`);
    }
    if (c.status !== "running") {
      throw new CliError(`Cannot pause container ${ref}: it is not running`);
    }
    if (c.config.cgroup === false) throw noCgroupError("pause", ref);
    const cg = await openCgroup(c);
    if (!cg) {
      throw new CliError(`Cannot pause container ${ref}: its cgroup is gone`);
    }
    await (await import("denobox/cgroup")).freeze(cg);
    await Deno.writeTextFile(store.pausedMarker(c.config.id), "");
    console.log(ref);
  });
}

/** `denobox unpause`. */
export function unpauseCommand(ctx: Context): Promise<number> {
  return each(ctx, async (c, store, ref) => {
    if (c.status !== "paused") {
      throw new CliError(`Container ${ref} is not paused`);
    }
    const cg = await openCgroup(c);
    if (cg) await (await import("denobox/cgroup")).thaw(cg);
    await Deno.remove(store.pausedMarker(c.config.id)).catch(
      () => {/* raced with the exit */},
    );
    console.log(ref);
  });
}
