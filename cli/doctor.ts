/**
 * `denobox doctor`: what this machine offers a container runtime, and what to do about each
 * missing piece. Reads /proc, /sys and /etc only; changes nothing.
 * @module
 */
import type { Context } from "./_commands.ts";

/** One finding. */
export interface Check {
  /** What was checked. */
  name: string;
  /** `ok`, `warn` (works with limits) or `fail` (a feature is unavailable). */
  level: "ok" | "warn" | "fail";
  /** What was found. */
  detail: string;
  /** What to do about it (empty when nothing). */
  fix: string;
}

function read(path: string): string | null {
  try {
    return Deno.readTextFileSync(path).trim();
  } catch {
    return null;
  }
}

function onPath(cmd: string): string | null {
  for (
    const d of (Deno.env.get("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin").split(
      ":",
    )
  ) {
    try {
      const p = `${d}/${cmd}`;
      Deno.statSync(p);
      return p;
    } catch { /* next */ }
  }
  for (const d of ["/usr/sbin", "/sbin"]) {
    try {
      Deno.statSync(`${d}/${cmd}`);
      return `${d}/${cmd}`;
    } catch { /* next */ }
  }
  return null;
}

function kernelAtLeast(release: string, major: number, minor: number): boolean {
  const m = /^(\d+)\.(\d+)/.exec(release);
  if (!m) return true;
  const [a, b] = [Number(m[1]), Number(m[2])];
  return a > major || (a === major && b >= minor);
}

function userName(uid: number): string | null {
  const passwd = read("/etc/passwd") ?? "";
  for (const line of passwd.split("\n")) {
    const f = line.split(":");
    if (f[2] === String(uid)) return f[0] ?? null;
  }
  return null;
}

/** Everything `doctor` checks, in order. Pure reads; safe as any user. */
export function diagnose(): Check[] {
  const out: Check[] = [];
  const release = Deno.osRelease();
  out.push({
    name: "kernel",
    level: kernelAtLeast(release, 5, 6) ? "ok" : "fail",
    detail: `Linux ${release} (${Deno.build.arch})`,
    fix: kernelAtLeast(release, 5, 6)
      ? ""
      : "denobox needs Linux 5.6 or newer (pidfd_open, openat2, clone3); upgrade the kernel",
  });

  // user namespaces
  const maxUserNs = read("/proc/sys/user/max_user_namespaces");
  const unprivClone = read("/proc/sys/kernel/unprivileged_userns_clone");
  const aaRestrict = read(
    "/proc/sys/kernel/apparmor_restrict_unprivileged_userns",
  );
  const blockers: string[] = [];
  const fixes: string[] = [];
  if (maxUserNs === "0") {
    blockers.push("user.max_user_namespaces=0 (no user namespaces at all)");
    fixes.push("sysctl -w user.max_user_namespaces=15000");
  }
  if (unprivClone === "0") {
    blockers.push("kernel.unprivileged_userns_clone=0 (root only)");
    fixes.push("sysctl -w kernel.unprivileged_userns_clone=1");
  }
  if (aaRestrict === "1") {
    blockers.push(
      "kernel.apparmor_restrict_unprivileged_userns=1 (AppArmor confines them)",
    );
    fixes.push(
      "sysctl -w kernel.apparmor_restrict_unprivileged_userns=0, or an AppArmor profile granting 'userns,' to deno",
    );
  }
  out.push({
    name: "user namespaces",
    level: blockers.length === 0 ? "ok" : maxUserNs === "0" ? "fail" : "warn",
    detail: blockers.length === 0
      ? `allowed for unprivileged users (user.max_user_namespaces=${
        maxUserNs ?? "?"
      })`
      : `blocked: ${blockers.join("; ")}`,
    fix: fixes.length
      ? `rootless containers need them: ${
        fixes.join("; ")
      } (persist it in /etc/sysctl.d/)`
      : "",
  });

  // cgroups
  const mountinfo = read("/proc/self/mountinfo") ?? "";
  const cgMounts = mountinfo.split("\n").map((l) => {
    const [pre, post] = l.split(" - ");
    return {
      point: pre?.split(" ")[4] ?? "",
      fstype: post?.split(" ")[0] ?? "",
      opts: post?.split(" ")[2] ?? "",
    };
  }).filter((m) => m.fstype === "cgroup" || m.fstype === "cgroup2");
  const unifiedRoot = cgMounts.find((m) =>
    m.fstype === "cgroup2" && m.point === "/sys/fs/cgroup"
  );
  const v1 = cgMounts.filter((m) => m.fstype === "cgroup");
  if (unifiedRoot) {
    const ctrls = read("/sys/fs/cgroup/cgroup.controllers") ?? "";
    const want = ["cpu", "memory", "pids", "io", "cpuset"];
    const missing = want.filter((c) => !ctrls.split(/\s+/).includes(c));
    out.push({
      name: "cgroups",
      level: missing.length ? "warn" : "ok",
      detail: `v2 (unified), controllers: ${ctrls || "none"}`,
      fix: missing.length
        ? `enable the ${
          missing.join(", ")
        } controller(s) (kernel config or cgroup_enable= boot parameter)`
        : "",
    });
    if (Deno.uid() !== 0) {
      const own = (read("/proc/self/cgroup") ?? "").split("\n").find((l) =>
        l.startsWith("0::")
      )
        ?.slice(3) ?? "/";
      const sub = read(`/sys/fs/cgroup${own}/cgroup.subtree_control`) ?? "";
      let writable = false;
      try {
        Deno.statSync(`/sys/fs/cgroup${own}/cgroup.procs`);
        writable = Deno.statSync(`/sys/fs/cgroup${own}`).uid === Deno.uid();
      } catch {
        /* not delegated */
      }
      out.push({
        name: "cgroup delegation",
        level: writable ? "ok" : "warn",
        detail: writable
          ? `this user owns ${own} (delegated: ${sub || "no controllers yet"})`
          : `this user does not own its cgroup ${own}`,
        fix: writable
          ? ""
          : "resource limits need a delegated cgroup: run inside 'systemd-run --user --scope -p Delegate=yes'",
      });
    }
  } else if (v1.length) {
    const names = v1.flatMap((m) =>
      m.opts.split(",").filter((o) =>
        [
          "cpu",
          "cpuacct",
          "memory",
          "pids",
          "blkio",
          "cpuset",
          "freezer",
          "devices",
        ].includes(o)
      )
    );
    const missing = ["cpu", "memory", "pids", "freezer"].filter((c) =>
      !names.includes(c)
    );
    const hybrid = cgMounts.some((m) => m.fstype === "cgroup2");
    out.push({
      name: "cgroups",
      level: missing.length ? "warn" : "ok",
      detail: `v1${hybrid ? " (hybrid, v2 also mounted)" : ""}, hierarchies: ${
        [...new Set(names)].join(", ")
      }`,
      fix: missing.length
        ? `mount the ${
          missing.join(", ")
        } hierarchies; or boot with systemd.unified_cgroup_hierarchy=1 for v2`
        : Deno.uid() === 0
        ? ""
        : "rootless limits on cgroup v1 are not possible; boot with systemd.unified_cgroup_hierarchy=1",
    });
  } else {
    out.push({
      name: "cgroups",
      level: "fail",
      detail: "no cgroup filesystem is mounted",
      fix: "mount -t cgroup2 none /sys/fs/cgroup",
    });
  }

  // overlayfs
  const fss = read("/proc/filesystems") ?? "";
  const hasOverlay = /\boverlay\b/.test(fss);
  const overlayModule = (() => {
    try {
      Deno.statSync(`/lib/modules/${release}/kernel/fs/overlayfs`);
      return true;
    } catch {
      return false;
    }
  })();
  out.push({
    name: "overlayfs",
    level: hasOverlay
      ? (Deno.uid() !== 0 && !kernelAtLeast(release, 5, 11) ? "warn" : "ok")
      : "fail",
    detail: hasOverlay
      ? `available${
        Deno.uid() !== 0
          ? kernelAtLeast(release, 5, 11)
            ? ", rootless too (Linux ≥ 5.11)"
            : ", root only (Linux < 5.11)"
          : ""
      }`
      : overlayModule
      ? "not loaded (module present)"
      : "not available",
    fix: hasOverlay
      ? ""
      : overlayModule
      ? "modprobe overlay"
      : "image containers need overlayfs: a kernel with CONFIG_OVERLAY_FS",
  });

  // nftables and forwarding, for --network bridge and -p
  const nft = onPath("nft");
  const nfModule =
    read("/proc/modules")?.split("\n").some((l) =>
      l.startsWith("nf_tables ")
    ) ||
    (() => {
      try {
        Deno.statSync("/sys/module/nf_tables");
        return true;
      } catch {
        return false;
      }
    })();
  const nfWorks = !nfModule && nft !== null && Deno.uid() === 0 && (() => {
    try {
      // read-only: lists tables, which needs a working nf_tables (built in or loaded)
      return new Deno.Command(nft, {
        args: ["list", "tables"],
        stdout: "null",
        stderr: "null",
      })
        .outputSync().success;
    } catch {
      return false;
    }
  })();
  const nfOk = nfModule || nfWorks;
  const fwd = read("/proc/sys/net/ipv4/ip_forward");
  out.push({
    name: "nftables",
    level: nft && nfOk ? "ok" : "warn",
    detail: `${nft ? `nft at ${nft}` : "no nft command"}; kernel nf_tables ${
      nfModule ? "loaded" : nfWorks ? "built in" : "not loaded"
    }; ip_forward=${fwd ?? "?"}`,
    fix: nft && nfOk
      ? ""
      : `published ports (-p) and bridge NAT need nftables: ${
        nft ? "" : "apt-get install nftables; "
      }${nfOk ? "" : "modprobe nf_tables"}`,
  });

  // subordinate ids
  const uid = Deno.uid() ?? 0;
  if (uid !== 0) {
    const name = userName(uid);
    const ranges = (file: string) =>
      (read(file) ?? "").split("\n").filter((l) => {
        const f = l.split(":");
        return f[0] === name || f[0] === String(uid);
      });
    const su = ranges("/etc/subuid"), sg = ranges("/etc/subgid");
    const helpers = onPath("newuidmap") && onPath("newgidmap");
    out.push({
      name: "subordinate ids",
      level: su.length && sg.length && helpers ? "ok" : "warn",
      detail: `subuid: ${su.join(", ") || "none"}; subgid: ${
        sg.join(", ") || "none"
      }; newuidmap ${helpers ? "present" : "missing"}`,
      fix: su.length && sg.length && helpers
        ? ""
        : `without them a rootless container maps only your own id (0 -> ${uid}): ` +
          `usermod --add-subuids 100000-165535 --add-subgids 100000-165535 ${
            name ?? uid
          }` +
          (helpers ? "" : "; apt-get install uidmap"),
    });
  } else {
    out.push({
      name: "subordinate ids",
      level: "ok",
      detail: "not needed as root",
      fix: "",
    });
  }

  // seccomp
  const seccompActions = read("/proc/sys/kernel/seccomp/actions_avail");
  out.push({
    name: "seccomp",
    level: seccompActions ? "ok" : "warn",
    detail: seccompActions
      ? `filters available (${seccompActions})`
      : "not available",
    fix: seccompActions
      ? ""
      : "a kernel with CONFIG_SECCOMP_FILTER is needed for --security-opt seccomp",
  });
  return out;
}

/** `denobox doctor`. */
export function doctorCommand(ctx: Context): Promise<number> {
  const checks = diagnose();
  if (ctx.options.str("format") === "json") {
    console.log(JSON.stringify(checks, null, 2));
  } else {
    const mark = { ok: "ok  ", warn: "WARN", fail: "FAIL" } as const;
    const width = Math.max(...checks.map((c) => c.name.length));
    for (const c of checks) {
      console.log(`[${mark[c.level]}] ${c.name.padEnd(width)}  ${c.detail}`);
      if (c.fix) console.log(`       ${" ".repeat(width)}  -> ${c.fix}`);
    }
  }
  return Promise.resolve(checks.some((c) => c.level === "fail") ? 1 : 0);
}
