/**
 * Where groups go and how they are made: v1 under a `denobox` group at each hierarchy's root,
 * v2 below the caller's own cgroup (delegation), with the no-internal-processes rule handled.
 * @module
 */
import { SyscallError } from "denobox/libc";
import type { Driver } from "./_driver.ts";
import {
  exists,
  mkdir,
  readOptional,
  readText,
  toSyscallError,
  writeText,
} from "./_fs.ts";
import { dirOf, type HierarchyInfo, type LayoutInfo } from "./_layout.ts";
import { isWithin, parseControllerList, parsePids } from "./_parse.ts";
import { V1_USED, type V1Controller, V1Driver } from "./_v1.ts";
import { removeTree, V2Driver } from "./_v2.ts";

/** The v1 parent group (below each hierarchy's root), Docker's convention. */
export const V1_PARENT = "/denobox";
/** On v2, the group below the caller's cgroup that holds denobox's groups. */
export const V2_GROUP = "denobox";
/** On v2, the leaf the caller's cgroup's processes move into so controllers can be enabled. */
export const V2_LEAF = "leaf";
/** The v2 controllers enabled for denobox's groups where the parent offers them. */
const V2_WANTED = ["cpu", "cpuset", "io", "memory", "pids"];

const DELEGATION_HINT =
  "run inside a delegated cgroup (e.g. systemd-run --user --scope -p Delegate=yes <command>), " +
  "or pass { parent } naming a cgroup this user owns";

const utf8 = new TextEncoder();

/** Checks a group name: one path component. */
export function checkName(name: string): string {
  if (
    typeof name !== "string" || name === "" || name === "." || name === ".." ||
    name.includes("/") || name.includes("\0") ||
    utf8.encode(name).length > 255
  ) {
    throw new RangeError(
      `Invalid cgroup name: ${
        JSON.stringify(name)
      } (expected one path component of 1 to 255 bytes)`,
    );
  }
  return name;
}

/** Normalizes an absolute cgroup path (`/a/b`); `..` and relative paths are a `RangeError`. */
function cgroupPath(path: string, what: string): string {
  if (
    typeof path !== "string" || !path.startsWith("/") || path.includes("\0")
  ) {
    throw new RangeError(
      `Invalid ${what}: ${JSON.stringify(path)} (expected an absolute path)`,
    );
  }
  const parts = path.split("/").filter((p) => p !== "" && p !== ".");
  if (parts.includes("..")) {
    throw new RangeError(
      `Invalid ${what}: ${JSON.stringify(path)} (".." is not allowed)`,
    );
  }
  return "/" + parts.join("/");
}

/** A path relative to a mount point, if `path` is inside it. */
function relativeTo(mountPoint: string, path: string): string | null {
  const mp = mountPoint.replace(/\/$/, "");
  if (path === mp) return "/";
  return path.startsWith(mp + "/") ? path.slice(mp.length) : null;
}

function usedControllers(h: HierarchyInfo): V1Controller[] {
  return V1_USED.filter((c) => h.mount.controllers.includes(c));
}

/**
 * A controller `Cgroup.create` can be asked for in its `controllers` option; `"io"` stands for
 * v1's `"blkio"`, so one name works on both versions.
 */
export type ControllerName =
  | "memory"
  | "cpu"
  | "cpuacct"
  | "cpuset"
  | "pids"
  | "freezer"
  | "blkio"
  | "io";

/** The controllers a caller may name in `Cgroup.create`'s `controllers` option. */
export const CONTROLLER_NAMES: readonly ControllerName[] = [...V1_USED, "io"];

/**
 * Checks a `controllers` option and returns the v1 controllers it names ("io" is v1's
 * "blkio"), or null for "all" (the option absent). A `RangeError` before anything is made.
 */
export function checkControllers(
  list: readonly string[] | undefined,
): V1Controller[] | null {
  if (list === undefined) return null;
  if (!Array.isArray(list) || list.length === 0) {
    throw new RangeError(
      "Invalid controllers: expected a non-empty array of controller names",
    );
  }
  const out = new Set<V1Controller>();
  for (const c of list) {
    if (!(CONTROLLER_NAMES as readonly string[]).includes(c)) {
      throw new RangeError(
        `Invalid controller: ${JSON.stringify(c)} (expected one of ${
          CONTROLLER_NAMES.join(", ")
        })`,
      );
    }
    out.add(c === "io" ? "blkio" : c as V1Controller);
  }
  return [...out];
}

