// The fast path of `run --rm` in the foreground: no cgroup unless a limit (or --cgroups enabled)
// asks for one, while another shell still sees, lists, inspects and kills the container; the
// compiled seccomp filter cached on disk is the one the compiler makes; and the CLI's own path
// helpers agree with node:path (the CLI avoids node:path for its start-up cost).
import * as nodePath from "node:path";
import {
  assert,
  assertEquals,
  assertMatch,
  CACHE,
  denoRunArgs,
  IS_ROOT,
  REPO,
  runCommand,
} from "../_helpers.ts";
import {
  basename,
  dirname,
  isAbsolute,
  join,
  normalize,
  resolve,
} from "../../cli/_path.ts";
import { defaultHardening } from "denobox/sandbox";
import { isRunCommand } from "../../cli/run_main.ts";
import { cli, DENOBOX, until } from "./_cli.ts";

Deno.test("cli path helpers agree with node:path", () => {
  const cases = [
    "",
    "/",
    "//",
    "a",
    "a/",
    "/a",
    "/a/",
    "/a//",
    "a/b/../c",
    "/a/b/../../..",
    "../x",
    "./a/./b//c/",
    "a/..",
    "/a/b/c/..",
    "///a//b",
  ];
  for (const a of cases) {
    assertEquals(normalize(a), nodePath.normalize(a), `normalize(${a})`);
    assertEquals(basename(a), nodePath.basename(a), `basename(${a})`);
    assertEquals(isAbsolute(a), nodePath.isAbsolute(a), `isAbsolute(${a})`);
    if (!a.startsWith("//")) {
      assertEquals(dirname(a), nodePath.dirname(a), `dirname(${a})`);
    }
    for (const b of cases) {
      assertEquals(join(a, b), nodePath.join(a, b), `join(${a}, ${b})`);
      assertEquals(
        resolve("/cwd/x", a, b),
        nodePath.resolve("/cwd/x", a, b),
        `resolve(/cwd/x, ${a}, ${b})`,
      );
      assertEquals(
        resolve(a, b),
        nodePath.resolve(a, b),
        `resolve(${a}, ${b})`,
      );
    }
  }
});

Deno.test("cli run entry: only [--root DIR] run ... takes the fast way", () => {
  for (
    const [argv, want] of [
      [["run", "/bin/true"], true],
      [["--root", "/x", "run"], true],
      [["--root=/x", "--root", "/y", "run", "--help"], true],
      [["--root", "run", "run"], true],
      [["--root", "run"], false],
      [["ps", "run"], false],
      [["--version", "run"], false],
      [["-h"], false],
      [[], false],
    ] as const
  ) {
    assertEquals(isRunCommand(argv), want, JSON.stringify(argv));
  }
});

