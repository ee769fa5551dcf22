/**
 * From `run`/`create` flags to a container config: every value checked, every error naming
 * the flag and the fix, before anything is created.
 * @module
 */
import { isAbsolute, join, resolve } from "./_path.ts";
import type { Options } from "./_args.ts";
import type { ContainerConfig, MountConfig, PortConfig } from "./_store.ts";
import { CliError } from "./_errors.ts";

/** The config `create` stores, before the store adds id, name and creation time. */
export type NewConfig = Omit<ContainerConfig, "id" | "name" | "created">;

/** What the flags name apart from the config: the image to resolve, the container's name. */
export interface RunRequest {
  config: NewConfig;
  name: string | undefined;
  /** The image reference, when the container uses one (its config fills the gaps later). */
  image: string | null;
  /** Whether a command was given (else the image's default command). */
  commandGiven: boolean;
}

/** The PATH a container gets unless its image or `-e` sets one. */
export const DEFAULT_PATH =
  "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

const ULIMITS = [
  "as",
  "core",
  "cpu",
  "data",
  "fsize",
  "locks",
  "memlock",
  "msgqueue",
  "nice",
  "nofile",
  "nproc",
  "rss",
  "rtprio",
  "rttime",
  "sigpending",
  "stack",
];

const bad = (flag: string, value: string, why: string) =>
  new CliError(`Invalid ${flag} ${JSON.stringify(value)}: ${why}`);

/** Parses `KEY=VAL` lines of an env file (comments and blank lines skipped). */
export function parseEnvFile(
  text: string,
  file: string,
): [string, string | null][] {
  const out: [string, string | null][] = [];
  text.split("\n").forEach((raw, i) => {
    const line = raw.replace(/\r$/, "");
    if (!line.trim() || line.trimStart().startsWith("#")) return;
    const eq = line.indexOf("=");
    const key = eq < 0 ? line.trim() : line.slice(0, eq);
    if (!key || /\s/.test(key)) {
      throw new CliError(
        `Invalid --env-file ${file} line ${i + 1}: expected KEY=VAL, got ${
          JSON.stringify(line)
        }`,
      );
    }
    out.push([key, eq < 0 ? null : line.slice(eq + 1)]);
  });
  return out;
}

/** `-u UID[:GID]` (numbers, or names found in `passwdRoot`/etc/passwd and group). */
export function parseUser(
  spec: string,
  passwdRoot: string | null,
): { uid: number; gid: number } {
  const [u = "", g] = spec.split(":", 2);
  const lookup = (file: string, name: string): string[] | null => {
    if (!passwdRoot) return null;
    try {
      const line = Deno.readTextFileSync(join(passwdRoot, "etc", file)).split(
        "\n",
      )
        .find((l) => l.split(":")[0] === name);
      return line ? line.split(":") : null;
    } catch {
      return null;
    }
  };
  let uid: number, gid: number | undefined;
  if (/^\d+$/.test(u)) uid = Number(u);
  else {
    const p = lookup("passwd", u);
    if (!p) {
      throw bad(
        "--user",
        spec,
        `no user ${u} in the container's /etc/passwd; give a numeric UID[:GID]`,
      );
    }
    uid = Number(p[2]);
    gid = Number(p[3]);
  }
  if (g !== undefined) {
    if (/^\d+$/.test(g)) gid = Number(g);
    else {
      const gr = lookup("group", g);
      if (!gr) {
        throw bad(
          "--user",
          spec,
          `no group ${g} in the container's /etc/group; give a numeric GID`,
        );
      }
      gid = Number(gr[2]);
    }
  }
  if (uid > 0xfffffffe || (gid ?? 0) > 0xfffffffe) {
    throw bad("--user", spec, "ids are at most 4294967294");
  }
  return { uid, gid: gid ?? uid };
}

