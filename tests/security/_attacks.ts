/**
 * The escape suite's attacks as data, the lab they run in, and one function that runs an
 * attack (or its negative control) in a sandbox and returns what the probe saw.
 *
 * Every attack runs with default settings (spawn's defaults plus `defaultHardening()`) and must
 * fail with the errno given; its control switches off the protection that stops it and must
 * then succeed, so each test is known to test what it says. Attacks only touch what the lab
 * made: a temp dir with a secret file, a dummy `sleep`, a pty, a scratch cgroup.
 */
import { join } from "node:path";
import {
  close as closeFd,
  dup3,
  open as openFd,
  OpenFlag,
  type OwnedFd,
} from "denobox/libc";
import { type MountSpec, spawn, type SpawnOptions } from "../../sandbox/mod.ts";
import {
  defaultHardening,
  type HardeningOptions,
} from "../../sandbox/hardening.ts";
import { exists } from "../_helpers.ts";
import { ensureProbe, parseProbe, type ProbeResult } from "./_probe.ts";

/** Objects an attack may target, all made by the lab itself. */
export class Lab implements AsyncDisposable {
  readonly dir: string;
  readonly rootfs: string;
  /** A file outside the rootfs; its content is `token`. */
  readonly secret: string;
  readonly token: string;
  /** A dummy process of ours, on the host. */
  dummy: Deno.ChildProcess | null = null;
  /** file handle of `secret` (name_to_handle_at), hex */
  handle = "";
  /** a pty of ours: the holder keeps the master; `ptySlave` is an fd of the slave */
  ptyHolder: Deno.ChildProcess | null = null;
  ptySlave: OwnedFd | null = null;
  /** a directory fd of the secret's directory, open in this process */
  dirFd: OwnedFd | null = null;
  /** a copy of `dirFd` without FD_CLOEXEC: what a careless spawner would leak */
  leakedFd = -1;
  /** scratch cgroup: `parent` holds `box`, the sandbox joins `box` */
  cgroup: { parent: string; box: string } | null;
  readonly isRoot: boolean = Deno.uid() === 0;

  private constructor(
    dir: string,
    cgroup: { parent: string; box: string } | null,
  ) {
    this.dir = dir;
    this.rootfs = join(dir, "rootfs");
    this.secret = join(dir, "secret");
    this.token = `secret-${crypto.randomUUID()}`;
    this.cgroup = cgroup;
  }

  /** Builds the lab: a rootfs with the probe, the secret, a dummy, a pty, a handle. */
  static async create(
    options: { cgroup?: { parent: string; box: string } } = {},
  ): Promise<Lab> {
    const dir = await Deno.makeTempDir({ prefix: "denobox-escape-" });
    const lab = new Lab(dir, options.cgroup ?? null);
    try {
      await lab.#build();
    } catch (e) {
      await lab[Symbol.asyncDispose]();
      throw e;
    }
    return lab;
  }

