// Pure layers of the CLI: argument parsing, run flags to config, names, formatting.
import { assertEquals, assertThrows } from "../_helpers.ts";
import { parseArgs, UsageError } from "../../cli/_args.ts";
import { COMMANDS } from "../../cli/_commands.ts";
import {
  buildConfig,
  parseBytes,
  parseEnvFile,
  parsePort,
  parseTmpfs,
  parseUlimit,
  parseUser,
} from "../../cli/_config.ts";
import { checkName, generateName, NAME_RE, newId } from "../../cli/_names.ts";
import { CliError } from "../../cli/_errors.ts";
import type { ContainerInfo } from "../../cli/_store.ts";
import { commandText, exitStatusOf, statusText } from "../../cli/_format.ts";

const RUN = COMMANDS.find((c) => c.name === "run")!;
const EXEC = COMMANDS.find((c) => c.name === "exec")!;

function run(argv: string[]) {
  const p = parseArgs(argv, RUN.options, "denobox run", RUN.stopAt);
  return {
    p,
    req: buildConfig(p.options, p.args, {
      cwd: "/",
      env: { HOMEVAR: "h" },
      detach: false,
      autoRemove: false,
    }, p.dashDashAt),
  };
}

Deno.test("cli args: grouped short flags, values glued or separate, repeatable lists", () => {
  const { options, args } = parseArgs(
    [
      "-it",
      "-eA=1",
      "-e",
      "B=2",
      "--name=web",
      "-p8080:80",
      "--rm",
      "img",
      "sh",
      "-c",
      "echo -d",
    ],
    RUN.options,
    "denobox run",
    RUN.stopAt,
  );
  assertEquals(options.bool("interactive"), true);
  assertEquals(options.bool("tty"), true);
  assertEquals(options.list("env"), ["A=1", "B=2"]);
  assertEquals(options.str("name"), "web");
  assertEquals(options.list("publish"), ["8080:80"]);
  assertEquals(options.bool("rm"), true);
  assertEquals(options.bool("detach"), false);
  // the container's own flags are not ours
  assertEquals(args, ["img", "sh", "-c", "echo -d"]);
});

Deno.test("cli args: exec stops after the container, unknown flags are usage errors", () => {
  const { options, args } = parseArgs(
    ["-i", "box", "ls", "-la"],
    EXEC.options,
    "denobox exec",
    EXEC.stopAt,
  );
  assertEquals(options.bool("interactive"), true);
  assertEquals(args, ["box", "ls", "-la"]);
  const e = assertThrows(
    () => parseArgs(["--bogus"], RUN.options, "denobox run"),
    UsageError,
    "--bogus",
  );
  assertEquals((e as UsageError).command, "denobox run");
  assertThrows(
    () => parseArgs(["--name"], RUN.options, "denobox run"),
    UsageError,
    "needs an argument",
  );
  assertThrows(
    () => parseArgs(["-Z"], RUN.options, "denobox run"),
    UsageError,
    "'Z'",
  );
});

Deno.test("cli run config: image vs command on the host view vs --rootfs vs --", () => {
  let { req } = run(["busybox", "echo", "hi"]);
  assertEquals([req.image, req.config.argv], ["busybox", ["echo", "hi"]]);
  ({ req } = run(["/bin/true"]));
  assertEquals([req.image, req.config.argv], [null, ["/bin/true"]]);
  ({ req } = run(["--", "sh", "-c", "exit 3"]));
  assertEquals([req.image, req.config.argv], [null, ["sh", "-c", "exit 3"]]);
  ({ req } = run(["--rootfs", "/", "sh", "-c", "x"]));
  assertEquals([req.image, req.config.rootfs, req.config.argv], [null, "/", [
    "sh",
    "-c",
    "x",
  ]]);
  ({ req } = run(["img", "--", "ls"]));
  assertEquals([req.image, req.config.argv, req.commandGiven], [
    "img",
    ["ls"],
    true,
  ]);
  ({ req } = run([]));
  assertEquals([req.image, req.config.argv, req.commandGiven], [null, [
    "/bin/sh",
  ], false]);
});

Deno.test("cli run config: every option lands in the config", () => {
  const { req } = run([
    "--name",
    "x",
    "-e",
    "A=1",
    "-e",
    "HOMEVAR",
    "-e",
    "MISSING",
    "-w",
    "/tmp",
    "-u",
    "1000:100",
    "-v",
    "/tmp:/data:ro",
    "--tmpfs",
    "/run:size=8m,mode=1777",
    "-m",
    "64m",
    "--cpus",
    "0.5",
    "--pids-limit",
    "32",
    "-p",
    "127.0.0.1:8080:80/udp",
    "--hostname",
    "box",
    "--read-only",
    "--cap-add",
    "NET_ADMIN",
    "--cap-drop",
    "ALL",
    "--security-opt",
    "seccomp=unconfined",
    "--ulimit",
    "nofile=64:128",
    "--stop-timeout",
    "3",
    "/bin/true",
  ]);
  const c = req.config;
  assertEquals(req.name, "x");
  assertEquals(c.env, { A: "1", HOMEVAR: "h" });
  assertEquals(c.workdir, "/tmp");
  assertEquals(c.user, { uid: 1000, gid: 100 });
  assertEquals(c.mounts, [
    { type: "bind", source: "/tmp", target: "/data", readOnly: true },
    { type: "tmpfs", target: "/run", size: "8m", mode: "1777" },
  ]);
  assertEquals([c.memory, c.cpus, c.pidsLimit], [64 * 1024 * 1024, 0.5, 32]);
  assertEquals(c.network, "bridge"); // -p implies the bridge
  assertEquals(c.ports, [{
    host: 8080,
    container: 80,
    protocol: "udp",
    hostIp: "127.0.0.1",
  }]);
  assertEquals([c.hostname, c.readOnly, c.seccomp, c.stopTimeout], [
    "box",
    true,
    "unconfined",
    3,
  ]);
  assertEquals([c.capAdd, c.capDrop], [["NET_ADMIN"], ["ALL"]]);
  assertEquals(c.ulimits, { nofile: { soft: 64, hard: 128 } });
});

