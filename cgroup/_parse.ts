/**
 * Pure readers and writers of cgroupfs file formats. No I/O here: the drivers read the files
 * and hand the text over, so every format is unit-tested with fixtures.
 * @module
 */

/** `key value` lines (memory.stat, cpu.stat, memory.events, pids.events, memory.oom_control). */
export function parseKeyed(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    const [key, value, ...rest] = line.trim().split(/\s+/);
    if (!key || value === undefined || rest.length > 0) continue;
    out.set(key, parseCounter(value));
  }
  return out;
}

/** A counter or limit as the kernel prints it; `max` is Infinity. */
export function parseCounter(text: string): number {
  const t = text.trim();
  if (t === "max") return Infinity;
  const n = Number(t);
  if (t === "" || !Number.isFinite(n)) {
    throw new SyntaxError(`Cannot parse cgroup value: ${JSON.stringify(text)}`);
  }
  return n;
}

/**
 * A v1 byte limit: the kernel reports "unlimited" as PAGE_COUNTER_MAX pages
 * (9223372036854771712 on 4 KiB pages), which we read as Infinity.
 */
export function parseV1Limit(text: string): number {
  const n = parseCounter(text);
  return n >= 2 ** 62 ? Infinity : n;
}

/**
 * Nested-keyed lines: `8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0` (io.stat, io.max).
 * Returns one map per device.
 */
export function parseNestedKeyed(
  text: string,
): Map<string, Map<string, number>> {
  const out = new Map<string, Map<string, number>>();
  for (const line of text.split("\n")) {
    const [dev, ...pairs] = line.trim().split(/\s+/);
    if (!dev) continue;
    const m = new Map<string, number>();
    for (const p of pairs) {
      const eq = p.indexOf("=");
      if (eq > 0) m.set(p.slice(0, eq), parseCounter(p.slice(eq + 1)));
    }
    out.set(dev, m);
  }
  return out;
}

/** Sum of `key` over every device of an io.stat text. */
export function sumIoStat(text: string, key: string): number {
  let sum = 0;
  for (const m of parseNestedKeyed(text).values()) sum += m.get(key) ?? 0;
  return sum;
}

/**
 * v1 blkio `*_service_bytes*` files: `8:0 Read 4096` lines per device, then `Total N`.
 * Returns the read and write bytes summed over devices.
 */
export function parseBlkioBytes(text: string): { read: number; write: number } {
  let read = 0, write = 0;
  for (const line of text.split("\n")) {
    const [dev, op, value] = line.trim().split(/\s+/);
    if (!dev || !op || value === undefined || !dev.includes(":")) continue;
    if (op === "Read") read += parseCounter(value);
    else if (op === "Write") write += parseCounter(value);
  }
  return { read, write };
}

/**
 * v1 `cpuacct.usage_all`: a `cpu user system` header, then one line per CPU in nanoseconds.
 * Returns the user and system sums (the two counters in one read).
 */
export function parseUsageAll(text: string): { user: number; system: number } {
  let user = 0, system = 0;
  for (const line of text.split("\n")) {
    const [cpu, u, s] = line.trim().split(/\s+/);
    if (!cpu || u === undefined || s === undefined || !/^\d+$/.test(cpu)) {
      continue;
    }
    user += parseCounter(u);
    system += parseCounter(s);
  }
  return { user, system };
}

/** cgroup.procs / tasks: one pid a line. */
export function parsePids(text: string): number[] {
  return text.split("\n").filter((l) => l.trim() !== "").map((l) =>
    Number(l.trim())
  );
}

/** One entry of /proc/PID/cgroup. */
export interface ProcCgroupEntry {
  /** Hierarchy id (0 for the v2 unified hierarchy). */
  id: number;
  /** Controllers (v1) or `name=...` entries; empty for v2. */
  controllers: string[];
  /** The cgroup path relative to the hierarchy (or cgroup namespace) root. */
  path: string;
}

/** /proc/PID/cgroup: `hierarchy-id:controller-list:path` lines. */
export function parseProcCgroup(text: string): ProcCgroupEntry[] {
  const out: ProcCgroupEntry[] = [];
  for (const line of text.split("\n")) {
    if (!line) continue;
    const a = line.indexOf(":"), b = line.indexOf(":", a + 1);
    if (a < 0 || b < 0) continue;
    const list = line.slice(a + 1, b);
    out.push({
      id: Number(line.slice(0, a)),
      controllers: list === "" ? [] : list.split(","),
      path: line.slice(b + 1),
    });
  }
  return out;
}

