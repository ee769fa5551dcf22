/**
 * Image commands, thin over denobox/image: `images`, `pull`, `push`, `import`, `load`, `save`,
 * `export`, `commit`, `build`, `tag`, `rmi`, and the image half of `system prune`.
 * @module
 */
import { join } from "./_path.ts";
import type { Context } from "./_commands.ts";
import type { StorePaths } from "./_paths.ts";
import { type ContainerInfo, Store } from "./_store.ts";
import { CliError } from "./_errors.ts";
import { humanDuration, humanSize, table } from "./_format.ts";
import {
  layerDiff,
  layerDirs,
  layerMode,
  openImageStore,
  ownersOf,
} from "./_rootfs.ts";
import { pidBelongs } from "./_ops.ts";

type ImageMod = typeof import("denobox/image");
const imageMod = (): Promise<ImageMod> => import("denobox/image");

function splitName(name: string): [string, string] {
  const at = name.indexOf("@");
  if (at >= 0) return [name.slice(0, at), name.slice(at + 1)];
  const colon = name.lastIndexOf(":");
  if (colon > name.lastIndexOf("/")) {
    return [name.slice(0, colon), name.slice(colon + 1)];
  }
  return [name, "latest"];
}

const shortDigest = (d: string) => d.replace(/^sha256:/, "").slice(0, 12);

async function wrap<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof CliError) throw e;
    throw new CliError(`${what}: ${e instanceof Error ? e.message : e}`);
  }
}

/** The Docker-shaped JSON of an image (`denobox inspect`). */
export async function inspectImage(
  paths: StorePaths,
  ref: string,
): Promise<Record<string, unknown>> {
  const store = await openImageStore(paths);
  const img = await wrap(`No such object: ${ref}`, () => store.resolve(ref));
  return {
    Id: img.digest,
    RepoTags: img.names,
    Created: img.config.created ?? "",
    Architecture: img.config.architecture,
    Os: img.config.os,
    Config: img.config.config ?? {},
    RootFS: { Type: "layers", Layers: img.config.rootfs.diff_ids },
    Size: img.manifest.layers.reduce((s, l) => s + l.size, 0),
    History: img.config.history ?? [],
  };
}

/** `denobox images`. */
export async function imagesCommand(ctx: Context): Promise<number> {
  const store = await openImageStore(ctx.paths);
  const list = await store.list();
  if (ctx.options.bool("quiet")) {
    for (const d of new Set(list.map((i) => shortDigest(i.digest)))) {
      console.log(d);
    }
  } else if (ctx.options.str("format") === "json") {
    for (const i of list) {
      const [repo, tag] = splitName(i.name);
      console.log(
        JSON.stringify({
          Repository: repo,
          Tag: tag,
          ID: i.digest,
          CreatedAt: i.created ?? "",
          Size: i.size,
        }),
      );
    }
  } else {
    const now = Date.now();
    console.log(table(
      ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"],
      list.map((i) => {
        const [repo, tag] = splitName(i.name);
        return [
          repo,
          tag,
          shortDigest(i.digest),
          i.created
            ? `${humanDuration(now - Date.parse(i.created))} ago`
            : "N/A",
          humanSize(i.size),
        ];
      }),
    ));
  }
  return 0;
}

function registryOptions(ctx: Context): { insecure?: boolean } {
  const v = ctx.options.str("tls-verify");
  if (v === undefined) return {};
  if (v !== "true" && v !== "false") {
    throw new CliError(`Invalid --tls-verify ${v}: true or false`);
  }
  return { insecure: v === "false" };
}

/** `denobox pull`. */
export async function pullCommand(ctx: Context): Promise<number> {
  const { pull } = await imageMod();
  const store = await openImageStore(ctx.paths);
  const ref = ctx.args[0]!;
  const quiet = ctx.options.bool("quiet");
  const img = await wrap(
    `Cannot pull ${ref}`,
    () => pull(store, ref, { progress: !quiet, ...registryOptions(ctx) }),
  );
  if (!quiet) console.error(`Pulled ${ref}`);
  console.log(img.digest);
  return 0;
}

