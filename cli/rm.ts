/**
 * `rm`, `rename`, `system prune`.
 * @module
 */
import type { Context } from "./_commands.ts";
import { type ContainerInfo, Store } from "./_store.ts";
import { CliError } from "./_errors.ts";
import {
  killAll,
  releaseLeftovers,
  signalContainer,
  waitOwnerExit,
} from "./_ops.ts";
import { humanSize } from "./_format.ts";

/**
 * Removes one container: with `force`, kills it first; waits for its owner to finish, then
 * releases leftovers (cgroup, mounts) and deletes its directory and name.
 */
export async function removeContainer(
  store: Store,
  c: ContainerInfo,
  force: boolean,
): Promise<void> {
  const id = c.config.id;
  if (c.status === "running" || c.status === "paused") {
    if (!force) {
      throw new CliError(
        `Cannot remove container ${c.config.name}: it is ${c.status}; stop it first ('denobox stop ${c.config.name}') or use 'denobox rm -f'`,
      );
    }
    signalContainer(c, 9);
    await killAll(c);
  }
  if (!(await waitOwnerExit(store, id, 30_000))) {
    throw new CliError(
      `Cannot remove container ${c.config.name}: its monitor does not exit; try again`,
    );
  }
  using _lock = store.lock(id);
  const monitor = store.tryMonitorLock(id);
  if (!monitor) {
    throw new CliError(
      `Cannot remove container ${c.config.name}: it was started again meanwhile`,
    );
  }
  try {
    const now = store.info(id);
    if (!now) return;
    store.updateState(id, { status: "removing" });
    await releaseLeftovers(store, now);
    store.removeRecord(id);
  } finally {
    monitor.release();
  }
}

/** `denobox rm`. */
export async function rmCommand(ctx: Context): Promise<number> {
  const store = new Store(ctx.paths);
  const force = ctx.options.bool("force");
  let failed = false;
  for (const ref of ctx.args) {
    try {
      let c: ContainerInfo;
      try {
        c = store.resolve(ref);
      } catch (e) {
        if (
          force && e instanceof CliError &&
          e.message.startsWith("No such container")
        ) continue;
        throw e;
      }
      await removeContainer(store, c, force);
      console.log(ref);
    } catch (e) {
      failed = true;
      console.error(`Error: ${e instanceof Error ? e.message : e}`);
    }
  }
  return failed ? 1 : 0;
}

/** `denobox rename`. */
export function renameCommand(ctx: Context): Promise<number> {
  const store = new Store(ctx.paths);
  const [ref, name] = ctx.args as [string, string];
  const c = store.resolve(ref);
  if (c.config.name === name) {
    throw new CliError(
      `Cannot rename container ${ref}: it is already named ${name}`,
    );
  }
  using _lock = store.lock(c.config.id);
  try {
    store.rename(c.config.id, name);
  } catch (e) {
    if (e instanceof RangeError) throw new CliError(e.message);
    throw e;
  }
  return Promise.resolve(0);
}

async function confirm(question: string): Promise<boolean> {
  if (!Deno.stdin.isTerminal()) {
    throw new CliError(
      `${question}: not asked without a terminal; add -f to go ahead`,
    );
  }
  const answer = prompt(`${question} [y/N]`);
  return await Promise.resolve(
    answer !== null && /^y(es)?$/i.test(answer.trim()),
  );
}

/** `denobox system prune`. */
export async function systemCommand(ctx: Context): Promise<number> {
  const sub = ctx.args[0];
  if (sub !== "prune") {
    throw new CliError(
      `Unknown system command ${
        JSON.stringify(sub)
      }: use 'denobox system prune'`,
    );
  }
  const all = ctx.options.bool("all");
  if (!ctx.options.bool("force")) {
    const what = all
      ? "all stopped containers and all images without a container"
      : "all stopped containers and dangling images";
    if (
      !(await confirm(
        `This removes ${what}. Are you sure you want to continue?`,
      ))
    ) return 0;
  }
  const store = new Store(ctx.paths);
  const removed: string[] = [];
  for (const c of store.list()) {
    if (c.status === "running" || c.status === "paused") continue;
    try {
      await removeContainer(store, c, false);
      removed.push(c.config.id);
    } catch (e) {
      console.error(`Error: ${e instanceof Error ? e.message : e}`);
    }
  }
  if (removed.length) {
    console.log(`Deleted Containers:\n${removed.join("\n")}\n`);
  }
  const { pruneImages } = await import("./image_cmds.ts");
  const { untagged, reclaimed } = await pruneImages(ctx.paths, store, all);
  if (untagged.length) {
    console.log(
      `Deleted Images:\n${untagged.map((u) => `untagged: ${u}`).join("\n")}\n`,
    );
  }
  console.log(`Total reclaimed space: ${humanSize(reclaimed)}`);
  return 0;
}