/** A cgroup filesystem mount from /proc/PID/mountinfo. */
export interface CgroupMount {
  /** Where it is mounted. */
  mountPoint: string;
  /** The cgroup this mount shows at its top (`/` unless bind-mounted from inside). */
  root: string;
  /** 1 for `cgroup`, 2 for `cgroup2`. */
  version: 1 | 2;
  /** v1: the controllers bound to this hierarchy (super options); v2: empty. */
  controllers: string[];
  /** v1 named hierarchy (`name=systemd`), if any. */
  name: string | null;
  /** Mounted read-only. */
  readOnly: boolean;
}

/** The v1 controller names the kernel knows (super options that are not controllers are dropped). */
export const V1_CONTROLLERS: ReadonlySet<string> = new Set([
  "cpu",
  "cpuacct",
  "cpuset",
  "memory",
  "devices",
  "freezer",
  "net_cls",
  "net_prio",
  "blkio",
  "perf_event",
  "hugetlb",
  "pids",
  "rdma",
  "misc",
]);

function unescapeMountField(s: string): string {
  return s.replace(
    /\\([0-7]{3})/g,
    (_, o: string) => String.fromCharCode(parseInt(o, 8)),
  );
}

/** The cgroup and cgroup2 mounts of a mountinfo text. */
export function parseCgroupMounts(mountinfo: string): CgroupMount[] {
  const out: CgroupMount[] = [];
  for (const line of mountinfo.split("\n")) {
    const f = line.split(" ");
    const sep = f.indexOf("-");
    if (sep < 6) continue;
    const fstype = f[sep + 1];
    if (fstype !== "cgroup" && fstype !== "cgroup2") continue;
    const superOpts = (f[sep + 3] ?? "").split(",");
    const mountOpts = (f[5] ?? "").split(",");
    const nameOpt = superOpts.find((o) => o.startsWith("name="));
    out.push({
      mountPoint: unescapeMountField(f[4]!),
      root: unescapeMountField(f[3]!),
      version: fstype === "cgroup2" ? 2 : 1,
      controllers: fstype === "cgroup2"
        ? []
        : superOpts.filter((o) => V1_CONTROLLERS.has(o)),
      name: nameOpt ? nameOpt.slice(5) : null,
      readOnly: mountOpts.includes("ro"),
    });
  }
  return out;
}

/** A space-separated controller list (cgroup.controllers, cgroup.subtree_control). */
export function parseControllerList(text: string): string[] {
  return text.trim().split(/\s+/).filter(Boolean);
}

/** Validates a cpu/mem list such as `"0-3,8"`; throws a `RangeError` naming `what`. */
export function checkCpuList(list: string, what: string): string {
  if (typeof list !== "string" || !/^(\d+(-\d+)?)(,\d+(-\d+)?)*$/.test(list)) {
    throw new RangeError(
      `Invalid ${what}: ${JSON.stringify(list)} (expected a list like "0-3,8")`,
    );
  }
  for (const part of list.split(",")) {
    const [a, b] = part.split("-").map(Number);
    if (b !== undefined && b < a!) {
      throw new RangeError(
        `Invalid ${what}: ${JSON.stringify(list)} (range ${part} is reversed)`,
      );
    }
  }
  return list;
}

/** v2 cpu.weight (1..10000, default 100) to v1 cpu.shares (2..262144, default 1024). */
export function weightToShares(weight: number): number {
  return Math.max(2, Math.min(262144, Math.round((weight * 1024) / 100)));
}

/** A number as the v2 files want it, `max` for Infinity. */
export function formatV2(n: number): string {
  return n === Infinity ? "max" : String(n);
}

/** A limit as the v1 files want it, `-1` for Infinity. */
export function formatV1(n: number): string {
  return n === Infinity ? "-1" : String(n);
}

/** Whether cgroup path `inner` is `outer` or lies below it. */
export function isWithin(inner: string, outer: string): boolean {
  const o = outer.endsWith("/") ? outer : outer + "/";
  return inner === outer || inner.startsWith(o);
}
