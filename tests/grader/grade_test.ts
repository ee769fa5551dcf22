/**
 * The grader against real programs: every verdict, the figures, and the guarantee that
 * nothing of a run is left (processes, cgroups, mounts, fds, directories).
 */
import {
  assert,
  assertEquals,
  assertMatch,
  childPids,
  IS_ROOT,
  runAsNobody,
} from "../_helpers.ts";
import {
  grade,
  type GradeResult,
  GraderPool,
  type GraderPoolOptions,
} from "denobox/grader";
import { formatMeta } from "../../grader/meta.ts";
import { WORK_SOURCE } from "../../grader/_workdir.ts";
import { fixture, pidsRunning, poolGroups, poolRoots } from "./_fixtures.ts";

const TAG = "[root]";
const dec = new TextDecoder();
const text = (b: Uint8Array | null) => b === null ? "" : dec.decode(b);

/** Mount lines of a grader's work tmpfs in this namespace; none should ever exist. */
function graderMounts(): string[] {
  return Deno.readTextFileSync("/proc/self/mountinfo").split("\n").filter((l) =>
    l.includes(` - tmpfs ${WORK_SOURCE} `)
  );
}

// spawn() keeps a few fds for the whole process (its epoll loop, the init executable): made by
// a first run, before any test counts fds.
let warm: Promise<unknown> | null = null;

/** Children of this process that belong to a grader: in a pool's cgroup, or its watchdog. */
function graderChildren(): number[] {
  return childPids().filter((pid) => {
    try {
      return Deno.readTextFileSync(`/proc/${pid}/cgroup`).includes(
        "/grader-",
      ) ||
        Deno.readTextFileSync(`/proc/${pid}/cmdline`).includes(
          "denobox-grader-watchdog",
        );
    } catch {
      return false;
    }
  });
}

/**
 * This process's fds that belong to a grader: files of a pool's cgroups, and the detached
 * tmpfs work directories (owned by a slot uid, 60000 and up). `deno test --parallel` runs
 * other test modules in this same process, so a plain count of fds would see theirs too.
 */
function graderFds(): string[] {
  const out: string[] = [];
  for (const e of Deno.readDirSync("/proc/self/fd")) {
    try {
      const link = Deno.readLinkSync(`/proc/self/fd/${e.name}`);
      if (link.includes("/grader-")) out.push(`${e.name} -> ${link}`);
      else if (link === "/") {
        const uid = Deno.statSync(`/proc/self/fd/${e.name}`).uid!;
        if (uid >= 60000 && uid < 60100) {
          out.push(`${e.name} -> work dir of uid ${uid}`);
        }
      }
    } catch { /* closed meanwhile */ }
  }
  return out;
}

/** Runs `fn` with a fresh pool and checks that nothing was left behind. */
async function withPool(
  fn: (pool: GraderPool) => Promise<void>,
  concurrency = 2,
  options: GraderPoolOptions = {},
): Promise<void> {
  await (warm ??= grade({ argv: ["true"] }));
  {
    await using pool = new GraderPool({ ...options, concurrency });
    await fn(pool);
  }
  assertEquals(poolGroups(Deno.pid), [], "pool cgroups left behind");
  assertEquals(graderFds(), [], "fds leaked");
  assertEquals(graderMounts(), [], "mounts leaked");
  assertEquals(poolRoots(Deno.pid), [], "prepared root left");
  assertEquals(graderChildren(), [], "child processes left");
}

function explain(r: GradeResult): string {
  return JSON.stringify({
    ...r,
    stdout: text(r.stdout).slice(0, 300),
    stderr: text(r.stderr).slice(0, 300),
  });
}

const sh = (script: string) => ["/bin/sh", "-c", script];

