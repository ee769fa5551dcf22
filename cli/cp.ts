/**
 * `cp`: copies between a container and the host. Every path inside the container is resolved
 * with openat2(RESOLVE_IN_ROOT) from a descriptor of the container's root, and every step
 * below it uses *at calls with O_NOFOLLOW on one name at a time, so no symlink (absolute,
 * relative, or swapped in meanwhile) can lead the copy out of the container.
 * @module
 */
import { basename, dirname, join } from "./_path.ts";
import {
  FileType,
  mkdirat,
  open,
  openat2,
  OpenFlag,
  type OwnedFd,
  readlinkat,
  Resolve,
  statxat,
  symlinkat,
  unlinkat,
} from "denobox/libc";
import type { Context } from "./_commands.ts";
import { type ContainerInfo, Store } from "./_store.ts";
import { CliError } from "./_errors.ts";
import { pidBelongs } from "./_ops.ts";

/** `CONTAINER:PATH` → its parts; a plain host path → null. */
export function splitContainerPath(
  arg: string,
): { ref: string; path: string } | null {
  if (arg.startsWith("/") || arg.startsWith(".")) return null;
  const colon = arg.indexOf(":");
  if (colon <= 0) return null;
  const slash = arg.indexOf("/");
  if (slash >= 0 && slash < colon) return null;
  return { ref: arg.slice(0, colon), path: arg.slice(colon + 1) || "/" };
}

interface RootHandle extends AsyncDisposable {
  fd: OwnedFd;
  writable: boolean;
}

/** A descriptor of the container's root, whatever its state. */
async function openRoot(
  store: Store,
  c: ContainerInfo,
): Promise<RootHandle> {
  const flags = OpenFlag.O_PATH | OpenFlag.O_DIRECTORY;
  await using stack = new AsyncDisposableStack();
  let fd: OwnedFd;
  if ((c.status === "running" || c.status === "paused") && c.state.pid) {
    fd = open(`/proc/${c.state.pid}/root`, { flags });
    if (!pidBelongs(c.state.pid, c)) {
      fd.close();
      throw new CliError(
        `Container ${c.config.name} stopped while copying; try again`,
      );
    }
  } else if (c.config.image) {
    // stopped: a view of its whole root (image and changes) for the copy, holding the monitor lock so it cannot start meanwhile
    const lock = store.tryMonitorLock(c.config.id);
    if (!lock) {
      throw new CliError(`Container ${c.config.name} is starting; try again`);
    }
    stack.defer(() => lock.release());
    const { openRootView, openImageStore } = await import("./_rootfs.ts");
    const images = await openImageStore(store.paths);
    const image = await images.resolve(c.config.imageId ?? c.config.image);
    const r = stack.use(await openRootView(store.paths, c.config.id, image));
    fd = open(r.path, { flags });
  } else {
    fd = open(c.config.rootfs ?? "/", { flags });
  }
  stack.defer(() => fd.close());
  const moved = stack.move();
  return {
    fd,
    writable: !c.config.readOnly &&
      (c.config.image !== null || c.config.rootfs !== null),
    [Symbol.asyncDispose]: () => moved.disposeAsync(),
  };
}

const isType = (mode: number, t: number) => (mode & FileType.S_IFMT) === t;

/** Opens a directory inside the container (confined), for *at calls on its entries. */
function openDirIn(root: number, path: string): OwnedFd {
  return openat2(root, path, {
    flags: OpenFlag.O_PATH | OpenFlag.O_DIRECTORY,
    resolve: Resolve.RESOLVE_IN_ROOT | Resolve.RESOLVE_NO_MAGICLINKS,
  });
}