  async #build(): Promise<void> {
    const probe = await ensureProbe();
    await Deno.chmod(this.dir, 0o755);
    for (
      const d of [
        "bin",
        "proc",
        "dev",
        "sys",
        "tmp",
        "mnt",
        "etc",
        "jail/inner",
      ]
    ) {
      await Deno.mkdir(join(this.rootfs, d), { recursive: true });
    }
    await Deno.copyFile(probe, join(this.rootfs, "bin", "probe"));
    await Deno.chmod(join(this.rootfs, "bin", "probe"), 0o755);
    if (this.isRoot) {
      // a setuid-root copy, for the privilege-gain attack
      const suid = join(this.rootfs, "bin", "suid-probe");
      await Deno.copyFile(probe, suid);
      await Deno.chown(suid, 0, 0);
      await Deno.chmod(suid, 0o4755);
    }
    await Deno.writeTextFile(
      join(this.rootfs, "etc", "passwd"),
      "root:x:0:0::/:/bin/probe\n",
    );
    // where the control binds the scratch cgroup's parent group
    if (this.cgroup) {
      await Deno.mkdir(join(this.rootfs, this.cgroup.parent), {
        recursive: true,
      });
    }
    await Deno.writeTextFile(this.secret, this.token + "\n");
    this.dummy = new Deno.Command("/bin/sleep", {
      args: ["3600"],
      stdout: "null",
      stderr: "null",
    })
      .spawn();
    const h = await new Deno.Command(probe, {
      args: ["handle", this.secret],
      stdout: "piped",
    })
      .output();
    const hr = parseProbe(new TextDecoder().decode(h.stdout));
    if (!hr.ok) {
      throw new Error(
        `name_to_handle_at on the lab secret failed: ${hr.errno}`,
      );
    }
    this.handle = hr.detail.trim();
    this.ptyHolder = new Deno.Command(probe, {
      args: ["pty-hold"],
      stdout: "piped",
    }).spawn();
    const reader = this.ptyHolder.stdout.getReader();
    let text = "";
    while (!text.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) throw new Error("pty-hold ended early");
      text += new TextDecoder().decode(value);
    }
    reader.releaseLock();
    const pr = parseProbe(text);
    if (!pr.ok) throw new Error(`Cannot make the lab pty: ${pr.errno}`);
    this.ptySlave = openFd(pr.detail.trim(), {
      flags: OpenFlag.O_RDWR | OpenFlag.O_NOCTTY,
    });
    this.dirFd = openFd(this.dir, {
      flags: OpenFlag.O_RDONLY | OpenFlag.O_DIRECTORY,
    });
    let n = 300;
    while (exists(`/proc/self/fd/${n}`)) n++;
    dup3(this.dirFd.fd, n, { cloexec: false });
    this.leakedFd = n;
  }

  /** The dummy's host pid. */
  get dummyPid(): number {
    return this.dummy!.pid;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.ptySlave?.close();
    this.dirFd?.close();
    if (this.leakedFd >= 0) closeFd(this.leakedFd);
    for (const child of [this.dummy, this.ptyHolder]) {
      if (!child) continue;
      try {
        child.kill("SIGKILL");
      } catch { /* already gone */ }
      await child.status;
      if (child === this.ptyHolder) await child.stdout.cancel().catch(() => {});
    }
    await Deno.remove(this.dir, { recursive: true });
  }
}

/** What the probe must report. */
export type Expect =
  | { errno: string } // refused with this errno
  | { ok: RegExp } // worked, detail matching
  | { notErrno: string }; // got past this protection (any other outcome)

/** Changes to the default settings, for one attack or its control. */
export interface Settings {
  spawn?: (lab: Lab) => Partial<SpawnOptions>;
  hardening?: HardeningOptions;
}

export interface Attack {
  /** What the attacker tries. */
  name: string;
  args: (lab: Lab) => string[];
  /** Settings both runs share (not a relaxation: e.g. the stdin the attack is about). */
  setup?: Settings;
  expect: Expect | ((lab: Lab) => Expect);
  /** The protection switched off, and what the probe then reports. */
  control: Settings & { off: string; expect: Expect | ((lab: Lab) => Expect) };
  /** Set when the control cannot work without root, with the reason. */
  controlNeedsRoot?: string;
  /** Set when the attack has no rootless form, with the reason. */
  rootOnly?: string;
}

const OFF = { seccomp: "unconfined" } as const;
const HOST_USERNS =
  "a rootless sandbox has its own user namespace, and the kernel refuses it " +
  "access to processes of the parent namespace (cap_ptrace_access_check) whatever we switch off";