Deno.test({
  name:
    `${TAG} grade: OK, RE (exit 3), SG (kill -SEGV), with figures and the meta file`,
  ignore: !IS_ROOT,
  async fn() {
    await withPool(async (pool) => {
      const ok = await pool.grade({
        argv: sh("echo hello; echo err >&2; id -u"),
        timeLimit: 2,
      });
      assertEquals(ok.status, "OK", explain(ok));
      assertEquals(text(ok.stdout), "hello\n60000\n");
      assertEquals(text(ok.stderr), "err\n");
      assertEquals([ok.exitCode, ok.signal, ok.killed, ok.oomKilled], [
        0,
        null,
        false,
        false,
      ]);
      assert(ok.memoryPeak > 0 && ok.wallTime > 0, explain(ok));
      assert(
        Math.abs(ok.userTime + ok.sysTime - ok.cpuTime) < 0.02,
        explain(ok),
      );

      const re = await pool.grade({ argv: sh("exit 3"), timeLimit: 2 });
      assertEquals([re.status, re.exitCode, re.message], [
        "RE",
        3,
        "Exited with error status 3",
      ]);
      assert(
        formatMeta(re).includes("exitcode:3\nstatus:RE\n"),
        formatMeta(re),
      );

      const sg = await pool.grade({ argv: sh("kill -SEGV $$"), timeLimit: 2 });
      assertEquals([sg.status, sg.signal, sg.exitCode, sg.killed], [
        "SG",
        "SIGSEGV",
        null,
        false,
      ], explain(sg));
      assert(
        formatMeta(sg).includes("exitsig:11\nstatus:SG\n"),
        formatMeta(sg),
      );
    });
  },
});

Deno.test({
  name:
    `${TAG} grade: a busy loop is TO (cpu) with cpuTime within 5 % of the limit`,
  ignore: !IS_ROOT,
  async fn() {
    await withPool(async (pool) => {
      const r = await pool.grade({
        argv: sh("while :; do :; done"),
        timeLimit: 1,
        wallTimeLimit: 30,
      });
      assertEquals([r.status, r.timeout, r.killed, r.signal], [
        "TO",
        "cpu",
        true,
        "SIGKILL",
      ], explain(r));
      assert(
        r.cpuTime >= 1 && r.cpuTime <= 1.05,
        `cpuTime ${r.cpuTime} not within 5 % of 1 s`,
      );
      assert(
        formatMeta(r).includes(
          "killed:1\nexitsig:9\nstatus:TO\nmessage:Time limit exceeded\n",
        ),
      );
    });
  },
});

Deno.test({
  name:
    `${TAG} grade: sleep is TO (wall) with little CPU time; extra time lets it run on`,
  ignore: !IS_ROOT,
  async fn() {
    await withPool(async (pool) => {
      const r = await pool.grade({
        argv: ["sleep", "30"],
        timeLimit: 1,
        wallTimeLimit: 0.3,
      });
      assertEquals(
        [r.status, r.timeout, r.killed],
        ["TO", "wall", true],
        explain(r),
      );
      assert(r.wallTime >= 0.3 && r.wallTime < 5, explain(r));
      assert(r.cpuTime < 0.1, explain(r));
      assert(
        formatMeta(r).includes("message:Time limit exceeded (wall clock)"),
      );
      // with extra time, a program ending inside it is still TO, and the real time shows
      const x = await pool.grade({
        argv: ["sleep", "0.5"],
        wallTimeLimit: 0.3,
        extraTime: 2,
      });
      assertEquals([x.status, x.timeout, x.killed, x.exitCode], [
        "TO",
        "wall",
        false,
        0,
      ], explain(x));
      assert(x.wallTime >= 0.5, explain(x));
      // aborting kills the run
      const ac = new AbortController();
      setTimeout(() => ac.abort(), 100);
      const ab = await pool.grade({ argv: ["sleep", "30"], signal: ac.signal });
      assertEquals(
        [ab.status, ab.message, ab.killed],
        ["XX", "Aborted", true],
        explain(ab),
      );
    });
  },
});

Deno.test({
  name:
    `${TAG} [cgroup] grade: allocating past the memory limit is ML, from the cgroup's OOM counter`,
  ignore: !IS_ROOT,
  async fn() {
    const alloc = await fixture("alloc");
    await withPool(async (pool) => {
      const r = await pool.grade({
        argv: ["./alloc"],
        files: [{ path: "alloc", source: alloc, mode: 0o755 }],
        memoryLimit: "32m",
        timeLimit: 5,
      });
      assertEquals(
        [r.status, r.oomKilled, r.signal],
        ["ML", true, "SIGKILL"],
        explain(r),
      );
      assert(
        r.memoryPeak >= 30 * 2 ** 20 && r.memoryPeak <= 34 * 2 ** 20,
        explain(r),
      );
      assert(formatMeta(r).includes("cg-oom-killed:1\n"), formatMeta(r));
      // a SIGKILL that is not the OOM killer's is SG, never ML
      const k = await pool.grade({
        argv: sh("kill -KILL $$"),
        memoryLimit: "32m",
      });
      assertEquals([k.status, k.oomKilled], ["SG", false], explain(k));
    });
  },
});

