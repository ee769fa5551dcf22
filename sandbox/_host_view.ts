/**
 * The built-in root when `spawn()` gets no rootfs: a read-only view of the host's system
 * directories with a curated /etc. It never shows /etc/shadow, /root, /home, /var, /srv or the
 * caller's working tree. The host's layout (merged-/usr symlinks, which /lib* exist) is read
 * once per process.
 */
import { At, FileType, mountFlagsOf, statxat } from "denobox/libc";
import type { Program } from "./program.ts";
import { mark } from "./_trace.ts";

type RoBind = (
  p: Program,
  source: string,
  target: string,
  hostPath: string,
  recursive?: boolean,
  /** The host path's mount flags to keep (default: read with statfs). */
  flags?: number,
) => void;

interface Entry {
  name: string;
  kind: "dir" | "symlink" | "file";
  target?: string;
  /** For a bound dir or file: the mount flags of the host path (kept on the ro remount). */
  flags?: number;
}

/** What the host view binds and links: the host's layout, read once. */
interface Plan {
  top: Entry[];
  etc: Entry[];
}

let layout: Plan | null = null;
let memo: { key: string; plan: Plan } | null = null;

/**
 * What the built-in host view shows, and nothing more: top-level host directories bound
 * read-only (those that exist), the /etc entries programs need (never shadow, gshadow,
 * sudoers, ssh keys, ssl/private), and the generated passwd, group and hosts files. Other
 * builders of a host-like root (the grader's prepared root) use this same list.
 */
export const HOST_VIEW: {
  readonly top: readonly string[];
  readonly etc: readonly string[];
  readonly passwd: string;
  readonly group: string;
  readonly hosts: string;
} = Object.freeze({
  top: Object.freeze([
    "usr",
    "bin",
    "sbin",
    "lib",
    "lib32",
    "lib64",
    "libx32",
    "opt",
  ]),
  etc: Object.freeze([
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "alternatives",
    "ssl/certs",
    "ssl/openssl.cnf",
    "ca-certificates.conf",
    "localtime",
    "timezone",
    "nsswitch.conf",
    "protocols",
    "services",
    "mime.types",
    "os-release",
  ]),
  passwd:
    "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
  group: "root:x:0:\nnogroup:x:65534:\n",
  hosts: "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n",
});
const TOP = HOST_VIEW.top;
const ETC = HOST_VIEW.etc;

function inspect(path: string, name: string, flags = true): Entry | null {
  try {
    const st = Deno.lstatSync(path);
    if (st.isSymlink) {
      return { name, kind: "symlink", target: Deno.readLinkSync(path) };
    }
    const kind = st.isDirectory ? "dir" : st.isFile ? "file" : null;
    if (kind) {
      return flags ? { name, kind, flags: mountFlagsOf(path) } : { name, kind };
    }
  } catch { /* absent on this host */ }
  return null;
}

function readPlan(): Plan {
  return {
    top: TOP.map((n) => inspect(`/${n}`, n)).filter((e) => e !== null),
    etc: ETC.map((n) => inspect(`/etc/${n}`, n)).filter((e) => e !== null),
  };
}

// The plan depends on the entries of these directories (any change to an entry, a symlink
// retargeted included, changes its directory's mtime) and on the mount table (the flags).
const WATCHED = ["/", "/etc", "/etc/ssl"];
const CACHE_VERSION = "denobox host view 1";

/**
 * Device, inode, modification and change times of `dir` (following a symlink), in one statx:
 * Deno.statSync builds Date objects, slower on first use, and rounds the times to ms.
 */
function watchedStat(
  dir: string,
): { dev: string; ino: bigint; m: number; c: number } {
  const st = statxat(At.AT_FDCWD, dir);
  if (st !== null && (st.mode & FileType.S_IFMT) !== FileType.S_IFLNK) {
    return {
      dev: `${st.devMajor}:${st.devMinor}`,
      ino: st.ino,
      m: st.mtimeMs,
      c: st.ctimeMs,
    };
  }
  const d = Deno.statSync(dir);
  return {
    dev: `${d.dev}`,
    ino: BigInt(d.ino ?? 0),
    m: d.mtime?.getTime() ?? 0,
    c: d.ctime?.getTime() ?? 0,
  };
}

/** What a cached plan is only valid for: the watched directories' identity and times, the mounts. */
function planKey(): { key: string; settled: boolean } | null {
  try {
    const now = Date.now();
    let settled = true;
    let key = CACHE_VERSION;
    for (const d of WATCHED) {
      const st = watchedStat(d);
      // a change within the clock's resolution of our reading could go unseen: only a
      // directory left alone for a while makes a key worth storing
      if (now - Math.max(st.m, st.c) < 2000) settled = false;
      key += `\n${d} ${st.dev} ${st.ino} ${st.m} ${st.c}`;
    }
    key += "\n" + Deno.readTextFileSync("/proc/self/mountinfo");
    return { key, settled };
  } catch {
    return null;
  }
}

