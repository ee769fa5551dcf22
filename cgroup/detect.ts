import {
  type CgroupMode,
  classifyCgroups,
  type HierarchyInfo,
} from "./_layout.ts";
import { readOptional } from "./_fs.ts";
import { parseControllerList } from "./_parse.ts";

export type { CgroupMode } from "./_layout.ts";

/** One mounted cgroup hierarchy. */
export interface CgroupHierarchy {
  /** 1 (legacy) or 2 (unified). */
  version: 1 | 2;
  /** Where it is mounted (`/sys/fs/cgroup/memory`, `/sys/fs/cgroup`). */
  mountPoint: string;
  /** v1: the controllers bound to it; v2: those in the root's (or this process's) cgroup.controllers. */
  controllers: string[];
  /** v1 named hierarchy (`systemd`), or null. */
  name: string | null;
  /** This process's cgroup in it, as /proc/self/cgroup shows it. */
  own: string;
  /** The directory of that cgroup, or null when the mount does not show it. */
  ownDir: string | null;
  /**
   * Whether this process may create groups where denobox would (v1: the hierarchy's root;
   * v2: below its own cgroup). A best guess from modes and owners; the kernel has the last word.
   */
  writable: boolean;
}

/** The cgroup set-up of this machine, as this process sees it. */
export interface CgroupLayout {
  /** `"v2"` (unified only), `"v1"` (legacy only) or `"hybrid"` (v1 controllers plus a v2 mount). */
  mode: CgroupMode;
  /** The version `Cgroup.create()` uses: 1 when memory, cpu or pids are bound to v1. */
  version: 1 | 2;
  /** The v2 hierarchy, if mounted. */
  v2: CgroupHierarchy | null;
  /** The v1 hierarchies (controller ones and named ones). */
  v1: CgroupHierarchy[];
}

function mayWrite(dir: string | null, readOnly: boolean): boolean {
  if (dir === null || readOnly) return false;
  if (Deno.uid() === 0) return true;
  try {
    const st = Deno.statSync(dir);
    const procs = Deno.statSync(`${dir}/cgroup.procs`);
    return st.uid === Deno.uid() && (st.mode! & 0o200) !== 0 &&
      procs.uid === Deno.uid();
  } catch {
    return false;
  }
}

function describe(h: HierarchyInfo): CgroupHierarchy {
  const m = h.mount;
  let controllers = m.controllers;
  if (m.version === 2) {
    const dir = h.ownDir ?? m.mountPoint;
    controllers = parseControllerList(
      readOptional(`${dir}/cgroup.controllers`) ?? "",
    );
  }
  // v1 groups go at the hierarchy's root (under "denobox"); v2 ones below our own cgroup.
  const where = m.version === 1 ? m.mountPoint : h.ownDir;
  return {
    version: m.version,
    mountPoint: m.mountPoint,
    controllers,
    name: m.name,
    own: h.own,
    ownDir: h.ownDir,
    writable: mayWrite(where, m.readOnly),
  };
}

/**
 * Detects the cgroup set-up: v2 unified, v1 legacy or hybrid; the controllers of each
 * hierarchy; this process's own cgroups; and whether it may create groups there. Reads
 * /proc/self/mountinfo and /proc/self/cgroup (or the texts given, for other processes).
 *
 * @example Which version will a new group use?
 * ```ts
 * import { detectCgroups } from "denobox/cgroup";
 * const layout = detectCgroups();
 * console.log(layout.mode, layout.version, layout.v1.map((h) => h.controllers.join(",")));
 * ```
 */
export function detectCgroups(
  options: { mountinfo?: string; procCgroup?: string } = {},
): CgroupLayout {
  const info = classifyCgroups(
    options.mountinfo ?? Deno.readTextFileSync("/proc/self/mountinfo"),
    options.procCgroup ?? Deno.readTextFileSync("/proc/self/cgroup"),
  );
  return {
    mode: info.mode,
    version: info.version,
    v2: info.v2 ? describe(info.v2) : null,
    v1: info.v1.map(describe),
  };
}