Deno.test({
  name:
    `${TAG} grade: forks stop at the process limit; a fork bomb leaves the host unaffected`,
  ignore: !IS_ROOT,
  async fn() {
    const forks = await fixture("forks");
    await withPool(async (pool) => {
      const files = [{ path: "forks", source: forks, mode: 0o755 }];
      const r = await pool.grade({
        argv: ["./forks"],
        files,
        processLimit: 10,
        timeLimit: 5,
      });
      assertEquals(r.status, "OK", explain(r));
      const n = Number(text(r.stdout));
      // RLIMIT_NPROC of the run's uid: the program and 9 more (the init, root, is not one)
      assertEquals(n, 9, `forks succeeded: ${n}`);
      const bomb = await pool.grade({
        argv: ["./forks", "bomb"],
        files,
        processLimit: 10,
        wallTimeLimit: 1,
      });
      assertEquals([bomb.status, bomb.timeout], ["TO", "wall"], explain(bomb));
      const host = await new Deno.Command("/bin/true").output();
      assert(host.success);
    });
  },
});

Deno.test({
  name:
    `${TAG} grade: printing forever is OL with exactly the limit's bytes kept`,
  ignore: !IS_ROOT,
  async fn() {
    await withPool(async (pool) => {
      const r = await pool.grade({
        argv: ["yes"],
        outputLimit: 100_001,
        timeLimit: 5,
      });
      assertEquals(
        [r.status, r.outputTruncated, r.killed],
        ["OL", true, true],
        explain(r),
      );
      assertEquals(r.stdout!.length, 100_001);
      assertEquals(r.outputBytes.stdout, 100_001);
      assertEquals(text(r.stdout), "y\n".repeat(50_000) + "y");
      // exactly the limit is fine
      const at = await pool.grade({
        argv: sh("head -c 5000 /dev/zero"),
        outputLimit: 5000,
      });
      assertEquals([at.status, at.stdout!.length, at.outputTruncated], [
        "OK",
        5000,
        false,
      ], explain(at));
      const err = await pool.grade({
        argv: sh("head -c 5001 /dev/zero >&2"),
        outputLimit: 5000,
      });
      assertEquals([err.status, err.stderr!.length, err.message], [
        "OL",
        5000,
        "Output limit exceeded (stderr)",
      ]);
    });
  },
});

Deno.test({
  name: `${TAG} grade: a daemonized grandchild is gone after the run`,
  ignore: !IS_ROOT,
  async fn() {
    const marker = ["sleep", "987.654"];
    await withPool(async (pool) => {
      const r = await pool.grade({
        argv: sh(
          "setsid sh -c 'sleep 987.654 </dev/null >/dev/null 2>&1 &' ; sleep 0.2; echo parent done",
        ),
        timeLimit: 2,
      });
      assertEquals(
        [r.status, text(r.stdout)],
        ["OK", "parent done\n"],
        explain(r),
      );
      assertEquals(pidsRunning(marker), []);
    });
  },
});

Deno.test({
  name: `${TAG} grade: two busy threads report the CPU time of both`,
  ignore: !IS_ROOT,
  async fn() {
    const threads = await fixture("threads");
    await withPool(async (pool) => {
      // each thread spins until it has used 0.5 s of its own CPU time: 1 s in total, about
      // 0.5 s of wall time on an idle 2-core machine (more when other work shares the CPUs)
      const r = await pool.grade({
        argv: ["./threads", "0.5"],
        files: [{ path: "threads", source: threads, mode: 0o755 }],
        timeLimit: 5,
      });
      assertEquals(r.status, "OK", explain(r));
      assert(
        r.cpuTime >= 1.0 && r.cpuTime <= 1.2,
        `cpuTime ${r.cpuTime}, wall ${text(r.stdout)}`,
      );
      assert(
        r.cpuTime > r.wallTime || navigator.hardwareConcurrency < 2 ||
          r.wallTime > 0.9,
        explain(r),
      );
    });
  },
});

