/**
 * Every user mount type of `spawn({ mounts })` in one sandbox, checked from inside: its
 * /proc/self/mountinfo and what tests/sandbox/mountprobe.c sees. Shared by the root test and
 * the rootless one (run as nobody through runAsNobody). Plain JSON out.
 */
import { type MountSpec, SandboxSetupError, spawn } from "../../sandbox/mod.ts";

/** The host fixtures the test made (root): see mounts_test.ts. */
export interface MountFixtures {
  rootfs: string;
  /** Directory holding the static `mountprobe`. */
  probeDir: string;
  /** A world-writable directory for the read-write bind. */
  rwDir: string;
  /** A directory with a tmpfs submounted at `sub`, holding `sub/marker`. */
  recDir: string;
}

/** One /proc/self/mountinfo line, parsed. */
export interface MountInfo {
  target: string;
  /** Per-mount options (ro, nosuid...). */
  options: string[];
  fstype: string;
  /** Superblock options (size=, mode=...). */
  superOptions: string[];
}

/** The mounts of the probe sandbox, in order (all below a fresh /tmp). */
export function probeMounts(f: MountFixtures): MountSpec[] {
  return [
    { type: "tmpfs", target: "/tmp", size: "2m", mode: 0o1777 },
    { type: "tmpfs", target: "/tmp/small", size: 65536, mode: 0o700 },
    { type: "tmpfs", target: "/mnt", readOnly: true },
    { type: "bind", source: f.probeDir, target: "/tmp/bin", readOnly: true },
    { type: "bind", source: f.rwDir, target: "/tmp/rw" },
    { type: "bind", source: f.recDir, target: "/tmp/rec" },
    { type: "proc", target: "/tmp/proc2" },
    { type: "sysfs", target: "/tmp/sys" },
    { type: "mqueue", target: "/tmp/mq" },
    { type: "devpts", target: "/tmp/pts" },
  ];
}

const CHECKS: [string, string, string][] = [
  ["tmpStat", "statfs", "/tmp"],
  ["smallStat", "statfs", "/tmp/small"],
  ["roTmpfsCreate", "create", "/mnt/x"],
  ["roBindCreate", "create", "/tmp/bin/x"],
  ["rwBindCreate", "create", "/tmp/rw/from-sandbox"],
  ["sysCreate", "create", "/tmp/sys/x"],
  ["procCreate", "create", "/tmp/proc2/x"],
  ["mq", "mq", "/tmp/mq"],
  ["pty", "pty", "/tmp/pts"],
];

const SCRIPT = [
  "cat /proc/self/mountinfo",
  "echo ---",
  ...CHECKS.map(([k, cmd, path]) =>
    `echo "${k} $(/tmp/bin/mountprobe ${cmd} ${path})"`
  ),
  'echo "recMarker $(cat /tmp/rec/sub/marker)"',
  'echo "procPidns $(readlink /tmp/proc2/self/ns/pid) $(readlink /proc/self/ns/pid)"',
  'echo "procPids $(ls -d /tmp/proc2/[0-9]* | sort -t/ -k4 -n | tr "\\n" " ")"',
].join("; ");

/** Runs the probe sandbox and a non-recursive bind of `recDir`; plain JSON out. */
export async function mountsProbe(
  f: MountFixtures,
): Promise<Record<string, unknown>> {
  const dec = new TextDecoder();
  await using box = await spawn({
    argv: ["/bin/sh", "-c", SCRIPT],
    rootfs: f.rootfs,
    env: { PATH: "/bin" },
    mounts: probeMounts(f),
    stdout: "pipe",
    stderr: "pipe",
  });
  const out = await box.output();
  const [info = "", results = ""] = dec.decode(out.stdout).split("---\n");
  const mounts: MountInfo[] = info.trim().split("\n").map((l) => {
    const [left = "", right = ""] = l.split(" - ");
    const a = left.split(" "), b = right.split(" ");
    return {
      target: a[4]!,
      options: a[5]!.split(","),
      fstype: b[0]!,
      superOptions: (b[2] ?? "").split(","),
    };
  });
  const checks: Record<string, string> = {};
  for (const l of results.trim().split("\n")) {
    const i = l.indexOf(" ");
    checks[l.slice(0, i)] = l.slice(i + 1);
  }
  // the same directory bound without its submounts
  let nonRecursive: Record<string, unknown>;
  try {
    await using nr = await spawn({
      argv: ["/bin/sh", "-c", "ls -A /mnt/sub; echo end"],
      rootfs: f.rootfs,
      mounts: [
        { type: "bind", source: f.recDir, target: "/mnt", recursive: false },
      ],
      stdout: "pipe",
    });
    const o = await nr.output();
    nonRecursive = { listing: dec.decode(o.stdout), code: o.status.code };
  } catch (e) {
    if (!(e instanceof SandboxSetupError)) throw e;
    nonRecursive = { error: e.code, step: e.step };
  }
  return {
    code: out.status.code,
    stderr: dec.decode(out.stderr),
    mounts,
    checks,
    nonRecursive,
  };
}

if (import.meta.main) {
  console.log(JSON.stringify(await mountsProbe(JSON.parse(Deno.args[0]!))));
}
