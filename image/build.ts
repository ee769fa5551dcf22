/**
 * Build: a recipe (TypeScript API or a Dockerfile subset) turned into an image, one layer
 * per `run`/`copy` step, each `run` executed in a sandbox on an overlay of the layers so far,
 * with a step cache keyed by the parent image and the step.
 * @module
 */
import { join, posix, relative, resolve } from "node:path";
import { ids } from "denobox/libc";
import { spawn } from "denobox/sandbox";
import { extendImage, storeLayer } from "./commit.ts";
import type { ConfigChanges } from "./commit.ts";
import { LayerWriter } from "./apply.ts";
import { pull, type PullOptions } from "./registry.ts";
import { mountRootfs } from "./rootfs.ts";
import type { ImageStore, StoredImage } from "./store.ts";
import { sha256 } from "./_stream.ts";
import { TarWriter } from "./tar.ts";
import { parseReference } from "./reference.ts";
import { type BuildStep, parseDockerfile, Recipe } from "./recipe.ts";

// ---- building ----

/** What happened at each step. */
export interface BuildStepResult {
  /** The step. */
  step: BuildStep;
  /** The image after it. */
  digest: string;
  /** Whether the cache provided it. */
  cached: boolean;
}

/** Options of `build`. */
export interface BuildOptions {
  /** Directory that `copy` sources are relative to (default the working directory). */
  context?: string;
  /** Name for the result (`name[:tag]`). */
  tag?: string;
  /** Use and fill the step cache (default true). */
  cache?: boolean;
  /** Pull a missing base image that names a registry (default true, with these options). */
  pull?: PullOptions | false;
  /** Where `run` steps' stdout/stderr go: "inherit" (default) or "null". */
  output?: "inherit" | "null";
  /** Called after each step. */
  onStep?: (result: BuildStepResult) => void;
  /** Scratch directory for run steps' container dirs (default the store's tmp/). */
  workDir?: string;
}

/** The result of `build`. */
export interface BuildResult {
  /** The final image. */
  image: StoredImage;
  /** One entry per step. */
  steps: BuildStepResult[];
}

function describe(step: BuildStep): string {
  switch (step.kind) {
    case "from":
      return `FROM ${step.ref}`;
    case "run":
      return `RUN ${step.text}`;
    case "copy":
      return `COPY ${
        step.chown ? `--chown=${step.chown.uid}:${step.chown.gid} ` : ""
      }${step.sources.join(" ")} ${step.dest}`;
    case "env":
      return `ENV ${
        Object.entries(step.env).map(([k, v]) => `${k}=${JSON.stringify(v)}`)
          .join(" ")
      }`;
    case "workdir":
      return `WORKDIR ${step.path}`;
    case "cmd":
      return `CMD ${JSON.stringify(step.argv)}`;
    case "entrypoint":
      return `ENTRYPOINT ${JSON.stringify(step.argv)}`;
    case "user":
      return `USER ${step.user}`;
    case "label":
      return `LABEL ${
        Object.entries(step.labels).map(([k, v]) => `${k}=${JSON.stringify(v)}`)
          .join(" ")
      }`;
  }
}