/** A cached plan must only name what the host view may show (a tampered file shows no more). */
function validPlan(v: unknown): v is Plan {
  const ok = (list: unknown, names: readonly string[]) =>
    Array.isArray(list) &&
    list.every((e) =>
      typeof e === "object" && e !== null && names.includes(e.name) &&
      (e.kind === "symlink"
        ? typeof e.target === "string"
        : (e.kind === "dir" || e.kind === "file") &&
          Number.isInteger(e.flags))
    );
  const p = v as Plan;
  return typeof v === "object" && v !== null && ok(p.top, TOP) &&
    ok(p.etc, ETC);
}

/**
 * The host's layout (merged-/usr symlinks, which /lib* and /etc entries exist). Without
 * `cacheDir`: the layout is read once per process and the mount flags on each use. With it:
 * the whole plan, flags included, is kept there between processes and used while the watched
 * directories and the mount table are unchanged (checked on every use).
 */
function hostPlan(cacheDir: string | undefined): Plan {
  if (cacheDir === undefined) {
    layout ??= {
      top: TOP.map((n) => inspect(`/${n}`, n, false)).filter((e) => e !== null),
      etc: ETC.map((n) => inspect(`/etc/${n}`, n, false)).filter((e) =>
        e !== null
      ),
    };
    return layout;
  }
  const k = planKey();
  if (k && memo?.key === k.key) return memo.plan;
  const file = `${cacheDir}/host-view.json`;
  if (k) {
    try {
      const stored = JSON.parse(Deno.readTextFileSync(file));
      if (stored?.key === k.key && validPlan(stored.plan)) {
        memo = { key: k.key, plan: stored.plan };
        return stored.plan;
      }
    } catch { /* not cached yet */ }
  }
  const plan = readPlan();
  if (k?.settled) {
    memo = { key: k.key, plan };
    try {
      Deno.mkdirSync(cacheDir, { recursive: true, mode: 0o700 });
      const tmp = `${file}.${Deno.pid}.tmp`;
      Deno.writeTextFileSync(tmp, JSON.stringify({ key: k.key, plan }), {
        mode: 0o600,
      });
      Deno.renameSync(tmp, file);
    } catch { /* a cache only */ }
  }
  return plan;
}

const { passwd: PASSWD, group: GROUP, hosts: HOSTS } = HOST_VIEW;

/** Appends the steps that populate `root` (a fresh tmpfs) with the host view. */
export function hostView(
  p: Program,
  root: string,
  helpers: {
    roBind: RoBind;
    cacheDir?: string;
    /** Mount a tmpfs at /tmp (false: leave it an empty directory, for a mount of the caller's). */
    tmp?: boolean;
  },
): void {
  const { top, etc } = hostPlan(helpers.cacheDir);
  mark("host view: layout");
  for (const e of top) {
    const t = `${root}/${e.name}`;
    if (e.kind === "symlink") p.symlink(e.target!, t);
    else if (e.kind === "dir") {
      p.mkdir(t);
      helpers.roBind(p, `/${e.name}`, t, `/${e.name}`, true, e.flags);
    }
  }
  for (const d of ["etc", "etc/ssl", "tmp", "proc", "dev", "root", "home"]) {
    p.mkdir(`${root}/${d}`, d === "root" ? 0o700 : 0o755);
  }
  if (helpers.tmp ?? true) {
    p.mount("tmpfs", `${root}/tmp`, {
      type: "tmpfs",
      flags: 2 | 4,
      data: "mode=1777",
    });
  }
  for (const e of etc) {
    const t = `${root}/etc/${e.name}`;
    if (e.kind === "symlink") p.symlink(e.target!, t);
    else if (e.kind === "dir") {
      p.mkdir(t);
      helpers.roBind(p, `/etc/${e.name}`, t, `/etc/${e.name}`, true, e.flags);
    } else {
      // the bind's mount point: one mknodat makes the empty file that open, an empty write
      // and close did (regular files need no CAP_MKNOD; the tmpfs is fresh, nothing to truncate)
      p.mknod(t, FileType.S_IFREG | 0o644, 0);
      helpers.roBind(p, `/etc/${e.name}`, t, `/etc/${e.name}`, false, e.flags);
    }
  }
  p.writeFile(`${root}/etc/passwd`, PASSWD, { create: true });
  p.writeFile(`${root}/etc/group`, GROUP, { create: true });
  p.writeFile(`${root}/etc/hosts`, HOSTS, { create: true });
}