/** `denobox push`. */
export async function pushCommand(ctx: Context): Promise<number> {
  const { push } = await imageMod();
  const store = await openImageStore(ctx.paths);
  const ref = ctx.args[0]!;
  const digest = await wrap(
    `Cannot push ${ref}`,
    () => push(store, ref, ref, { progress: true, ...registryOptions(ctx) }),
  );
  console.log(digest);
  return 0;
}

/**
 * `denobox import FILE|DIR [REPO[:TAG]]`: a filesystem tarball (or `-` for stdin, or a
 * directory) becomes a one-layer image. A tarball is unpacked safely (denobox/image's
 * `applyLayer`) into a scratch directory first.
 */
export async function importCommand(ctx: Context): Promise<number> {
  const { applyLayer, importTree } = await imageMod();
  const store = await openImageStore(ctx.paths);
  const [file, name] = ctx.args as [string, string | undefined];
  const img = await wrap(`Cannot import ${file}`, async () => {
    const tag = name ? { tag: name } : {};
    if (file !== "-" && (await Deno.stat(file)).isDirectory) {
      return await importTree(store, file, tag);
    }
    const run = ctx.paths.run;
    await Deno.mkdir(run, { recursive: true, mode: 0o700 });
    const dir = await Deno.makeTempDir({ dir: run, prefix: "import-" });
    try {
      using f = file === "-" ? null : await Deno.open(file);
      await applyLayer(dir, f ? f.readable : Deno.stdin.readable);
      return await importTree(store, dir, tag);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
  console.log(img.digest);
  return 0;
}

async function spoolStdin(store: Store): Promise<string> {
  const tmp = join(store.paths.run, `stdin-${crypto.randomUUID()}.tar`);
  await Deno.mkdir(store.paths.run, { recursive: true });
  using f = await Deno.open(tmp, { write: true, createNew: true, mode: 0o600 });
  await Deno.stdin.readable.pipeTo(f.writable, { preventClose: true });
  return tmp;
}

/** `denobox load`. */
export async function loadCommand(ctx: Context): Promise<number> {
  const { importImage } = await imageMod();
  const store = await openImageStore(ctx.paths);
  const input = ctx.options.str("input");
  if (!input && Deno.stdin.isTerminal()) {
    throw new CliError(
      "Cannot load from a terminal: give -i FILE or redirect a tar archive to stdin",
    );
  }
  const path = input ?? await spoolStdin(new Store(ctx.paths));
  try {
    const imgs = await wrap(
      "Cannot load the archive",
      () => importImage(store, path),
    );
    for (const i of imgs) {
      console.log(
        i.names.length
          ? `Loaded image: ${i.names.join(", ")}`
          : `Loaded image ID: ${i.digest}`,
      );
    }
  } finally {
    if (!input) await Deno.remove(path).catch(() => {});
  }
  return 0;
}

async function toOutput(
  ctx: Context,
  produce: (dest: string) => Promise<void>,
): Promise<void> {
  const out = ctx.options.str("output");
  if (out) return await produce(out);
  if (Deno.stdout.isTerminal()) {
    throw new CliError(
      "Refusing to write a tar archive to a terminal: use -o FILE or redirect stdout",
    );
  }
  const run = new Store(ctx.paths).paths.run;
  await Deno.mkdir(run, { recursive: true });
  const tmp = join(run, `out-${crypto.randomUUID()}.tar`);
  try {
    await produce(tmp);
    using f = await Deno.open(tmp);
    await f.readable.pipeTo(Deno.stdout.writable, { preventClose: true });
  } finally {
    await Deno.remove(tmp).catch(() => {});
  }
}

/** `denobox save`. */
export async function saveCommand(ctx: Context): Promise<number> {
  const { exportImage } = await imageMod();
  const store = await openImageStore(ctx.paths);
  await toOutput(
    ctx,
    (dest) =>
      wrap(
        `Cannot save ${ctx.args.join(", ")}`,
        () =>
          exportImage(store, ctx.args, dest, { format: "docker", tar: true }),
      ),
  );
  return 0;
}

/**
 * The container's changes as a `Rootfs` for commit, without mounting anything: the overlay's
 * upper directory (root, or a rootless overlay), or the private copy compared with its
 * snapshot from creation (so only the change goes in the new layer).
 */
async function layerView(ctx: Context, c: ContainerInfo) {
  const images = await openImageStore(ctx.paths);
  const image = await images.resolve(c.config.imageId ?? c.config.image!);
  const d = layerDirs(ctx.paths, c.config.id);
  const mode = layerMode(ctx.paths, c.config.id);
  // fails early (before commit takes the store's lock) when a copy has no snapshot
  const diff = await wrap(
    `Cannot commit container ${c.config.name}`,
    () => layerDiff(ctx.paths, c.config.id),
  );
  let used = false;
  return {
    path: mode === "copy" ? d.copy : mode === "sandbox" ? d.upper : d.merged,
    mode,
    image,
    upper: mode === "copy" ? null : d.upper,
    dir: c.dir,
    diff: () => {
      if (used) throw new Error("the layer view's diff is read once");
      used = true;
      return diff;
    },
    [Symbol.asyncDispose]: () => Promise.resolve(),
  };
}

/**
 * Mount points below a process's root (relative paths, `/` itself left out), from its
 * mountinfo: what `export` of a running container leaves out (its /proc, /dev, volumes).
 */
function mountPointsOf(pid: number): string[] {
  const out: string[] = [];
  for (
    const line of Deno.readTextFileSync(`/proc/${pid}/mountinfo`).split("\n")
  ) {
    const at = line.split(" ")[4];
    if (at === undefined || at === "/") continue;
    // mountinfo escapes space, tab, newline and backslash as octal
    out.push(
      at.slice(1).replace(
        /\\([0-7]{3})/g,
        (_, o: string) => String.fromCharCode(parseInt(o, 8)),
      ),
    );
  }
  return out;
}

/** `denobox export`. */
export async function exportCommand(ctx: Context): Promise<number> {
  const { diffTar } = await imageMod();
  const store = new Store(ctx.paths);
  const c = store.resolve(ctx.args[0]!);
  await toOutput(ctx, async (dest) => {
    await using stack = new AsyncDisposableStack();
    let dir: string;
    let exclude: string[] = [];
    let viaPid: number | null = null;
    if (c.config.image) {
      if (
        (c.status === "running" || c.status === "paused") && c.state.rootfsMount
      ) {
        dir = c.state.rootfsMount;
        // a rootless overlay, seen through the container's own root: not its mounts
        const m = /^\/proc\/(\d+)\/root$/.exec(dir);
        if (m) {
          viaPid = Number(m[1]);
          exclude = mountPointsOf(viaPid);
        }
      } else {
        const lock = store.tryMonitorLock(c.config.id);
        if (!lock) {
          throw new CliError(`Container ${ctx.args[0]} is starting; try again`);
        }
        stack.defer(() => lock.release());
        const { openRootView } = await import("./_rootfs.ts");
        const images = await openImageStore(ctx.paths);
        const image = await images.resolve(c.config.imageId ?? c.config.image);
        dir = stack.use(await openRootView(ctx.paths, c.config.id, image)).path;
      }
    } else if (c.config.rootfs) dir = c.config.rootfs;
    else {
      throw new CliError(
        `Cannot export container ${
          ctx.args[0]
        }: it uses the read-only host view, not a filesystem of its own`,
      );
    }
    using f = await Deno.open(dest, {
      write: true,
      create: true,
      truncate: true,
    });
    const tar = diffTar(dir, {
      base: new Map(),
      exclude,
      ...(c.config.image ? ownersOf(ctx.paths) : {}),
    });
    for await (const chunk of tar) {
      let off = 0;
      while (off < chunk.length) off += await f.write(chunk.subarray(off));
    }
    if (viaPid !== null && !pidBelongs(viaPid, c)) {
      throw new CliError(
        `Container ${ctx.args[0]} stopped while exporting; try again`,
      );
    }
  });
  return 0;
}

/** `denobox commit`. */
export async function commitCommand(ctx: Context): Promise<number> {
  const { commit } = await imageMod();
  const store = new Store(ctx.paths);
  const c = store.resolve(ctx.args[0]!);
  if (!c.config.image) {
    throw new CliError(
      `Cannot commit container ${
        ctx.args[0]
      }: it was not made from an image (use 'denobox export' and 'denobox import')`,
    );
  }
  const view = await layerView(ctx, c);
  const msg = ctx.options.str("message");
  const img = await wrap(
    `Cannot commit container ${ctx.args[0]}`,
    () =>
      commit(view, {
        ...(ctx.args[1] ? { tag: ctx.args[1] } : {}),
        createdBy: `denobox commit ${c.config.name}`,
        ...(msg !== undefined ? { comment: msg } : {}),
      }),
  );
  console.log(img.digest);
  return 0;
}

/** `denobox build`. */
export async function buildCommand(ctx: Context): Promise<number> {
  const { build } = await imageMod();
  const store = await openImageStore(ctx.paths);
  const dir = ctx.args[0]!;
  const file = ctx.options.str("file") ?? join(dir, "Dockerfile");
  if (ctx.options.list("build-arg").length) {
    throw new CliError(
      "--build-arg is not supported by this builder: write the values into the recipe",
    );
  }
  const tags = ctx.options.list("tag");
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (e) {
    throw new CliError(
      `Cannot read the recipe ${file}: ${e instanceof Error ? e.message : e}`,
    );
  }
  const quiet = ctx.options.bool("quiet");
  const result = await wrap(`Cannot build ${dir}`, () =>
    build(store, text, {
      context: dir,
      ...(tags[0] ? { tag: tags[0] } : {}),
      output: quiet ? "null" : "inherit",
      onStep: (s) => {
        if (!quiet) console.error(`--> ${JSON.stringify(s)}`);
      },
    }));
  for (const t of tags.slice(1)) await store.tag(t, result.image.digest);
  console.log(result.image.digest);
  return 0;
}

/** `denobox tag`. */
export async function tagCommand(ctx: Context): Promise<number> {
  const store = await openImageStore(ctx.paths);
  const [src, dst] = ctx.args as [string, string];
  const img = await wrap(`No such image: ${src}`, () => store.resolve(src));
  await wrap(`Cannot tag ${dst}`, () => store.tag(dst, img.digest));
  return 0;
}

function usersOf(store: Store, digest: string): ContainerInfo[] {
  return store.list().filter((c) => c.config.imageId === digest);
}

/** `denobox rmi`. */
export async function rmiCommand(ctx: Context): Promise<number> {
  const images = await openImageStore(ctx.paths);
  const store = new Store(ctx.paths);
  let failed = false;
  for (const ref of ctx.args) {
    try {
      const img = await wrap(
        `No such image: ${ref}`,
        () => images.resolve(ref),
      );
      const users = usersOf(store, img.digest);
      if (users.length && !ctx.options.bool("force")) {
        throw new CliError(
          `Cannot remove image ${ref}: containers use it (${
            users.map((c) => c.config.name).join(", ")
          }); ` +
            "remove them first or use 'denobox rmi -f'",
        );
      }
      const names =
        img.names.includes(ref) || !/^(sha256:)?[0-9a-f]+$/.test(ref)
          ? [ref]
          : img.names;
      for (const n of names) {
        if (await images.untag(n)) console.log(`Untagged: ${n}`);
      }
    } catch (e) {
      failed = true;
      console.error(`Error: ${e instanceof Error ? e.message : e}`);
    }
  }
  const gc = await images.gc();
  for (const b of gc.blobs) console.log(`Deleted: ${b}`);
  return failed ? 1 : 0;
}

/** The image half of `system prune`: untags unused images (with `all`), then collects garbage. */
export async function pruneImages(
  paths: StorePaths,
  store: Store,
  all: boolean,
): Promise<{ untagged: string[]; reclaimed: number }> {
  const images = await openImageStore(paths);
  const untagged: string[] = [];
  if (all) {
    const used = new Set(store.list().map((c) => c.config.imageId));
    for (const i of await images.list()) {
      if (!used.has(i.digest) && await images.untag(i.name)) {
        untagged.push(i.name);
      }
    }
  }
  const gc = await images.gc();
  return { untagged, reclaimed: gc.bytes };
}