function envRecord(env: readonly string[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of env ?? []) {
    const i = kv.indexOf("=");
    if (i > 0) out[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return out;
}

function resolveUser(
  rootfs: string,
  user: string | undefined,
): { uid: number; gid: number } {
  if (!user) return { uid: 0, gid: 0 };
  const [u, g] = user.split(":");
  const lookup = (file: string, name: string, field: number): number => {
    if (/^\d+$/.test(name)) return Number(name);
    // The image's own passwd/group, read through a confined resolution: a symlinked
    // /etc/passwd must not point at the host's.
    let text = "";
    try {
      text = readInRoot(rootfs, file);
    } catch { /* none */ }
    for (const line of text.split("\n")) {
      const f = line.split(":");
      if (f[0] === name) return Number(f[field]);
    }
    throw new Error(
      `Cannot run as user ${user}: ${name} is not in the image's ${file}`,
    );
  };
  const uid = lookup("etc/passwd", u!, 2);
  let gid = 0;
  if (g !== undefined) gid = lookup("etc/group", g, 2);
  else if (!/^\d+$/.test(u!)) gid = lookup("etc/passwd", u!, 3);
  return { uid, gid };
}

function readInRoot(root: string, rel: string): string {
  using w = new LayerWriter(root);
  return w.readText(rel);
}

async function copyLayerTar(
  context: string,
  step: Extract<BuildStep, { kind: "copy" }>,
  workdir: string,
): Promise<Uint8Array> {
  const w = new TarWriter();
  const ctx = await Deno.realPath(context);
  let dest = posix.isAbsolute(step.dest)
    ? step.dest
    : posix.join(workdir, step.dest);
  // A directory when it says so (trailing slash, ".") or when several sources go there.
  const toDir = step.dest.endsWith("/") || step.dest === "." ||
    step.dest.endsWith("/.") ||
    step.sources.length > 1;
  dest = posix.normalize(dest).replace(/^\/+/, "");
  const owner = step.chown ?? { uid: 0, gid: 0 };
  const add = async (abs: string, name: string) => {
    const info = await Deno.lstat(abs);
    const base = {
      name,
      uid: owner.uid,
      gid: owner.gid,
      mode: (info.mode ?? 0o644) & 0o7777,
      mtimeMs: info.mtime?.getTime() ?? 0,
    };
    if (info.isDirectory) {
      if (name !== "") w.add({ ...base, type: "dir" });
      const names = [];
      for await (const e of Deno.readDir(abs)) names.push(e.name);
      for (const n of names.sort()) {
        await add(join(abs, n), name === "" ? n : `${name}/${n}`);
      }
    } else if (info.isSymlink) {
      w.add({ ...base, type: "symlink", linkname: await Deno.readLink(abs) });
    } else if (info.isFile) {
      w.add(base, await Deno.readFile(abs));
    }
  };
  if (dest !== "") {
    // Parent directories of the destination, so the layer stands alone.
    const parts = dest.split("/");
    for (let i = 1; i < parts.length + (toDir ? 1 : 0); i++) {
      w.add({ name: parts.slice(0, i).join("/"), type: "dir", mode: 0o755 });
    }
  }
  for (const src of step.sources) {
    const abs = resolve(ctx, src);
    const real = await Deno.realPath(abs).catch(() => {
      throw new Error(
        `Cannot copy ${src}: not found in the build context ${context}`,
      );
    });
    if (
      real !== ctx && !real.startsWith(`${ctx}/`) ||
      relative(ctx, abs).startsWith("..")
    ) {
      throw new Error(
        `Cannot copy ${src}: it is outside the build context ${context}`,
      );
    }
    const info = await Deno.stat(real);
    const name = posix.basename(src);
    if (info.isDirectory) {
      await add(
        real,
        toDir || step.sources.length === 1 ? dest : `${dest}/${name}`,
      );
    } else {await add(
        real,
        toDir ? (dest === "" ? name : `${dest}/${name}`) : dest,
      );}
  }
  return w.finish();
}

async function runStep(
  image: StoredImage,
  step: Extract<BuildStep, { kind: "run" }>,
  options: BuildOptions,
): Promise<StoredImage> {
  const store = image.store;
  const dir = options.workDir
    ? join(options.workDir, `run-${crypto.randomUUID().slice(0, 8)}`)
    : store.tempPath("run");
  // The step writes WORKDIR and reads /etc/passwd through the merged view on the host, so
  // rootless it uses a private copy rather than an overlay only the sandbox can see.
  await using rootfs = await mountRootfs(image, dir, {
    mode: ids().euid === 0 ? "overlay" : "copy",
  });
  const cfg = image.config.config ?? {};
  const cwd = cfg.WorkingDir || "/";
  {
    // WORKDIR exists before the command runs (created inside the root, confined).
    using w = new LayerWriter(rootfs.path);
    w.mkdirs(cwd);
  }
  const env = envRecord(cfg.Env);
  env.PATH ??= "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  const user = resolveUser(rootfs.path, cfg.User);
  const out = options.output ?? "inherit";
  await using sandbox = await spawn({
    argv: step.argv,
    env,
    cwd,
    rootfs: rootfs.path,
    user,
    stdin: "null",
    stdout: out,
    stderr: out,
  });
  const status = await sandbox.status;
  if (!status.success) {
    throw new Error(
      `Cannot build: RUN ${step.text}: exited with ${
        status.code ?? status.signal
      }`,
    );
  }
  const layer = await storeLayer(store, rootfs.diff(), { compressionLevel: 1 });
  return await extendImage(image, layer, { createdBy: describe(step) });
}

/**
 * Builds an image from a recipe (or Dockerfile text). Each step yields a new image; `run`
 * steps execute in a sandbox (`spawn` from denobox/sandbox) whose rootfs is an overlay of the
 * layers so far, and their changes become a layer; `copy` steps make a layer from the
 * context; the rest change the config. A step whose parent image and description (plus, for
 * `copy`, the content) were seen before is taken from the cache.
 *
 * @example Build from a Dockerfile
 * ```ts ignore
 * import { build, ImageStore, parseDockerfile } from "denobox/image";
 * const store = await ImageStore.open();
 * const recipe = parseDockerfile(await Deno.readTextFile("Dockerfile"));
 * const { image } = await build(store, recipe, { context: ".", tag: "app:latest" });
 * console.log(image.digest);
 * ```
 */
export async function build(
  store: ImageStore,
  recipe: Recipe | string,
  options: BuildOptions = {},
): Promise<BuildResult> {
  const r = typeof recipe === "string" ? parseDockerfile(recipe) : recipe;
  const first = r.steps[0];
  if (first?.kind !== "from") {
    throw new TypeError("Invalid recipe: it must start with from()");
  }
  let image: StoredImage;
  try {
    image = await store.resolve(first.ref);
  } catch (e) {
    const ref = parseReference(first.ref);
    if (ref.registry === undefined || options.pull === false) throw e;
    image = await pull(store, first.ref, options.pull ?? {});
  }
  await using _lease = await store.lease([image.digest]);
  const results: BuildStepResult[] = [{
    step: first,
    digest: image.digest,
    cached: false,
  }];
  options.onStep?.(results[0]!);
  const useCache = options.cache !== false;
  for (const step of r.steps.slice(1)) {
    const text = describe(step);
    let extra = "";
    let copyTar: Uint8Array | null = null;
    const workdir = image.config.config?.WorkingDir || "/";
    if (step.kind === "copy") {
      copyTar = await copyLayerTar(options.context ?? ".", step, workdir);
      extra = sha256(copyTar);
    }
    const key = sha256(
      JSON.stringify({ parent: image.digest, step: text, extra }),
    );
    const hit = useCache ? await store.cacheGet(key) : null;
    let cached = false;
    if (hit !== null) {
      image = await store.resolve(hit);
      cached = true;
    } else {
      image = await applyStep(image, step, text, copyTar, options);
      if (useCache) await store.cachePut(key, image.digest);
    }
    await using _l = await store.lease([image.digest]);
    const res = { step, digest: image.digest, cached };
    results.push(res);
    options.onStep?.(res);
  }
  if (options.tag !== undefined) {
    await store.tag(options.tag, image.digest);
    image = await store.resolve(image.digest);
  }
  return { image, steps: results };
}

async function applyStep(
  image: StoredImage,
  step: BuildStep,
  text: string,
  copyTar: Uint8Array | null,
  options: BuildOptions,
): Promise<StoredImage> {
  const store = image.store;
  const changes: ConfigChanges = {};
  switch (step.kind) {
    case "run":
      return await runStep(image, step, options);
    case "copy": {
      using _ = await store.lock();
      const layer = await storeLayer(store, copyTar!, { compressionLevel: 1 });
      return await extendImage(image, layer, { createdBy: text });
    }
    case "env":
      changes.env = step.env;
      break;
    case "workdir":
      changes.workdir = posix.resolve(
        image.config.config?.WorkingDir || "/",
        step.path,
      );
      break;
    case "cmd":
      changes.cmd = step.argv;
      break;
    case "entrypoint":
      changes.entrypoint = step.argv;
      break;
    case "user":
      changes.user = step.user;
      break;
    case "label":
      changes.labels = step.labels;
      break;
    case "from":
      throw new TypeError("Invalid recipe: from() may appear only once, first");
  }
  return await extendImage(image, null, { createdBy: text, changes });
}