Deno.test({
  name:
    `${TAG} grade: files in, files out (never a symlink), stdin from bytes and from a file`,
  ignore: !IS_ROOT,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      await Deno.writeTextFile(`${dir}/in.txt`, "3 4\n");
      await withPool(async (pool) => {
        const r = await pool.grade({
          argv: sh(
            "read a b; echo $((a+b)) > sum.txt; cat data/x.txt; ln -s /etc/shadow leak; cat - ",
          ),
          files: [{ path: "data/x.txt", data: "X\n" }],
          copyOut: ["sum.txt", "leak", "nothing"],
          stdin: { path: `${dir}/in.txt` },
        });
        assertEquals(r.status, "OK", explain(r));
        assertEquals(Object.keys(r.files), ["sum.txt"]);
        assertEquals(text(r.files["sum.txt"]!), "7\n");
        assertEquals(text(r.stdout), "X\n");
        const big = "z".repeat(300_000);
        const cat = await pool.grade({ argv: ["cat"], stdin: big });
        assertEquals([cat.status, text(cat.stdout).length], ["OK", big.length]);
        const none = await pool.grade({ argv: ["cat"] });
        assertEquals([none.status, text(none.stdout)], ["OK", ""]);
        // a program that never reads a big stdin is fine too
        const no = await pool.grade({ argv: ["true"], stdin: big });
        assertEquals(no.status, "OK", explain(no));
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    `${TAG} grade: the box is read-only except its tmpfs dirs, has no network, and runs no command it cannot find`,
  ignore: !IS_ROOT,
  async fn() {
    await withPool(async (pool) => {
      const r = await pool.grade({
        argv: sh(
          "touch /etc/x 2>/dev/null && echo etc-writable; touch /box/a /tmp/b && echo tmp-ok; " +
            "cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' '; hostname",
        ),
      });
      assertEquals(r.status, "OK", explain(r));
      assertEquals(text(r.stdout), "tmp-ok\nlo\nbox\n");
      const missing = await pool.grade({ argv: ["/nonexistent/prog"] });
      assertEquals(missing.status, "XX", explain(missing));
      assert(missing.message.includes("/nonexistent/prog"), missing.message);
    });
  },
});

Deno.test({
  name:
    `${TAG} grade: the runs of one slot each get their own CPU and memory figures`,
  ignore: !IS_ROOT,
  async fn() {
    const touch = await fixture("touch64");
    await withPool(async (pool) => {
      // concurrency 1: every run takes slot 0 (first out), so its groups, kept or not, serve
      // each run in turn; a busy run's figures must not reach the next one's
      const busy = await pool.grade({
        timeLimit: 5,
        argv: sh("i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done"),
      });
      assertEquals(busy.status, "OK", explain(busy));
      assert(busy.cpuTime > 0.1, explain(busy));
      const hog = await pool.grade({
        memoryLimit: "256m",
        argv: ["./touch64"],
        files: [{ path: "touch64", source: touch, mode: 0o755 }],
      });
      assertEquals(hog.status, "OK", explain(hog));
      assert(hog.memoryPeak > 50e6, explain(hog));
      const quiet = await pool.grade({ argv: ["/bin/true"] });
      assertEquals(quiet.status, "OK", explain(quiet));
      assert(quiet.cpuTime < 0.05, explain(quiet));
      assert(quiet.userTime + quiet.sysTime <= quiet.cpuTime + 0.001);
      assert(quiet.memoryPeak < 20e6, explain(quiet));
      if (
        busy.cpuTime > 0 &&
        poolGroups(Deno.pid).some((g) => g.includes("/cpuacct/"))
      ) {
        // v1: the slot's CPU group lives as long as the pool
        const slots = poolGroups(Deno.pid).flatMap((g) =>
          [...Deno.readDirSync(g)].filter((e) => e.isDirectory).map((e) =>
            e.name
          )
        );
        assertEquals(slots, ["slot-0"]);
      }
    }, 1);
  },
});

Deno.test({
  name:
    `${TAG} grade: two runs at once never see each other's files or processes`,
  ignore: !IS_ROOT,
  async fn() {
    await withPool(async (pool) => {
      const script = (me: string) =>
        sh(
          `echo ${me} > /box/mine; echo ${me} > /tmp/mine; sleep 0.3; ` +
            `cat /box/mine /tmp/mine; (ls /box; ls /tmp) | tr '\\n' ' '; echo; ls /proc | grep -c '^[0-9]'`,
        );
      const [a, b] = await Promise.all([
        pool.grade({ argv: script("A") }),
        pool.grade({ argv: script("B") }),
      ]);
      assertEquals(a.status, "OK", explain(a));
      assertEquals(b.status, "OK", explain(b));
      const [la, lb] = [text(a.stdout).split("\n"), text(b.stdout).split("\n")];
      assertEquals(la.slice(0, 3), ["A", "A", "mine mine "]);
      assertEquals(lb.slice(0, 3), ["B", "B", "mine mine "]);
      // init, sh, ls, grep: a handful, never the other box's
      assert(Number(la[3]) <= 5 && Number(lb[3]) <= 5, `${la[3]} ${lb[3]}`);
    });
  },
});

Deno.test({
  name:
    `${TAG} grade() without a pool cleans up after itself; bad options reject before anything runs`,
  ignore: !IS_ROOT,
  async fn() {
    await (warm ??= grade({ argv: ["true"] }));
    const r = await grade({ argv: ["true"] });
    assertEquals(r.status, "OK", explain(r));
    assertEquals(poolGroups(Deno.pid), []);
    assertEquals(graderFds(), []);
    let err: unknown;
    await grade({ argv: ["true"], timeLimit: -1 }).catch((e) => err = e);
    assert(err instanceof RangeError);
    assertEquals(poolGroups(Deno.pid), []);
  },
});

Deno.test({
  name: `${TAG} a killed grader leaves no process and no cgroup behind`,
  ignore: !IS_ROOT,
  async fn() {
    const marker = ["sleep", "876.543"];
    const script = `
      import { GraderPool } from "${
      new URL("../../grader/mod.ts", import.meta.url).href
    }";
      const pool = new GraderPool();
      await pool.grade({ argv: ${JSON.stringify(marker)}, wallTimeLimit: 60 });
    `;
    const file = await Deno.makeTempFile({ suffix: ".ts" });
    await Deno.writeTextFile(file, script);
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--no-check",
        `--config=${new URL("../../deno.json", import.meta.url).pathname}`,
        file,
      ],
      stdout: "null",
      stderr: "piped",
    }).spawn();
    try {
      let seen = false;
      for (let i = 0; i < 300 && !seen; i++) {
        seen = pidsRunning(marker).length > 0;
        if (!seen) await new Promise((r) => setTimeout(r, 50));
      }
      assert(seen, "the run never started");
      assertEquals(poolGroups(child.pid).length > 0, true);
      assert(
        poolRoots(child.pid).some((x) => x.startsWith("ns ")),
        "no prepared root",
      );
      child.kill("SIGKILL");
      await child.status;
      let clean = false;
      for (let i = 0; i < 100 && !clean; i++) {
        clean = pidsRunning(marker).length === 0 &&
          poolGroups(child.pid).length === 0 &&
          poolRoots(child.pid).length === 0;
        if (!clean) await new Promise((r) => setTimeout(r, 50));
      }
      assertEquals(pidsRunning(marker), []);
      assertEquals(poolGroups(child.pid), []);
      // the prepared root was a mount namespace held by an fd: gone with the process, and
      // never a mount on the host
      assertEquals(poolRoots(child.pid), []);
    } finally {
      await child.stderr.cancel();
      await Deno.remove(file);
    }
  },
});