Deno.test("cli run config: bad values are CliErrors naming the flag", () => {
  const bad: [string[], string][] = [
    [["-m", "lots", "/bin/true"], "--memory"],
    [["-m", "1k", "/bin/true"], "minimum"],
    [["--cpus", "-1", "/bin/true"], "--cpus"],
    [["--pids-limit", "0", "/bin/true"], "--pids-limit"],
    [["--network", "wifi", "/bin/true"], "--network"],
    [["--network", "none", "-p", "80:80", "/bin/true"], "Cannot publish"],
    [["-v", "vol:/data", "/bin/true"], "named volumes"],
    [["-v", "/nonexistent-denobox:/d", "/bin/true"], "does not exist"],
    [["-w", "rel", "/bin/true"], "--workdir"],
    [["--ulimit", "bogus=1", "/bin/true"], "--ulimit"],
    [["--security-opt", "apparmor=x", "/bin/true"], "--security-opt"],
    [["--rootfs", "/nonexistent-denobox", "/bin/true"], "--rootfs"],
    [["-u", "nosuchuser", "/bin/true"], "no user"],
  ];
  for (const [argv, text] of bad) {
    assertThrows(() => run(argv), CliError, text);
  }
});

Deno.test("cli run config: small parsers", () => {
  assertEquals(parsePort("80:8080"), {
    host: 80,
    container: 8080,
    protocol: "tcp",
    hostIp: null,
  });
  assertThrows(() => parsePort("99999:1"), CliError, "1 to 65535");
  assertEquals(parseTmpfs("/x"), {
    type: "tmpfs",
    target: "/x",
    size: null,
    mode: null,
  });
  assertEquals(parseUlimit("core=unlimited"), ["core", {
    soft: Infinity,
    hard: Infinity,
  }]);
  assertThrows(() => parseUlimit("nofile=10:5"), CliError, "soft");
  assertEquals(parseBytes("--x", "1.5g"), 1.5 * 1024 ** 3);
  assertEquals(parseEnvFile("# c\nA=1\n\nB\nC=x=y\n", "f"), [["A", "1"], [
    "B",
    null,
  ], ["C", "x=y"]]);
  assertThrows(() => parseEnvFile("BAD KEY=1", "f"), CliError, "line 1");
  assertEquals(parseUser("root", "/"), { uid: 0, gid: 0 });
  assertEquals(parseUser("5", null), { uid: 5, gid: 5 });
});

Deno.test("cli names: 64-hex IDs, generated names follow Docker's name rule", () => {
  const ids = new Set(Array.from({ length: 50 }, newId));
  assertEquals(ids.size, 50);
  for (const id of ids) assertEquals(/^[0-9a-f]{64}$/.test(id), true);
  for (let i = 0; i < 50; i++) assertEquals(NAME_RE.test(generateName()), true);
  assertThrows(() => checkName("-bad"), RangeError);
  assertThrows(() => checkName("a/b"), RangeError);
  checkName("web_1.a-b");
});

Deno.test("cli format: status texts and exit statuses", () => {
  const base = {
    config: { created: new Date(0).toISOString() },
    state: {
      startedAt: new Date(Date.now() - 5000).toISOString(),
      finishedAt: null,
      exitCode: null,
      signal: null,
    },
    dir: "",
  };
  const mk = (status: string, state: Record<string, unknown> = {}) =>
    ({
      ...base,
      status,
      state: { ...base.state, ...state },
    }) as unknown as ContainerInfo;
  assertEquals(statusText(mk("created")), "Created");
  assertEquals(statusText(mk("running")), "Up 5 seconds");
  assertEquals(statusText(mk("paused")), "Up 5 seconds (Paused)");
  assertEquals(statusText(mk("exited", { exitCode: 3 })), "Exited (3)");
  assertEquals(statusText(mk("exited", { signal: "SIGKILL" })), "Exited (137)");
  assertEquals(statusText(mk("exited")), "Exited (unknown)");
  assertEquals(exitStatusOf({ exitCode: null, signal: "SIGTERM" }), 143);
  assertEquals(
    commandText(["sh", "-c", "echo 'a b'"]),
    `sh -c 'echo '\\''a b'\\'''`,
  );
});