function withHint(e: unknown, codes: string[], hint: string): unknown {
  if (
    e instanceof SyscallError && codes.includes(e.code) && e.hint === undefined
  ) {
    return e.withHint(hint);
  }
  return e;
}

// ------------------------------------------------------------------------------------ v1

/** The cgroup path (relative to each v1 hierarchy's root) of a v1 parent option. */
function v1ParentPath(info: LayoutInfo, parent: string | undefined): string {
  if (parent === undefined) return V1_PARENT;
  const p = cgroupPath(parent, "cgroup parent");
  for (const h of info.v1) {
    const rel = relativeTo(h.mount.mountPoint, p);
    if (rel !== null) return rel;
  }
  return p;
}

/** v1 cpuset groups start with no CPUs and no memory nodes: copy the parent's. */
function fillCpuset(dir: string): void {
  const parent = dir.replace(/\/[^/]+$/, "");
  for (const f of ["cpuset.cpus", "cpuset.mems"]) {
    if (readText(`${dir}/${f}`).trim() === "") {
      writeText(`${dir}/${f}`, readText(`${parent}/${f}`).trim());
    }
  }
}

/** mkdir -p of a v1 parent group below the hierarchy's mount point. */
function ensureV1Parent(h: HierarchyInfo, dir: string, cpuset: boolean): void {
  const rel = relativeTo(h.mount.mountPoint, dir)!;
  let cur = h.mount.mountPoint.replace(/\/$/, "");
  for (const part of rel.split("/").filter(Boolean)) {
    cur += "/" + part;
    mkdir(cur, true);
    if (cpuset) fillCpuset(cur);
  }
}

function createV1(
  info: LayoutInfo,
  name: string,
  parent: string | undefined,
  wanted: readonly V1Controller[] | null,
): V1Driver {
  const rel = v1ParentPath(info, parent);
  const hierarchies = info.v1.filter((h) =>
    usedControllers(h).some((c) => wanted === null || wanted.includes(c))
  );
  // Never below a group this process already sits in (other than the root): that group
  // belongs to whoever put us there (a supervisor, a systemd unit).
  for (const h of hierarchies) {
    if (h.own !== "/" && isWithin(rel, h.own)) {
      throw new Error(
        `Cannot create cgroup ${rel}/${name}: it would be inside ${h.own}, this process's own ` +
          `${
            h.mount.controllers.join(",")
          } cgroup, which another program manages; ` +
          `pass a parent outside it`,
      );
    }
  }
  using stack = new DisposableStack();
  const dirs: Partial<Record<V1Controller, string>> = {};
  for (const h of hierarchies) {
    const base = dirOf(h.mount, rel);
    if (base === null) {
      throw new Error(
        `Cannot create cgroup ${rel}/${name}: ${h.mount.mountPoint} shows only ${h.mount.root}`,
      );
    }
    const cpuset = h.mount.controllers.includes("cpuset");
    const dir = `${base}/${name}`;
    try {
      // The parent usually exists: one mkdir then; the walk from the root only when not.
      if (!mkdirUnlessNoParent(dir)) {
        ensureV1Parent(h, base, cpuset);
        mkdir(dir, false);
      }
    } catch (e) {
      throw withHint(
        e,
        ["EACCES", "EPERM", "EROFS"],
        "cgroup v1 has no delegation: run as root, or on a cgroup v2 system in a delegated cgroup",
      );
    }
    stack.defer(() => removeTree(dir));
    if (cpuset) fillCpuset(dir);
    for (const c of usedControllers(h)) dirs[c] = dir;
  }
  stack.move();
  return new V1Driver(dirs);
}

function openV1(info: LayoutInfo, pathOrName: string): V1Driver {
  const rel = pathOrName.startsWith("/")
    ? v1ParentPath(info, pathOrName)
    : `${V1_PARENT}/${checkName(pathOrName)}`;
  const dirs: Partial<Record<V1Controller, string>> = {};
  for (const h of info.v1) {
    const dir = dirOf(h.mount, rel);
    if (dir === null || !exists(dir)) continue;
    for (const c of usedControllers(h)) dirs[c] = dir;
  }
  if (Object.keys(dirs).length === 0) {
    throw new SyscallError("open", 2, {
      path: rel,
      detail: "in every cgroup v1 hierarchy",
    });
  }
  return new V1Driver(dirs);
}