/** Copies entry `name` of container dir `dir` to host path `dest`. */
async function copyOut(dir: number, name: string, dest: string): Promise<void> {
  const st = statxat(dir, name);
  if (!st) throw new CliError(`No such file in the container: ${name}`);
  if (isType(st.mode, FileType.S_IFDIR)) {
    await Deno.mkdir(dest, { recursive: true, mode: st.mode & 0o7777 });
    using sub = open(name, {
      dirFd: dir,
      flags: OpenFlag.O_RDONLY | OpenFlag.O_DIRECTORY | OpenFlag.O_NOFOLLOW,
    });
    const names: string[] = [];
    for await (const e of Deno.readDir(`/proc/self/fd/${sub.fd}`)) {
      names.push(e.name);
    }
    for (const n of names) await copyOut(sub.fd, n, join(dest, n));
  } else if (isType(st.mode, FileType.S_IFREG)) {
    const src = open(name, {
      dirFd: dir,
      flags: OpenFlag.O_RDONLY | OpenFlag.O_NOFOLLOW,
    });
    using file = await src.toFsFile();
    await Deno.remove(dest).catch(() => {});
    using out = await Deno.open(dest, {
      write: true,
      createNew: true,
      mode: st.mode & 0o777,
    });
    await file.readable.pipeTo(out.writable, { preventClose: true });
  } else if (isType(st.mode, FileType.S_IFLNK)) {
    const target = readlinkat(dir, name);
    await Deno.remove(dest).catch(() => {});
    await Deno.symlink(target, dest);
  } else {
    console.error(`Warning: skipped ${name}: not a file, directory or symlink`);
  }
}

/** Copies host path `src` to entry `name` of container dir `dir`. */
async function copyIn(src: string, dir: number, name: string): Promise<void> {
  const st = await Deno.lstat(src);
  const existing = statxat(dir, name);
  if (st.isDirectory) {
    if (existing && !isType(existing.mode, FileType.S_IFDIR)) {
      unlinkat(dir, name);
    }
    if (!existing || !isType(existing.mode, FileType.S_IFDIR)) {
      mkdirat(dir, name, (st.mode ?? 0o755) & 0o7777);
    }
    using sub = open(name, {
      dirFd: dir,
      flags: OpenFlag.O_RDONLY | OpenFlag.O_DIRECTORY | OpenFlag.O_NOFOLLOW,
    });
    for await (const e of Deno.readDir(src)) {
      await copyIn(join(src, e.name), sub.fd, e.name);
    }
  } else if (st.isFile) {
    // never write through whatever is there: a symlink or directory is replaced, not followed
    if (existing && !isType(existing.mode, FileType.S_IFREG)) {
      unlinkat(dir, name, { dir: isType(existing.mode, FileType.S_IFDIR) });
    }
    const fd = open(name, {
      dirFd: dir,
      flags: OpenFlag.O_WRONLY | OpenFlag.O_CREAT | OpenFlag.O_TRUNC |
        OpenFlag.O_NOFOLLOW,
      mode: (st.mode ?? 0o644) & 0o777,
    });
    using out = await fd.toFsFile({ write: true });
    using file = await Deno.open(src);
    await file.readable.pipeTo(out.writable, { preventClose: true });
  } else if (st.isSymlink) {
    if (existing) {
      unlinkat(dir, name, { dir: isType(existing.mode, FileType.S_IFDIR) });
    }
    symlinkat(await Deno.readLink(src), dir, name);
  }
}

/** `denobox cp`. */
export async function cpCommand(ctx: Context): Promise<number> {
  const [a, b] = ctx.args as [string, string];
  const from = splitContainerPath(a), to = splitContainerPath(b);
  if ((from === null) === (to === null)) {
    throw new CliError(
      "Copying needs exactly one CONTAINER:PATH argument (and one host path)",
    );
  }
  const store = new Store(ctx.paths);
  if (from) {
    const c = store.resolve(from.ref);
    await using root = await openRoot(store, c);
    const inPath = from.path.replace(/\/+$/, "") || "/";
    if (inPath === "/") {
      throw new CliError(
        "Copying a whole container root: use 'denobox export'",
      );
    }
    using parent = openDirIn(root.fd.fd, dirname(inPath));
    const name = basename(inPath);
    let dest = b;
    try {
      if ((await Deno.stat(b)).isDirectory) dest = join(b, name);
    } catch { /* a new name */ }
    await copyOut(parent.fd, name, dest);
  } else {
    const c = store.resolve(to!.ref);
    await using root = await openRoot(store, c);
    if (!root.writable) {
      throw new CliError(
        `Cannot copy into container ${c.config.name}: its root filesystem is read-only` +
          (c.config.image || c.config.rootfs ? "" : " (the host view)"),
      );
    }
    const inPath = to!.path;
    let parentPath = dirname(inPath), name = basename(inPath);
    try {
      using _dir = openDirIn(root.fd.fd, inPath);
      parentPath = inPath;
      name = basename(a.replace(/\/+$/, ""));
    } catch { /* not an existing directory: copy to that name */ }
    using parent = openDirIn(root.fd.fd, parentPath);
    await copyIn(a, parent.fd, name);
  }
  return 0;
}