/** `-v SRC:DST[:ro|rw]`. */
export function parseVolume(spec: string, cwd: string): MountConfig {
  const parts = spec.split(":");
  if (parts.length < 2 || parts.length > 3) {
    throw bad("--volume", spec, "expected SRC:DST[:ro]");
  }
  const [src = "", dst = "", mode = "rw"] = parts;
  if (!isAbsolute(src) && !src.startsWith(".")) {
    throw bad(
      "--volume",
      spec,
      "named volumes are not supported; give an absolute host path (or ./relative)",
    );
  }
  if (!isAbsolute(dst)) {
    throw bad(
      "--volume",
      spec,
      "the destination must be an absolute path in the container",
    );
  }
  const opts = mode.split(",");
  for (const o of opts) {
    if (!["ro", "rw", "z", "Z"].includes(o)) {
      throw bad("--volume", spec, `unknown option ${o} (ro or rw)`);
    }
  }
  const source = resolve(cwd, src);
  try {
    Deno.statSync(source);
  } catch {
    throw bad(
      "--volume",
      spec,
      `the host path ${source} does not exist; create it first`,
    );
  }
  return { type: "bind", source, target: dst, readOnly: opts.includes("ro") };
}

/** `--tmpfs DST[:size=64m,mode=1777]`. */
export function parseTmpfs(spec: string): MountConfig {
  const colon = spec.indexOf(":");
  const target = colon < 0 ? spec : spec.slice(0, colon);
  if (!isAbsolute(target)) {
    throw bad("--tmpfs", spec, "the destination must be an absolute path");
  }
  let size: string | null = null, mode: string | null = null;
  if (colon >= 0) {
    for (const o of spec.slice(colon + 1).split(",").filter(Boolean)) {
      const [k, v = ""] = o.split("=", 2);
      if (k === "size" && /^\d+(\.\d+)?[kmgKMG%]?$/.test(v)) size = v;
      else if (k === "mode" && /^[0-7]{3,4}$/.test(v)) mode = v;
      else if (
        !["rw", "noexec", "nosuid", "nodev", "exec", "suid", "dev"].includes(o)
      ) {
        throw bad("--tmpfs", spec, `unknown option ${o} (size=64m, mode=1777)`);
      }
    }
  }
  return { type: "tmpfs", target, size, mode };
}

/** `-p [IP:]HOST:CTR[/tcp|udp]`. */
export function parsePort(spec: string): PortConfig {
  const m = /^(?:(\d{1,3}(?:\.\d{1,3}){3}):)?(\d+):(\d+)(?:\/(tcp|udp))?$/.exec(
    spec,
  );
  if (!m) {
    throw bad(
      "--publish",
      spec,
      "expected [IP:]HOST_PORT:CONTAINER_PORT[/tcp|udp]",
    );
  }
  const host = Number(m[2]), container = Number(m[3]);
  for (const p of [host, container]) {
    if (p < 1 || p > 65535) {
      throw bad("--publish", spec, "ports are 1 to 65535");
    }
  }
  return {
    host,
    container,
    protocol: (m[4] as "tcp" | "udp" | undefined) ?? "tcp",
    hostIp: m[1] ?? null,
  };
}

/** `--ulimit nofile=1024[:2048]` (`-1` or `unlimited`: no limit). */
export function parseUlimit(
  spec: string,
): [string, { soft: number; hard: number }] {
  const m = /^([a-z]+)=(-?\d+|unlimited)(?::(-?\d+|unlimited))?$/.exec(spec);
  if (!m || !ULIMITS.includes(m[1]!)) {
    throw bad(
      "--ulimit",
      spec,
      `expected NAME=SOFT[:HARD] with NAME one of ${ULIMITS.join(", ")}`,
    );
  }
  const num = (
    v: string,
  ) => (v === "unlimited" || v === "-1" ? Infinity : Number(v));
  const soft = num(m[2]!), hard = num(m[3] ?? m[2]!);
  if (soft > hard) {
    throw bad("--ulimit", spec, "the soft limit is above the hard one");
  }
  return [m[1]!, { soft, hard }];
}

/** Sizes as Docker takes them: 512, 64k, 64m, 1.5g (binary units). */
export function parseBytes(flag: string, v: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?$/i.exec(v.trim());
  if (!m) throw bad(flag, v, "expected a size such as 64m or 1g");
  const mult = {
    "": 1,
    k: 1024,
    m: 1024 ** 2,
    g: 1024 ** 3,
    t: 1024 ** 4,
  }[m[2]!.toLowerCase()]!;
  const n = Math.floor(Number(m[1]) * mult);
  if (n < 6 * 1024 * 1024 && flag === "--memory") {
    throw bad(flag, v, "the minimum memory limit is 6m");
  }
  return n;
}

