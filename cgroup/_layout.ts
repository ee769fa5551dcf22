/**
 * Pure classification of a machine's cgroup set-up from /proc/self/mountinfo and
 * /proc/self/cgroup text (unit-tested with fixtures of v2, v1 and hybrid machines).
 * @module
 */
import {
  type CgroupMount,
  parseCgroupMounts,
  parseProcCgroup,
} from "./_parse.ts";

/** The v1 controllers whose presence on v1 makes denobox drive v1. */
const DECIDING = ["memory", "cpu", "pids"];

/** A hierarchy as seen by this process, before any file of it is read. */
export interface HierarchyInfo {
  mount: CgroupMount;
  /** This process's cgroup in the hierarchy (from /proc/self/cgroup), `/` if not listed. */
  own: string;
  /** The directory of `own`, or null when this mount does not show it. */
  ownDir: string | null;
}

/**
 * How a machine mounts cgroups: `"v2"` (unified only), `"v1"` (legacy only) or `"hybrid"` (v1
 * controllers plus a v2 mount, which holds no controllers denobox uses).
 */
export type CgroupMode = "v2" | "v1" | "hybrid";

/** What the two proc files say. */
export interface LayoutInfo {
  mode: CgroupMode;
  /** The version a new group uses: 1 when memory, cpu or pids are bound to v1. */
  version: 1 | 2;
  v2: HierarchyInfo | null;
  v1: HierarchyInfo[];
}

function pickMount(mounts: CgroupMount[]): CgroupMount | undefined {
  return mounts.find((m) => m.root === "/") ?? mounts[0];
}

/** The directory of cgroup `path` seen through `mount`, or null when outside it. */
export function dirOf(mount: CgroupMount, path: string): string | null {
  const root = mount.root === "/" ? "" : mount.root;
  if (root !== "" && path !== root && !path.startsWith(root + "/")) return null;
  const rel = path.slice(root.length);
  return rel === "" || rel === "/"
    ? mount.mountPoint
    : mount.mountPoint.replace(/\/$/, "") + rel;
}

/** Classifies the cgroup set-up; throws when no cgroup filesystem is mounted. */
export function classifyCgroups(
  mountinfo: string,
  procCgroup: string,
): LayoutInfo {
  const mounts = parseCgroupMounts(mountinfo);
  const entries = parseProcCgroup(procCgroup);
  const info = (mount: CgroupMount, own: string): HierarchyInfo => ({
    mount,
    own,
    ownDir: dirOf(mount, own),
  });

  const v2mount = pickMount(mounts.filter((m) => m.version === 2));
  const v2own =
    entries.find((e) => e.id === 0 && e.controllers.length === 0)?.path ?? "/";
  const v2 = v2mount ? info(v2mount, v2own) : null;

  // One entry per v1 hierarchy (keyed by its controller set or name); bind mounts of the
  // same hierarchy collapse into one.
  const groups = new Map<string, CgroupMount[]>();
  for (const m of mounts) {
    if (m.version !== 1) continue;
    const key = m.controllers.length > 0
      ? [...m.controllers].sort().join(",")
      : `name=${m.name}`;
    groups.set(key, [...(groups.get(key) ?? []), m]);
  }
  const v1: HierarchyInfo[] = [];
  for (const list of groups.values()) {
    const m = pickMount(list)!;
    const entry = entries.find((e) =>
      e.id !== 0 &&
      (m.controllers.length > 0
        ? m.controllers.every((c) => e.controllers.includes(c))
        : e.controllers.includes(`name=${m.name}`))
    );
    v1.push(info(m, entry?.path ?? "/"));
  }

  const v1Controllers = v1.some((h) => h.mount.controllers.length > 0);
  if (!v2 && !v1Controllers) {
    throw new Error(
      "Cannot use cgroups: no cgroup filesystem is mounted (mount -t cgroup2 none /sys/fs/cgroup)",
    );
  }
  const mode: CgroupMode = !v1Controllers ? "v2" : v2 ? "hybrid" : "v1";
  const version =
    v1.some((h) => h.mount.controllers.some((c) => DECIDING.includes(c)))
      ? 1
      : 2;
  if (version === 2 && !v2) {
    throw new Error(
      "Cannot use cgroups: neither a v2 hierarchy nor the v1 memory, cpu or pids controllers are mounted",
    );
  }
  return { mode, version, v2, v1 };
}