// ------------------------------------------------------------------------------------ v2

function subtreeControl(dir: string): string[] {
  return parseControllerList(
    readOptional(`${dir}/cgroup.subtree_control`) ?? "",
  );
}

function enableControllers(dir: string, wanted: readonly string[]): void {
  const available = parseControllerList(
    readOptional(`${dir}/cgroup.controllers`) ?? "",
  );
  const enabled = subtreeControl(dir);
  for (const c of wanted) {
    if (!available.includes(c) || enabled.includes(c)) continue;
    try {
      writeText(`${dir}/cgroup.subtree_control`, `+${c}`);
    } catch (e) {
      throw withHint(
        e,
        ["EBUSY"],
        `${dir} holds processes: cgroup v2 enables controllers for children only in groups ` +
          `without processes (pass a parent that has none)`,
      );
    }
  }
}

/** The caller's own v2 directory, seen past the leaf it may have been moved into. */
function v2Own(info: LayoutInfo): string {
  const v2 = info.v2!;
  if (v2.ownDir === null) {
    throw new Error(
      `Cannot find this process's cgroup ${v2.own} below ${v2.mount.mountPoint} ` +
        `(mounted from ${v2.mount.root}); pass { parent }`,
    );
  }
  const own = v2.ownDir;
  const up = own.replace(/\/[^/]+$/, "");
  if (own.endsWith(`/${V2_LEAF}`) && exists(`${up}/${V2_GROUP}`)) return up;
  return own;
}

function v2ParentDir(info: LayoutInfo, parent: string): string {
  const p = cgroupPath(parent, "cgroup parent");
  const mount = info.v2!.mount;
  if (relativeTo(mount.mountPoint, p) !== null) return p;
  const dir = dirOf(mount, p);
  if (dir === null) {
    throw new RangeError(
      `Invalid cgroup parent: ${parent} is not visible below ${mount.mountPoint}`,
    );
  }
  return dir;
}

/** Moves every process of `own` into `own/leaf` so that `own` may enable controllers. */
function evacuate(own: string): void {
  const leaf = `${own}/${V2_LEAF}`;
  mkdir(leaf, true);
  for (let round = 0; round < 20; round++) {
    const pids = parsePids(readText(`${own}/cgroup.procs`));
    if (pids.length === 0) return;
    for (const pid of pids) {
      try {
        writeText(`${leaf}/cgroup.procs`, String(pid));
      } catch (e) {
        // A process that exited in the meantime.
        if (!(e instanceof SyscallError && e.code === "ESRCH")) throw e;
      }
    }
  }
  throw new Error(`Cannot empty ${own} into ${leaf}: processes keep appearing`);
}

/** The default v2 parent (`<own>/denobox`), prepared: controllers enabled on the way. */
function prepareV2Default(info: LayoutInfo): string {
  const own = v2Own(info);
  const isRoot = own === info.v2!.mount.mountPoint.replace(/\/$/, "") ||
    own === info.v2!.mount.mountPoint;
  const base = `${own}/${V2_GROUP}`;
  try {
    const available = parseControllerList(
      readOptional(`${own}/cgroup.controllers`) ?? "",
    );
    const enabled = subtreeControl(own);
    const missing = V2_WANTED.filter((c) =>
      available.includes(c) && !enabled.includes(c)
    );
    if (missing.length > 0) {
      // The root cgroup is exempt from the no-internal-processes rule; any other is not.
      if (!isRoot) evacuate(own);
      enableControllers(own, missing);
    }
    mkdir(base, true);
    enableControllers(base, V2_WANTED);
  } catch (e) {
    throw withHint(
      e,
      ["EACCES", "EPERM", "EROFS"],
      `this process may not manage its cgroup ${own}: ${DELEGATION_HINT}`,
    );
  }
  return base;
}