/**
 * Builds the config of a new container from `run`/`create` options and positionals. The
 * first positional is an image unless `--rootfs` is given, it follows `--`, or it is an
 * absolute path (then it is the command, on the read-only host view).
 */
export function buildConfig(
  options: Options,
  args: readonly string[],
  context: {
    cwd: string;
    env: Readonly<Record<string, string>>;
    detach: boolean;
    autoRemove: boolean;
  },
  dashDashAt: number | null,
): RunRequest {
  const rootfsFlag = options.str("rootfs");
  let image: string | null = null;
  let rest = [...args];
  if (
    rootfsFlag === undefined && rest.length > 0 && !rest[0]!.startsWith("/") &&
    dashDashAt !== 0
  ) {
    image = rest.shift()!;
    if (rest[0] === "--") rest.shift();
  }
  let rootfs: string | null = null;
  if (rootfsFlag !== undefined) {
    rootfs = resolve(context.cwd, rootfsFlag);
    let st: Deno.FileInfo;
    try {
      st = Deno.statSync(rootfs);
    } catch {
      throw bad("--rootfs", rootfsFlag, "no such directory");
    }
    if (!st.isDirectory) throw bad("--rootfs", rootfsFlag, "not a directory");
  }
  const tty = options.bool("tty");
  const env: Record<string, string> = {};
  for (const file of options.list("env-file")) {
    let text: string;
    try {
      text = Deno.readTextFileSync(resolve(context.cwd, file));
    } catch (e) {
      throw new CliError(
        `Cannot read --env-file ${file}: ${e instanceof Error ? e.message : e}`,
      );
    }
    for (const [k, v] of parseEnvFile(text, file)) {
      const val = v ?? context.env[k];
      if (val !== undefined) env[k] = val;
    }
  }
  for (const e of options.list("env")) {
    const eq = e.indexOf("=");
    const key = eq < 0 ? e : e.slice(0, eq);
    if (!key) throw bad("--env", e, "expected KEY=VAL");
    const val = eq < 0 ? context.env[key] : e.slice(eq + 1);
    if (val !== undefined) env[key] = val;
  }
  const workdir = options.str("workdir") ?? "";
  if (workdir && !isAbsolute(workdir)) {
    throw bad(
      "--workdir",
      workdir,
      "must be an absolute path in the container",
    );
  }
  const userSpec = options.str("user");
  const user = userSpec === undefined
    ? null
    : parseUser(userSpec, image ? null : rootfs ?? "/");
  const mounts = [
    ...options.list("volume").map((v) => parseVolume(v, context.cwd)),
    ...options.list("tmpfs").map(parseTmpfs),
  ];
  const memFlag = options.str("memory");
  const memory = memFlag === undefined ? null : parseBytes("--memory", memFlag);
  const cpusFlag = options.str("cpus");
  let cpus: number | null = null;
  if (cpusFlag !== undefined) {
    cpus = Number(cpusFlag);
    const max = navigator.hardwareConcurrency;
    if (!(cpus > 0) || cpus < 0.01) {
      throw bad(
        "--cpus",
        cpusFlag,
        "expected a number of CPUs such as 0.5 or 2",
      );
    }
    if (cpus > max) {
      throw bad("--cpus", cpusFlag, `this machine has ${max} CPUs`);
    }
  }
  const pidsFlag = options.str("pids-limit");
  let pidsLimit: number | null = null;
  if (pidsFlag !== undefined) {
    pidsLimit = Number(pidsFlag);
    if (!Number.isInteger(pidsLimit) || (pidsLimit < 1 && pidsLimit !== -1)) {
      throw bad(
        "--pids-limit",
        pidsFlag,
        "expected a positive whole number (or -1: unlimited)",
      );
    }
    if (pidsLimit === -1) pidsLimit = null;
  }
  const cgroupsFlag = options.str("cgroups");
  if (
    cgroupsFlag !== undefined && cgroupsFlag !== "enabled" &&
    cgroupsFlag !== "disabled"
  ) {
    throw bad("--cgroups", cgroupsFlag, "use enabled or disabled");
  }
  const limited = memory !== null || cpus !== null || pidsLimit !== null;
  // Rootless on cgroup v1 (or a hybrid machine) there is nothing to delegate: like Podman,
  // run without a cgroup unless asked, and say why when limits are asked for.
  const rootlessV1 = Deno.uid() !== 0 && !unifiedCgroupRoot();
  if (rootlessV1 && limited && cgroupsFlag !== "disabled") {
    throw new CliError(
      "Cannot apply -m, --cpus or --pids-limit rootless on cgroup v1: only root can create " +
        "groups there; run as root, or on a cgroup v2 machine with a delegated subtree " +
        "(systemd-run --user --scope -p Delegate=yes)",
    );
  }
  if (cgroupsFlag === "disabled" && limited) {
    throw new CliError(
      "Cannot apply -m, --cpus or --pids-limit with --cgroups disabled: " +
        "limits live in the container's cgroup; drop one or the other",
    );
  }
  // a foreground --rm container without limits has no use for a cgroup that would justify
  // its cost (the first migration into a cgroup waits for an RCU grace period)
  const cgroup = cgroupsFlag === undefined
    ? !rootlessV1 && !(context.autoRemove && !context.detach && !limited)
    : cgroupsFlag === "enabled";
  const ports = options.list("publish").map(parsePort);
  const netFlag = options.str("network");
  let network: ContainerConfig["network"];
  if (netFlag === undefined) network = ports.length ? "bridge" : "none";
  else if (netFlag === "none" || netFlag === "host" || netFlag === "bridge") {
    network = netFlag;
  } else throw bad("--network", netFlag, "use none, host or bridge");
  if (ports.length && network !== "bridge") {
    throw new CliError(
      `Cannot publish ports with --network ${network}: use --network bridge`,
    );
  }
  const capAdd = options.list("cap-add"), capDrop = options.list("cap-drop");
  let seccomp: string | null = null;
  for (const o of options.list("security-opt")) {
    const [k, v = ""] = o.split(/[=:]/, 2) as [string, string?];
    if (k === "seccomp") {
      if (v === "unconfined") seccomp = "unconfined";
      else {
        const path = resolve(context.cwd, v);
        try {
          JSON.parse(Deno.readTextFileSync(path));
        } catch (e) {
          throw bad(
            "--security-opt",
            o,
            `cannot read the profile as JSON: ${
              e instanceof Error ? e.message : e
            }`,
          );
        }
        seccomp = path;
      }
    } else if (k !== "no-new-privileges") {
      throw bad(
        "--security-opt",
        o,
        "supported: seccomp=FILE, seccomp=unconfined, no-new-privileges",
      );
    }
  }
  const ulimits = Object.fromEntries(options.list("ulimit").map(parseUlimit));
  const stopFlag = options.str("stop-timeout");
  let stopTimeout = 10;
  if (stopFlag !== undefined) {
    stopTimeout = Number(stopFlag);
    if (!Number.isInteger(stopTimeout) || stopTimeout < -1) {
      throw bad(
        "--stop-timeout",
        stopFlag,
        "expected whole seconds (-1: wait forever)",
      );
    }
  }
  const hostname = options.str("hostname") ?? "";
  if (hostname && !/^[a-zA-Z0-9]([a-zA-Z0-9.-]{0,62})$/.test(hostname)) {
    throw bad(
      "--hostname",
      hostname,
      "letters, digits, '.' and '-', at most 64",
    );
  }
  const commandGiven = rest.length > 0;
  if (!commandGiven && !image) rest = ["/bin/sh"];
  return {
    config: {
      image,
      imageId: null,
      rootfs,
      argv: rest,
      env,
      workdir,
      user,
      hostname,
      readOnly: options.bool("read-only"),
      mounts,
      memory,
      cpus,
      pidsLimit,
      cgroup,
      network,
      ports,
      capAdd,
      capDrop,
      seccomp,
      ulimits,
      stopTimeout,
      tty,
      interactive: options.bool("interactive"),
      autoRemove: context.autoRemove,
    },
    name: options.str("name"),
    image,
    commandGiven,
  };
}

/** Whether /sys/fs/cgroup is a cgroup v2 root (a pure v2 machine), not v1 or hybrid. */
function unifiedCgroupRoot(): boolean {
  try {
    Deno.statSync("/sys/fs/cgroup/cgroup.controllers");
    return true;
  } catch {
    return false;
  }
}