Deno.test({
  name: `${TAG} grade() as uid 65534 (rootless) with a reason, never a crash`,
  ignore: !IS_ROOT,
  async fn() {
    const r = await runAsNobody(
      `import { grade } from "${
        new URL("../../grader/mod.ts", import.meta.url).href
      }";
       const r = await grade({ argv: ["true"] });
       console.log(JSON.stringify({ status: r.status, message: r.message }));`,
      { code: true },
    );
    assertEquals(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assertEquals(out.status, "XX");
    assert(out.message.startsWith("Cannot prepare the grader:"), out.message);
  },
});

Deno.test({
  name:
    `${TAG} grade: runs of a slot share one empty network namespace and can leave nothing in it`,
  ignore: !IS_ROOT,
  async fn() {
    const files = [{
      path: "netprobe",
      source: await fixture("netprobe"),
      mode: 0o755,
    }];
    const leaveJob = { argv: ["./netprobe", "leave"], files };
    const lookJob = { argv: ["./netprobe", "look"], files };
    const host = Deno.readLinkSync("/proc/self/ns/net");
    await withPool(async (pool) => {
      const leave = await pool.grade(leaveJob);
      assertEquals(leave.status, "OK", explain(leave));
      const [ns1, ...tried] = text(leave.stdout).trim().split("\n");
      // IP, IPv6, netlink and packet sockets are refused, as is all of the default filter (a failed IP send alone would count
      // in the namespace's /proc/net/snmp); an abstract AF_UNIX listener is allowed, held on
      // by a daemonized grandchild.
      assertEquals(tried, [
        "socket(2): Operation not permitted",
        "socket(10): Operation not permitted",
        "socket(16): Operation not permitted",
        "socket(17): Operation not permitted",
        "keyctl: Operation not permitted",
        "unix listener: ok",
      ]);
      const look = await pool.grade(lookJob);
      assertEquals(look.status, "OK", explain(look));
      const [ns2, ...found] = text(look.stdout).trim().split("\n");
      // The same namespace (so the reuse is real), not the host's, and nothing of run 1 in it.
      assertEquals(ns2, ns1);
      assert(ns1 !== host && /^net:\[\d+\]$/.test(ns1!), ns1);
      assertEquals(found, [
        "connect: Connection refused",
        "listed: 0",
        "OutNoRoutes: 0 OutRequests: 0",
        "lo counters: 0",
      ]);
      // A run with its own filter (here none) gets a namespace of its own, used once.
      const own = await pool.grade({ ...leaveJob, seccomp: false });
      assertEquals(own.status, "OK", explain(own));
      const [ns3, ...ownTried] = text(own.stdout).trim().split("\n");
      assert(ns3 !== ns1 && ns3 !== host, `${ns3} ${ns1}`);
      assertEquals(ownTried, [
        "socket(2): ok",
        "socket(10): ok",
        "socket(16): ok",
        "socket(17): Operation not permitted", // CAP_NET_RAW, which no run holds
        "keyctl: ok",
        "unix listener: ok",
      ]);
      const again = await pool.grade(lookJob);
      assertEquals(text(again.stdout).trim().split("\n"), [ns1, ...found]);
    }, 1);
  },
});

Deno.test({
  name:
    `${TAG} grade: maxRss is the program's own (64 MiB touched: at least 64 MiB; /bin/true: a few MiB)`,
  ignore: !IS_ROOT,
  async fn() {
    const touch = await fixture("touch64");
    await withPool(async (pool) => {
      const big = await pool.grade({
        argv: ["./touch64"],
        files: [{ path: "touch64", source: touch, mode: 0o755 }],
        memoryLimit: "256m",
      });
      assertEquals(big.status, "OK", explain(big));
      assert(big.maxRss >= 64 * 1024, explain(big));
      assert(big.maxRss < 128 * 1024, explain(big));
      assert(
        formatMeta(big).includes(`max-rss:${big.maxRss}\n`),
        formatMeta(big),
      );
      const small = await pool.grade({ argv: ["/bin/true"] });
      assertEquals(small.status, "OK", explain(small));
      assert(small.maxRss > 0 && small.maxRss < 8 * 1024, explain(small));
    });
  },
});

Deno.test({
  name:
    `${TAG} grade: the pool's prepared root shows exactly spawn()'s host view, read-only; other work dirs fall back to the host view`,
  ignore: !IS_ROOT,
  async fn() {
    // what a box sees: the tree's entries (with their kind) and its mount points
    const look = sh(
      "for d in / /etc /etc/ssl; do ls -A -l $d | awk 'NR > 1 {print $1, $NF}'; done; " +
        "cut -d' ' -f5 /proc/self/mountinfo | sort; " +
        "for d in / /usr /etc /etc/ssl/certs /root /home; do touch $d/x 2>/tmp/e && echo writable $d; done; true",
    );
    const views: string[] = [];
    for (const prepareRoot of [true, false]) {
      await withPool(
        async (pool) => {
          const r = await pool.grade({ argv: look });
          assertEquals(r.status, "OK", explain(r));
          views.push(text(r.stdout));
          // made once for the pool: a mount namespace held by an fd, no mount on the host
          const roots = poolRoots(Deno.pid);
          assertEquals(roots.length, prepareRoot ? 1 : 0, roots.join());
          assert(roots.every((x) => x.startsWith("ns ")), roots.join());
          // a work directory that is not in the prepared root: that run builds its own view
          const other = await pool.grade({
            argv: sh("pwd; touch f && ls"),
            workDir: "/work",
          });
          assertEquals(other.status, "OK", explain(other));
          assertEquals(text(other.stdout), "/work\nf\n");
        },
        1,
        { prepareRoot },
      );
    }
    // The same tree and mount points, but for the devpts a run of the host view gets (a run
    // of the prepared root has no pty, so no devpts).
    const drop = (v: string) =>
      v.split("\n").filter((l) => l !== "/dev/pts").join("\n");
    assertEquals(drop(views[0]!), drop(views[1]!));
    assert(!views[0]!.includes("writable"), views[0]);
    assert(!views[0]!.includes("shadow"), views[0]);
  },
});

Deno.test({
  name:
    `${TAG} grade: at most \`concurrency\` programs run at once, also while the next runs are prepared`,
  ignore: !IS_ROOT,
  async fn() {
    await withPool(async (pool) => {
      // each program notes its start and end (ms since the epoch) in its stdout
      const job = {
        argv: sh("date +%s%3N; sleep 0.15; date +%s%3N"),
        wallTimeLimit: 5,
      };
      const results = await Promise.all(
        Array.from({ length: 5 }, () => pool.grade(job)),
      );
      const spans = results.map((r) => {
        assertEquals(r.status, "OK", explain(r));
        const [a, b] = text(r.stdout).trim().split("\n").map(Number);
        return [a!, b!] as const;
      }).sort((x, y) => x[0] - y[0]);
      // one at a time: each starts after the one before ended
      for (let i = 1; i < spans.length; i++) {
        assert(spans[i]![0] >= spans[i - 1]![1], JSON.stringify(spans));
      }
      // and each run's slot is one of 2 × concurrency uids
      const uids = await Promise.all(
        Array.from({ length: 4 }, () => pool.grade({ argv: sh("id -u") })),
      );
      for (const r of uids) {
        assert(["60000", "60001"].includes(text(r.stdout).trim()), explain(r));
      }
    }, 1);
  },
});

Deno.test({
  name:
    `${TAG} grade: a run holds no capability, has no_new_privs and the seccomp filter, as an unprivileged uid`,
  ignore: !IS_ROOT,
  async fn() {
    await withPool(async (pool) => {
      const r = await pool.grade({ argv: ["/bin/cat", "/proc/self/status"] });
      assertEquals(r.status, "OK", explain(r));
      const field = (k: string) =>
        new RegExp(`^${k}:\\s*(.*)$`, "m").exec(text(r.stdout))?.[1]?.trim();
      for (const k of ["CapInh", "CapPrm", "CapEff", "CapAmb"]) {
        assertEquals(field(k), "0000000000000000", k);
      }
      assertEquals(field("NoNewPrivs"), "1");
      assertEquals(field("Seccomp"), "2");
      assertMatch(field("Uid") ?? "", /^6000\d\s+6000\d\s+6000\d\s+6000\d$/);
      // and so no setuid binary gives one back (su is setuid root on the host)
      const su = await pool.grade({
        argv: sh("/bin/su -c id 2>&1; grep CapEff /proc/self/status"),
      });
      assert(!text(su.stdout).includes("uid=0"), text(su.stdout));
      assertMatch(text(su.stdout), /CapEff:\s*0{16}/);
    }, 1);
  },
});