/** The escape suite. */
export const ATTACKS: readonly Attack[] = [
  {
    name: "read a host file outside the rootfs",
    args: (lab) => ["read", lab.secret],
    expect: { errno: "ENOENT" },
    control: {
      off: "the rootfs boundary (the secret's directory bound in)",
      spawn: (lab) => ({
        mounts: [...tmpMounts(), {
          type: "bind",
          source: lab.dir,
          target: lab.dir,
        }],
      }),
      expect: (lab) => ({ ok: new RegExp(lab.token) }),
    },
  },
  {
    name: "write to the read-only rootfs",
    args: () => ["write", "/pwned"],
    expect: { errno: "EROFS" },
    control: {
      off: "readOnly",
      spawn: () => ({ readOnly: false }),
      expect: { ok: /written/ },
    },
  },
  {
    name: "mount a filesystem",
    args: () => ["mount", "/mnt"],
    expect: { errno: "EPERM" },
    control: {
      off: "seccomp and the CAP_SYS_ADMIN drop",
      hardening: { ...OFF, capAdd: ["SYS_ADMIN"] },
      expect: { ok: /mounted/ },
    },
  },
  {
    name: "unmount /proc",
    args: () => ["umount", "/proc"],
    expect: { errno: "EPERM" },
    control: {
      off: "seccomp and the CAP_SYS_ADMIN drop",
      hardening: { ...OFF, capAdd: ["SYS_ADMIN"] },
      expect: { ok: /unmounted/ },
    },
  },
  {
    name: "pivot_root",
    args: () => ["pivot-root", "/tmp"],
    expect: { errno: "EPERM" },
    control: {
      off: "seccomp and the CAP_SYS_ADMIN drop",
      hardening: { ...OFF, capAdd: ["SYS_ADMIN"] },
      expect: { ok: /pivoted/ },
    },
  },
  {
    name: "chroot escape (double chroot)",
    args: (lab) => ["chroot-escape", "/jail", lab.secret],
    expect: { errno: "ENOENT" },
    control: {
      off: "pivot_root (a chroot-only jail, made inside the sandbox)",
      spawn: () => ({
        argv: [
          "/bin/probe",
          "jail-then-escape",
          "/jail",
          "/inner",
          "/bin/probe",
        ],
      }),
      expect: { ok: /escaped/ },
    },
  },
  {
    name: "open_by_handle_at (shocker)",
    args: (lab) => ["shocker", "/", lab.handle],
    expect: { errno: "EPERM" },
    control: {
      off: "seccomp and the CAP_DAC_READ_SEARCH drop",
      hardening: { ...OFF, capAdd: ["DAC_READ_SEARCH"] },
      expect: (lab) => ({ ok: new RegExp(lab.token) }),
    },
    controlNeedsRoot:
      "open_by_handle_at needs CAP_DAC_READ_SEARCH in the initial user namespace",
  },
  {
    name: "/proc/<pid>/root of a host process",
    args: (lab) => ["read", `/proc/${lab.dummyPid}/root${lab.secret}`],
    expect: { errno: "ENOENT" },
    control: {
      off:
        "the pid namespace and the CAP_SYS_PTRACE drop (the kernel also wants the target's " +
        "capabilities to be a subset of ours)",
      hardening: { capAdd: ["SYS_PTRACE"] },
      spawn: () => ({ namespaces: { pid: false } }),
      expect: (lab) => ({ ok: new RegExp(lab.token) }),
    },
    controlNeedsRoot: HOST_USERNS,
  },
  {
    name: "/proc/self/fd and /proc/self/cwd climbing from leaked descriptors",
    args: (lab) => ["fd-climb", lab.secret.slice(lab.dir.length + 1)],
    expect: { errno: "ENOENT" },
    control: {
      off: "descriptor hygiene (a host directory fd handed in as stdin)",
      spawn: (lab) => ({ stdin: lab.dirFd!.fd }),
      expect: (lab) => ({ ok: new RegExp(lab.token) }),
    },
  },
  {
    name: "ptrace a host process",
    args: (lab) => ["ptrace", String(lab.dummyPid)],
    expect: { errno: "EPERM" },
    control: {
      off: "seccomp, the pid namespace and the CAP_SYS_PTRACE drop",
      hardening: { ...OFF, capAdd: ["SYS_PTRACE"] },
      spawn: () => ({ namespaces: { pid: false } }),
      expect: { ok: /attached/ },
    },
    controlNeedsRoot: HOST_USERNS,
  },
  {
    name: "signal a host process",
    args: (lab) => ["kill", String(lab.dummyPid), "0"],
    expect: { errno: "ESRCH" },
    control: {
      off: "the pid namespace",
      spawn: () => ({ namespaces: { pid: false } }),
      expect: { ok: /signalled/ },
    },
  },
  {
    name: "load a kernel module",
    args: () => ["finit-module", "/bin/probe"],
    expect: { errno: "EPERM" },
    control: {
      off:
        "seccomp and the CAP_SYS_MODULE drop (the probe is no module: the loader refuses it)",
      hardening: { ...OFF, capAdd: ["SYS_MODULE"] },
      expect: { notErrno: "EPERM" },
    },
    controlNeedsRoot:
      "module loading needs CAP_SYS_MODULE in the initial user namespace",
  },
  {
    name: "open a raw IP socket",
    args: () => ["raw-socket"],
    expect: { errno: "EPERM" },
    control: {
      off: "the CAP_NET_RAW drop",
      hardening: { capAdd: ["NET_RAW"] },
      expect: { ok: /raw/ },
    },
  },
  {
    name: "open a packet socket",
    args: () => ["packet-socket"],
    expect: { errno: "EPERM" },
    control: {
      off: "the CAP_NET_RAW drop",
      hardening: { capAdd: ["NET_RAW"] },
      expect: { ok: /packet/ },
    },
  },
  {
    name: "open an AF_VSOCK socket",
    args: () => ["vsock"],
    expect: { errno: "EPERM" },
    control: { off: "seccomp", hardening: OFF, expect: { notErrno: "EPERM" } },
  },
  {
    name: "keyctl",
    args: () => ["keyctl"],
    expect: { errno: "EPERM" },
    control: { off: "seccomp", hardening: OFF, expect: { ok: /keyring/ } },
  },
  {
    name: "bpf",
    args: () => ["bpf"],
    expect: { errno: "EPERM" },
    control: {
      off: "seccomp and the CAP_BPF drop",
      hardening: { ...OFF, capAdd: ["BPF"] },
      expect: { ok: /bpf map/ },
    },
    controlNeedsRoot:
      "unprivileged eBPF is disabled here (kernel.unprivileged_bpf_disabled)",
  },
  {
    name: "perf_event_open",
    args: () => ["perf"],
    expect: { errno: "EPERM" },
    control: { off: "seccomp", hardening: OFF, expect: { ok: /perf event/ } },
  },
  {
    name: "TIOCSTI into an inherited tty",
    args: () => ["tiocsti", "x", "0"],
    setup: { spawn: (lab) => ({ stdin: lab.ptySlave!.fd }) },
    expect: { errno: "EPERM" },
    control: {
      off: "the CAP_SYS_ADMIN drop (the new session alone still refuses)",
      hardening: { capAdd: ["SYS_ADMIN"] },
      expect: { ok: /injected/ },
    },
    controlNeedsRoot:
      "TIOCSTI on a foreign tty needs CAP_SYS_ADMIN in the initial user namespace",
  },
  {
    name: "join a parent cgroup (write its cgroup.procs)",
    args: (lab) => ["join-cgroup", join(lab.cgroup!.parent, "cgroup.procs")],
    setup: { spawn: (lab) => ({ cgroup: lab.cgroup!.box }) },
    expect: { errno: "ENOENT" },
    control: {
      off: "the cgroup filesystem's absence (the parent group bound in)",
      spawn: (lab) => ({
        mounts: [...tmpMounts(), {
          type: "bind",
          source: lab.cgroup!.parent,
          target: lab.cgroup!.parent,
        }],
      }),
      expect: { ok: /moved/ },
    },
  },
  {
    name: "change the host name",
    args: () => ["sethostname", "pwned"],
    expect: { errno: "EPERM" },
    control: {
      off:
        "seccomp and the CAP_SYS_ADMIN drop (in the sandbox's own UTS namespace)",
      hardening: { ...OFF, capAdd: ["SYS_ADMIN"] },
      expect: { ok: /renamed/ },
    },
  },
  {
    name: "unshare a new user namespace",
    args: () => ["unshare-user"],
    expect: { errno: "EPERM" },
    control: {
      off: "seccomp",
      hardening: OFF,
      expect: { ok: /new user namespace/ },
    },
  },
  {
    name: "gain root through a setuid binary",
    args: () => ["euid"],
    setup: {
      spawn: () => ({
        argv: ["/bin/suid-probe", "euid"],
        user: { uid: 1000, gid: 1000 },
      }),
    },
    expect: { ok: /euid=1000/ },
    control: {
      off: "no_new_privs (and seccomp, which needs it)",
      hardening: OFF,
      spawn: () => ({ noNewPrivs: false }),
      expect: { ok: /euid=0/ },
    },
    rootOnly:
      "a rootless sandbox maps a single uid: there is no other uid to gain",
  },
  {
    name: "make and use a device node",
    // /dev is the sandbox's own tmpfs, without nodev: a node made there works
    args: () => ["mknod", "/dev/zero2"],
    expect: { errno: "EPERM" },
    control: {
      off: "the CAP_MKNOD drop",
      hardening: { capAdd: ["MKNOD"] },
      expect: { ok: /device read/ },
    },
    controlNeedsRoot: "device nodes cannot be made inside a user namespace",
  },
  {
    name: "read a masked /proc file (/proc/interrupts)",
    args: () => ["read", "/proc/interrupts"],
    expect: { ok: /^ *$/ },
    control: {
      off: "maskedPaths",
      spawn: () => ({ maskedPaths: [] }),
      expect: { ok: /CPU0/ },
    },
  },
  {
    name: "write a read-only /proc/sys knob",
    args: () => ["write-text", "/proc/sys/net/ipv4/ip_forward", "1"],
    setup: { spawn: () => ({ namespaces: { net: true } }) },
    // rootless, the permission check refuses it before the read-only check does
    expect: (lab) => ({ errno: lab.isRoot ? "EROFS" : "EACCES" }),
    control: {
      off:
        "readonlyPaths and the CAP_NET_ADMIN drop (in the sandbox's own network namespace)",
      hardening: { capAdd: ["NET_ADMIN"] },
      spawn: () => ({ readonlyPaths: [] }),
      expect: { ok: /written/ },
    },
  },
];

