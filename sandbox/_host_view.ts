/**
 * The built-in root when `spawn()` gets no rootfs: a read-only view of the host's system
 * directories with a curated /etc. It never shows /etc/shadow, /root, /home, /var, /srv or the
 * caller's working tree. The host's layout (merged-/usr symlinks, which /lib* exist) is read
 * once per process.
 */
import type { Program } from "./program.ts";

type RoBind = (
  p: Program,
  source: string,
  target: string,
  hostPath: string,
  recursive?: boolean,
) => void;

interface Entry {
  name: string;
  kind: "dir" | "symlink" | "file";
  target?: string;
}

let layout: { top: Entry[]; etc: Entry[] } | null = null;

const TOP = ["usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "opt"];
// what programs need from /etc; never shadow, gshadow, sudoers, ssh keys, ssl/private
const ETC = [
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
];

function inspect(path: string, name: string): Entry | null {
  try {
    const st = Deno.lstatSync(path);
    if (st.isSymlink) {
      return { name, kind: "symlink", target: Deno.readLinkSync(path) };
    }
    if (st.isDirectory) return { name, kind: "dir" };
    if (st.isFile) return { name, kind: "file" };
  } catch { /* absent on this host */ }
  return null;
}

function hostLayout(): { top: Entry[]; etc: Entry[] } {
  if (!layout) {
    layout = {
      top: TOP.map((n) => inspect(`/${n}`, n)).filter((e) => e !== null),
      etc: ETC.map((n) => inspect(`/etc/${n}`, n)).filter((e) => e !== null),
    };
  }
  return layout;
}

const PASSWD =
  "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
const GROUP = "root:x:0:\nnogroup:x:65534:\n";
const HOSTS =
  "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n";

/** Appends the steps that populate `root` (a fresh tmpfs) with the host view. */
export function hostView(
  p: Program,
  root: string,
  helpers: { roBind: RoBind },
): void {
  const { top, etc } = hostLayout();
  for (const e of top) {
    const t = `${root}/${e.name}`;
    if (e.kind === "symlink") p.symlink(e.target!, t);
    else if (e.kind === "dir") {
      p.mkdir(t);
      helpers.roBind(p, `/${e.name}`, t, `/${e.name}`);
    }
  }
  for (const d of ["etc", "etc/ssl", "tmp", "proc", "dev", "root", "home"]) {
    p.mkdir(`${root}/${d}`, d === "root" ? 0o700 : 0o755);
  }
  p.mount("tmpfs", `${root}/tmp`, {
    type: "tmpfs",
    flags: 2 | 4,
    data: "mode=1777",
  });
  for (const e of etc) {
    const t = `${root}/etc/${e.name}`;
    if (e.kind === "symlink") p.symlink(e.target!, t);
    else if (e.kind === "dir") {
      p.mkdir(t);
      helpers.roBind(p, `/etc/${e.name}`, t, `/etc/${e.name}`);
    } else {
      p.writeFile(t, "", { create: true });
      helpers.roBind(p, `/etc/${e.name}`, t, `/etc/${e.name}`, false);
    }
  }
  p.writeFile(`${root}/etc/passwd`, PASSWD, { create: true });
  p.writeFile(`${root}/etc/group`, GROUP, { create: true });
  p.writeFile(`${root}/etc/hosts`, HOSTS, { create: true });
}