Deno.test("cli run entry: answers as the full CLI does, and hands it everything else", async () => {
  const root = await Deno.makeTempDir({ prefix: "denobox-entry-" });
  const deno = Deno.execPath();
  const main = join(REPO, "cli", "main.ts");
  const fast = join(REPO, "cli", "run_main.ts");
  try {
    for (
      const args of [
        ["run", "--help"],
        ["run", "--bogus", "/bin/true"],
        ["run", "--rm", "--cgroups", "maybe", "/bin/true"],
        ["--version"],
        ["ps", "-a"],
        ["nosuch"],
      ]
    ) {
      const want = await runCommand(deno, [
        ...denoRunArgs(main),
        "--root",
        root,
        ...args,
      ]);
      // the launcher (the bundled run entry for a `run`), and the entry from source
      for (
        const got of [
          await cli(root, args),
          await runCommand(deno, [
            ...denoRunArgs(fast),
            "--root",
            root,
            ...args,
          ]),
        ]
      ) {
        assertEquals(got.code, want.code, `${args.join(" ")}: ${got.stderr}`);
        assertEquals(got.stdout, want.stdout, args.join(" "));
        assertEquals(got.stderr, want.stderr, args.join(" "));
      }
    }
    // the bundled run entry hands a non-run command line to the full bundle beside it
    const current = (await Deno.readTextFile(join(CACHE, "cli", "current")))
      .trim();
    const bundled = join(CACHE, "cli", current, "run", "run_main.js");
    const ps = await runCommand(deno, [
      "run",
      "-A",
      "--no-check",
      "--quiet",
      "--no-lock",
      "--no-config",
      bundled,
      "--root",
      root,
      "ps",
      "-a",
    ]);
    assertEquals(ps.code, 0, ps.stderr);
    assertMatch(ps.stdout, /^CONTAINER ID\s+IMAGE/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

/** Starts `run --rm ARGS... /bin/sleep 300` in the foreground; returns it and its host PID. */
async function foreground(root: string, name: string, args: string[]) {
  const child = new Deno.Command(DENOBOX, {
    args: [
      "--root",
      root,
      "run",
      "--rm",
      "--name",
      name,
      ...args,
      "/bin/sleep",
      "300",
    ],
    stdout: "null",
    stderr: "null",
    stdin: "null",
  }).spawn();
  const pid = await until(`${name} to run`, async () => {
    const r = await cli(root, ["inspect", "--format", "{{.State.Pid}}", name]);
    const n = Number(r.stdout.trim());
    return r.code === 0 && n > 0 ? n : null;
  });
  return { child, pid };
}

Deno.test({
  name:
    "[root] run --rm in the foreground: no cgroup without limits, one with them",
  ignore: !IS_ROOT,
  async fn() {
    const root = await Deno.makeTempDir({ prefix: "denobox-fast-" });
    const children: Deno.ChildProcess[] = [];
    try {
      // seen from the host (inside, a cgroup namespace shows "/" either way)
      for (
        const [name, args, want] of [
          ["plain", [], false],
          ["limited", ["--pids-limit", "50"], true],
          ["forced", ["--cgroups", "enabled"], true],
        ] as const
      ) {
        const { child, pid } = await foreground(root, name, [...args]);
        children.push(child);
        const groups = Deno.readTextFileSync(`/proc/${pid}/cgroup`);
        assertEquals(
          /\/denobox\/ctr-[0-9a-f]{32}/.test(groups),
          want,
          `${name}: ${groups}`,
        );
        const k = await cli(root, ["kill", name]);
        assertEquals(k.code, 0, `${name}: ${k.stderr}`);
        assertEquals((await child.status).code, 137);
      }

      const conflict = await cli(root, [
        "run",
        "--rm",
        "--cgroups",
        "disabled",
        "-m",
        "64m",
        "/bin/true",
      ]);
      assertEquals(conflict.code, 125);
      assertMatch(conflict.stderr, /--cgroups disabled/);

      const bad = await cli(root, [
        "run",
        "--rm",
        "--cgroups",
        "maybe",
        "/bin/true",
      ]);
      assertEquals(bad.code, 125);
      assertMatch(bad.stderr, /--cgroups/);

      // nothing left: --rm removed every record
      assertEquals((await cli(root, ["ps", "-aq"])).stdout.trim(), "");
    } finally {
      for (const c of children) {
        try {
          c.kill("SIGKILL");
        } catch { /* exited */ }
        await c.status;
      }
      await Deno.remove(root, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "[root] a cgroup-less --rm container is seen, listed and killed from another shell",
  ignore: !IS_ROOT,
  async fn() {
    const root = await Deno.makeTempDir({ prefix: "denobox-fast-" });
    const fg = new Deno.Command(DENOBOX, {
      args: [
        "--root",
        root,
        "run",
        "--rm",
        "--name",
        "quick",
        "/bin/sh",
        "-c",
        "sleep 300 & wait",
      ],
      stdout: "null",
      stderr: "piped",
      stdin: "null",
    }).spawn();
    try {
      await until("ps to list it", async () => {
        const ps = await cli(root, ["ps", "--format", "json"]);
        return ps.stdout.includes('"quick"') ? true : null;
      });
      const inspect = JSON.parse(
        (await cli(root, ["inspect", "quick"])).stdout,
      );
      const info = Array.isArray(inspect) ? inspect[0] : inspect;
      assertEquals(JSON.stringify(info).includes("/denobox/ctr-"), false);

      // top finds its processes through its PID namespace: the shell and its sleep
      const top = await cli(root, ["top", "quick"]);
      assertEquals(top.code, 0, top.stderr);
      assertMatch(top.stdout, /sleep 300/);

      const stats = await cli(root, ["stats", "--no-stream", "quick"]);
      assertEquals(stats.code, 0, stats.stderr);
      assertMatch(stats.stdout, /quick\s+--/);

      const pause = await cli(root, ["pause", "quick"]);
      assert(pause.code !== 0);
      assertMatch(pause.stderr, /without a cgroup.*--cgroups enabled/);

      const kill = await cli(root, ["kill", "quick"]);
      assertEquals(kill.code, 0, kill.stderr);
      const status = await fg.status;
      assertEquals(status.code, 137);
      assertEquals((await cli(root, ["ps", "-aq"])).stdout.trim(), "");
    } finally {
      try {
        fg.kill("SIGKILL");
      } catch { /* exited */ }
      await fg.stderr.cancel().catch(() => {});
      await fg.status.catch(() => {});
      await Deno.remove(root, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "[root] the cached seccomp filter is the compiler's own, reused and keyed by capabilities",
  ignore: !IS_ROOT,
  async fn() {
    const root = await Deno.makeTempDir({ prefix: "denobox-fast-" });
    try {
      const dir = nodePath.join(root, "run", "seccomp");
      const files = () => {
        try {
          return [...Deno.readDirSync(dir)].map((e) => e.name).sort();
        } catch {
          return [];
        }
      };
      const r1 = await cli(root, ["run", "--rm", "/bin/true"]);
      assertEquals(r1.code, 0, r1.stderr);
      const first = files();
      assertEquals(first.length, 1);
      // the key, NUL, the rest of the hardening (capability masks, the filter's length, the
      // read-only paths), NUL, the filter
      const data = Deno.readFileSync(nodePath.join(dir, first[0]!));
      const keyEnd = data.indexOf(0);
      const metaEnd = data.indexOf(0, keyEnd + 1);
      const [bounding, effective, permitted, inheritable, length, ...readonly] =
        new TextDecoder().decode(data.slice(keyEnd + 1, metaEnd)).split(" ");
      const bpf = data.slice(metaEnd + 1);
      const h = defaultHardening({ capAdd: [], capDrop: [] });
      assert(h.seccomp instanceof Uint8Array);
      assertEquals(bpf, h.seccomp);
      assertEquals(Number(length), h.seccomp.length);
      assertEquals(readonly, [...h.readonlyPaths]);
      assertEquals(
        [bounding, effective, permitted, inheritable].map((m) => BigInt(m!)),
        [
          h.capabilities.bounding,
          h.capabilities.effective,
          h.capabilities.permitted,
          h.capabilities.inheritable,
        ],
      );

      // the same settings reuse the file; other capabilities get their own
      const r2 = await cli(root, ["run", "--rm", "/bin/true"]);
      assertEquals(r2.code, 0, r2.stderr);
      assertEquals(files(), first);
      const r3 = await cli(root, [
        "run",
        "--rm",
        "--cap-add",
        "SYS_PTRACE",
        "/bin/true",
      ]);
      assertEquals(r3.code, 0, r3.stderr);
      assertEquals(files().length, 2);

      // a damaged file is never used as a filter: it is recompiled (and the command runs)
      Deno.writeFileSync(
        nodePath.join(dir, first[0]!),
        data.slice(0, data.length - 3),
      );
      const r4 = await cli(root, [
        "run",
        "--rm",
        "/bin/sh",
        "-c",
        "grep Seccomp: /proc/self/status",
      ]);
      assertEquals(r4.code, 0, r4.stderr);
      assertMatch(r4.stdout, /Seccomp:\s+2/);
      assertEquals(Deno.readFileSync(nodePath.join(dir, first[0]!)), data);
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "[root] run in the foreground without a name: its record is made while the sandbox starts",
  ignore: !IS_ROOT,
  async fn() {
    const root = await Deno.makeTempDir({ prefix: "denobox-fast-" });
    try {
      const child = new Deno.Command(DENOBOX, {
        args: ["--root", root, "run", "--rm", "/bin/sleep", "300"],
        stdout: "null",
        stderr: "piped",
        stdin: "null",
      }).spawn();
      // listed, with a generated name, its PID and its running state
      const id = await until("the container to be listed", async () => {
        const r = await cli(root, ["ps", "-q", "--no-trunc"]);
        return r.stdout.trim() || null;
      });
      assertMatch(id, /^[0-9a-f]{64}$/);
      const pid = Number(
        (await cli(root, ["inspect", "--format", "{{.State.Pid}}", id]))
          .stdout.trim(),
      );
      assert(pid > 0 && Deno.statSync(`/proc/${pid}`).isDirectory);
      assertMatch(
        (await cli(root, ["inspect", "--format", "{{.Name}}", id])).stdout,
        /^\/?[a-z]+_[a-z]+/,
      );
      assertEquals((await cli(root, ["kill", id.slice(0, 12)])).code, 0);
      const { code } = await child.output();
      assertEquals(code, 137);
      assertEquals(
        (await cli(root, ["ps", "-aq"])).stdout,
        "",
        "--rm left nothing",
      );
      // without --rm, a command that cannot start is recorded with its status
      const nf = await cli(root, ["run", "/no/such/thing"]);
      assertEquals(nf.code, 127, nf.stderr);
      const ps = await cli(root, ["ps", "-a", "--format", "json"]);
      const rec = JSON.parse(ps.stdout.trim());
      assertEquals([rec.State, rec.ExitCode], ["exited", 127]);
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
});