function createV2(
  info: LayoutInfo,
  name: string,
  parent: string | undefined,
): V2Driver {
  let base: string;
  if (parent === undefined) {
    base = prepareV2Default(info);
  } else {
    base = v2ParentDir(info, parent);
    try {
      enableControllers(base, V2_WANTED);
    } catch (e) {
      throw withHint(
        e,
        ["EACCES", "EPERM"],
        `cannot write ${base}: ${DELEGATION_HINT}`,
      );
    }
  }
  const dir = `${base}/${name}`;
  try {
    mkdir(dir, false);
  } catch (e) {
    throw withHint(
      e,
      ["EACCES", "EPERM"],
      `cannot create groups in ${base}: ${DELEGATION_HINT}`,
    );
  }
  return new V2Driver(dir);
}

function openV2(info: LayoutInfo, pathOrName: string): V2Driver {
  const dir = pathOrName.startsWith("/")
    ? v2ParentDir(info, pathOrName)
    : `${v2Own(info)}/${V2_GROUP}/${checkName(pathOrName)}`;
  if (!exists(`${dir}/cgroup.procs`)) {
    throw new SyscallError("open", 2, { path: dir });
  }
  return new V2Driver(dir);
}

/** mkdir(2) of a new group; false (nothing made) when its parent does not exist. */
function mkdirUnlessNoParent(dir: string): boolean {
  try {
    Deno.mkdirSync(dir, { mode: 0o755 });
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw toSyscallError(e, "mkdir", dir);
  }
}

/** Makes the directories of a new group; on failure nothing is left behind. */
export function createGroup(
  info: LayoutInfo,
  name: string,
  parent: string | undefined,
  wanted: readonly V1Controller[] | null = null,
): Driver {
  return info.version === 1
    ? createV1(info, name, parent, wanted)
    : createV2(info, name, parent);
}

/**
 * Turns on the wanted controllers for a v2 parent's children, once per parent handle (making
 * many children then reads nothing of the parent).
 */
function enableForChildren(parent: V2Driver): void {
  if (parent.childControllersEnabled) return;
  try {
    enableControllers(parent.dir, V2_WANTED);
  } catch (e) {
    throw withHint(
      e,
      ["EACCES", "EPERM"],
      `cannot write ${parent.dir}: ${DELEGATION_HINT}`,
    );
  }
  parent.childControllersEnabled = true;
}

/**
 * Makes a group inside an existing group's directories, without reading the machine's
 * layout again: v1 in the parent's hierarchies that hold a `wanted` controller (all when
 * null), v2 in its one directory (with the wanted controllers enabled for children where it
 * offers them). On failure nothing is left behind.
 */
export function createChild(
  parent: Driver,
  name: string,
  wanted: readonly V1Controller[] | null,
): Driver {
  if (parent instanceof V2Driver) {
    enableForChildren(parent);
    mkdir(`${parent.dir}/${name}`, false);
    return new V2Driver(`${parent.dir}/${name}`);
  }
  if (!(parent instanceof V1Driver)) {
    throw new TypeError("Invalid cgroup parent: not a v1 or v2 group");
  }
  const pdirs = parent.dirs;
  const keep = (c: V1Controller) =>
    pdirs[c] !== undefined &&
    (wanted === null || wanted.some((w) => pdirs[w] === pdirs[c]));
  using stack = new DisposableStack();
  const made = new Map<string, string>();
  const dirs: Partial<Record<V1Controller, string>> = {};
  for (const c of V1_USED) {
    if (!keep(c)) continue;
    const base = pdirs[c]!;
    let dir = made.get(base);
    if (dir === undefined) {
      dir = `${base}/${name}`;
      mkdir(dir, false);
      const d = dir;
      stack.defer(() => removeTree(d));
      made.set(base, dir);
      if (pdirs.cpuset === base) fillCpuset(dir);
    }
    dirs[c] = dir;
  }
  if (made.size === 0) {
    throw new RangeError(
      `Invalid controllers: the parent group ${
        parent.paths[0]
      } is in none of the hierarchies of ${wanted?.join(", ")}`,
    );
  }
  stack.move();
  return new V1Driver(dirs);
}

/** A driver over an existing group, by name (in the default parent) or path. */
export function openGroup(info: LayoutInfo, pathOrName: string): Driver {
  if (typeof pathOrName !== "string" || pathOrName === "") {
    throw new RangeError(`Invalid cgroup: ${JSON.stringify(pathOrName)}`);
  }
  return info.version === 1
    ? openV1(info, pathOrName)
    : openV2(info, pathOrName);
}
