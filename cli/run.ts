/**
 * `run`, `create` and `start`.
 * @module
 */
import type { Context } from "./_commands.ts";
import { type ContainerConfig, type Lock, Store } from "./_store.ts";
import { buildConfig, DEFAULT_PATH, type NewConfig } from "./_config.ts";
import { CliError } from "./_errors.ts";
import type { StorePaths } from "./_paths.ts";
import { trace } from "./_trace.ts";

/** Fills what the flags left open from the image's config (command, env, workdir, user). */
async function withImage(
  paths: StorePaths,
  config: NewConfig,
  commandGiven: boolean,
) {
  const { openImageStore } = await import("./_rootfs.ts");
  const images = await openImageStore(paths);
  let image;
  try {
    image = await images.resolve(config.image!);
  } catch (e) {
    throw new CliError(
      `Unable to find image ${JSON.stringify(config.image)} locally: ` +
        `pull it with 'denobox pull ${config.image}', or load, import or build it ` +
        `(${e instanceof Error ? e.message : e})`,
    );
  }
  const ic = image.config.config ?? {};
  const env: Record<string, string> = { PATH: DEFAULT_PATH };
  for (const kv of ic.Env ?? []) {
    const eq = kv.indexOf("=");
    if (eq > 0) env[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  const entry = ic.Entrypoint ?? [];
  const argv = [...entry, ...(commandGiven ? config.argv : ic.Cmd ?? [])];
  if (argv.length === 0) {
    throw new CliError(
      `No command given and image ${config.image} has none (no CMD or ENTRYPOINT): ` +
        `add one after the image name`,
    );
  }
  let user = config.user;
  if (!user && ic.User) {
    const m = /^(\d+)(?::(\d+))?$/.exec(ic.User);
    if (m) user = { uid: Number(m[1]), gid: Number(m[2] ?? m[1]) };
  }
  return {
    image,
    config: {
      ...config,
      imageId: image.digest,
      argv,
      env: { ...env, ...config.env },
      workdir: config.workdir || ic.WorkingDir || "/",
      user,
    },
  };
}

/** A container made by `createFromContext`: on disk with its monitor lock held, or not yet. */
type Created =
  & { store: Store; id: string; config: ContainerConfig }
  & ({ monitorLock: Lock } | { commit: () => Lock });

/**
 * Creates the container for `run`/`create`; returns its ID, and its config with the monitor
 * lock still held (the caller runs it or releases the lock). With `deferred`, a container
 * without an image is only prepared: its record is made by `commit()` (see
 * `Store.prepareOwned`).
 */
async function createFromContext(
  ctx: Context,
  autoRemove: boolean,
  deferred = false,
): Promise<Created> {
  const req = buildConfig(ctx.options, ctx.args, {
    cwd: Deno.cwd(),
    env: Deno.env.toObject(),
    detach: ctx.options.bool("detach"),
    autoRemove,
  }, ctx.dashDashAt);
  let config: NewConfig = req.config;
  if (config.capAdd.length || config.capDrop.length) {
    const { resolveCapabilities } = await import("denobox/sandbox");
    try {
      resolveCapabilities({ capAdd: config.capAdd, capDrop: config.capDrop });
    } catch (e) {
      throw new CliError(
        `Invalid --cap-add/--cap-drop: ${e instanceof Error ? e.message : e}`,
      );
    }
  }
  let image: import("denobox/image").StoredImage | null = null;
  if (req.image) {
    const r = await withImage(ctx.paths, config, req.commandGiven);
    config = r.config;
    image = r.image;
  } else {
    config = {
      ...config,
      env: { PATH: DEFAULT_PATH, ...config.env },
      workdir: config.workdir || "/",
    };
  }
  if (config.tty && !("TERM" in config.env)) config.env.TERM = "xterm";
  const store = new Store(ctx.paths);
  let prepared;
  try {
    prepared = store.prepareOwned(config, req.name);
  } catch (e) {
    if (e instanceof RangeError) throw new CliError(e.message);
    throw e;
  }
  const created = prepared.config;
  if (deferred && !image) {
    return { store, id: created.id, config: created, commit: prepared.commit };
  }
  const monitorLock = prepared.commit();
  if (image) {
    try {
      const { prepareLayer } = await import("./_rootfs.ts");
      // DENOBOX_STORAGE_DRIVER=vfs (Podman's name): a private copy even where overlay works
      const overlay = Deno.env.get("DENOBOX_STORAGE_DRIVER") !== "vfs";
      const copied = await prepareLayer(ctx.paths, created.id, image, {
        rootlessOverlay: overlay,
      });
      if (copied !== null && overlay) {
        console.error(
          `Notice: container ${created.name} gets a private copy of image ${config.image}'s ` +
            `files instead of an overlay: ${copied}`,
        );
      }
    } catch (e) {
      store.removeRecord(created.id);
      monitorLock.release();
      throw new CliError(
        `Cannot create container ${created.name}: ${
          e instanceof Error ? e.message : e
        }`,
      );
    }
  }
  return { store, id: created.id, config: created, monitorLock };
}

/**
 * `denobox run`. `runtime` is the foreground owner's module when the caller has it loaded
 * already (the `run` fast entry); otherwise it is imported when needed.
 */
export async function runCommand(
  ctx: Context,
  runtime?: Pick<typeof import("./_runtime.ts"), "runAsOwner">,
): Promise<number> {
  const detach = ctx.options.bool("detach");
  const autoRemove = ctx.options.bool("rm");
  // In the foreground, the record of a container without an image or a name is made while
  // its sandbox sets itself up (spawn's whileStarting): that work then costs no start-up
  // time. A name is claimed first, so that a taken one stops the run before it starts.
  const made = await createFromContext(
    ctx,
    autoRemove,
    !detach && !ctx.options.has("name"),
  );
  const { store, id, config } = made;
  trace("created");
  if (detach) {
    // the detached monitor takes the lock itself
    if ("monitorLock" in made) made.monitorLock.release();
    const { startDetached } = await import("./_monitor.ts");
    await startDetached(store, id);
    console.log(id);
    return 0;
  }
  const { runAsOwner } = runtime ?? await import("./_runtime.ts");
  const { status } = await runAsOwner(store, id, {
    foreground: true,
    stdin: ctx.options.bool("interactive"),
    created: "monitorLock" in made
      ? { config, monitorLock: made.monitorLock }
      : { config, commit: made.commit },
  });
  return status;
}

/** `denobox create`. */
export async function createCommand(ctx: Context): Promise<number> {
  const made = await createFromContext(ctx, false);
  if ("monitorLock" in made) made.monitorLock.release();
  console.log(made.id);
  return 0;
}

/** `denobox start`. */
export async function startCommand(ctx: Context): Promise<number> {
  const store = new Store(ctx.paths);
  const attach = ctx.options.bool("attach");
  if (attach && ctx.args.length > 1) {
    throw new CliError(
      "You cannot start and attach multiple containers at once: start them one by one with -a",
    );
  }
  let failed = 0;
  for (const ref of ctx.args) {
    try {
      const c = store.resolve(ref);
      if (c.status === "running" || c.status === "paused") {
        if (attach) {
          throw new CliError(
            `Container ${c.config.name} is already running: use 'denobox logs -f ${ref}'`,
          );
        }
        console.log(ref);
        continue;
      }
      if (attach) {
        const { runAsOwner } = await import("./_runtime.ts");
        const { status } = await runAsOwner(store, c.config.id, {
          foreground: true,
          stdin: ctx.options.bool("interactive"),
        });
        return status;
      }
      const { startDetached } = await import("./_monitor.ts");
      await startDetached(store, c.config.id);
      console.log(ref);
    } catch (e) {
      if (attach) throw e;
      failed++;
      console.error(`Error: ${e instanceof Error ? e.message : e}`);
    }
  }
  return failed ? 125 : 0;
}