function tmpMounts(): MountSpec[] {
  return [{ type: "tmpfs", target: "/tmp" }];
}

/** The outcome of one run: the probe's report, or how the sandbox died. */
export type Outcome = ProbeResult | { killed: string };

/** Runs `attack` (or its control) in a sandbox with default settings plus the given changes. */
export async function runAttack(
  lab: Lab,
  attack: Attack,
  control: boolean,
): Promise<Outcome> {
  const hardening: HardeningOptions = {
    ...attack.setup?.hardening,
    ...(control ? attack.control.hardening : {}),
  };
  const options = {
    argv: ["/bin/probe", ...attack.args(lab)],
    env: {},
    rootfs: lab.rootfs,
    readOnly: true,
    mounts: tmpMounts(),
    stdin: "null",
    stdout: "pipe",
    stderr: "pipe",
    ...defaultHardening(hardening),
    ...attack.setup?.spawn?.(lab),
    ...(control ? attack.control.spawn?.(lab) : {}),
  } as SpawnOptions;
  await using box = await spawn(options);
  const out = await box.output();
  const stdout = new TextDecoder().decode(out.stdout);
  if (out.status.signal) return { killed: out.status.signal };
  if (out.status.code !== 0) {
    throw new Error(
      `probe ${options.argv.join(" ")} exited ${out.status.code}: ${
        new TextDecoder().decode(out.stderr)
      }${stdout}`,
    );
  }
  return parseProbe(stdout);
}

/** Whether `outcome` is what `expect` asks; a reason when not. */
export function verdict(outcome: Outcome, expect: Expect): string | null {
  const seen = "killed" in outcome
    ? `killed by ${outcome.killed}`
    : outcome.ok
    ? `ok ${outcome.detail}`
    : `err ${outcome.errno}`;
  if ("errno" in expect) {
    return "ok" in outcome && !outcome.ok && outcome.errno === expect.errno
      ? null
      : `expected ${expect.errno}, saw ${seen}`;
  }
  if ("ok" in expect) {
    return "ok" in outcome && outcome.ok && expect.ok.test(outcome.detail)
      ? null
      : `expected success matching ${expect.ok}, saw ${seen}`;
  }
  return "ok" in outcome && !outcome.ok && outcome.errno === expect.notErrno
    ? `expected anything but ${expect.notErrno}, saw ${seen}`
    : null;
}
