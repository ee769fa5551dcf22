import { join } from "node:path";
import {
  assertEquals,
  assertThrows,
  denoRunArgs,
  REPO,
  runCommand,
  type ScriptResult,
} from "../_helpers.ts";
import { GradeUsageError, parseGradeArgs } from "../../cli/grade.ts";

Deno.test("parseGradeArgs: isolate-style flags", () => {
  const c = parseGradeArgs([
    "--time=1.5",
    "-w",
    "3",
    "--extra-time",
    "0.5",
    "--mem=65536",
    "--processes=10",
    "--fsize",
    "1024",
    "-k",
    "8192",
    "--open-files=32",
    "--output-limit",
    "1m",
    "--stdin=in.txt",
    "--stdout",
    "/abs/out",
    "--dir=/data=/srv/data",
    "--dir",
    "/scratch=/tmp/s:rw",
    "--dir=/opt",
    "-E",
    "FOO=bar",
    "--chdir=/box/sub",
    "--meta=meta.txt",
    "--cg",
    "--",
    "./a.out",
    "-x",
  ], "/work");
  const o = c.options;
  assertEquals(o.argv, ["./a.out", "-x"]);
  assertEquals([o.timeLimit, o.wallTimeLimit, o.extraTime], [1.5, 3, 0.5]);
  assertEquals(o.memoryLimit, 64 * 2 ** 20);
  assertEquals(o.processLimit, 10);
  assertEquals(o.fileSizeLimit, 2 ** 20);
  assertEquals(o.stackLimit, 8 * 2 ** 20);
  assertEquals(o.openFilesLimit, 32);
  assertEquals(o.outputLimit, "1m");
  assertEquals(o.stdin, { path: "/work/in.txt" });
  assertEquals(o.stdout, { path: "/abs/out" });
  assertEquals(o.dirs, [
    { inside: "/data", outside: "/srv/data", rw: false },
    { inside: "/scratch", outside: "/tmp/s", rw: true },
    { inside: "/opt", outside: "/opt", rw: false },
  ]);
  assertEquals(o.env?.FOO, "bar");
  assertEquals(o.cwd, "/box/sub");
  assertEquals(c.meta, "/work/meta.txt");
  assertEquals([c.json, c.batch, c.help], [false, false, false]);
});

Deno.test("parseGradeArgs: command without --, --memory, files and copy-out", () => {
  const c = parseGradeArgs([
    "--memory",
    "1g",
    "--file",
    "sol.py=src/sol.py",
    "--copy-out",
    "o.txt=res/o.txt",
    "python3",
    "sol.py",
  ], "/w");
  assertEquals(c.options.argv, ["python3", "sol.py"]);
  assertEquals(c.options.memoryLimit, "1g");
  assertEquals(c.options.files, [{
    path: "sol.py",
    source: "/w/src/sol.py",
    mode: 0o755,
  }]);
  assertEquals(c.options.copyOut, ["o.txt"]);
  assertEquals(c.copyOutTo, { "o.txt": "/w/res/o.txt" });
});

Deno.test("parseGradeArgs: batch and mistakes", () => {
  const b = parseGradeArgs(["--batch", "--parallel=4"]);
  assertEquals([b.batch, b.parallel], [true, 4]);
  assertThrows(
    () => parseGradeArgs([]),
    GradeUsageError,
    "Missing the command",
  );
  assertThrows(
    () => parseGradeArgs(["--time", "x", "--", "a"]),
    GradeUsageError,
    "--time",
  );
  assertThrows(() => parseGradeArgs(["--bogus", "--", "a"]), GradeUsageError);
  assertThrows(
    () => parseGradeArgs(["--mem=1", "--memory=1m", "--", "a"]),
    GradeUsageError,
    "only one",
  );
  assertThrows(
    () => parseGradeArgs(["--dir=/a=/b:xx", "--", "a"]),
    GradeUsageError,
    "--dir",
  );
  assertThrows(
    () => parseGradeArgs(["--batch", "--", "a"]),
    GradeUsageError,
    "no command",
  );
  assertThrows(
    () => parseGradeArgs(["--parallel=0", "--batch"]),
    GradeUsageError,
    "--parallel",
  );
});

async function denobox(
  args: string[],
  stdin?: string,
): Promise<ScriptResult> {
  return await runCommand(
    Deno.execPath(),
    [...denoRunArgs(join(REPO, "cli", "main.ts")), ...args],
    stdin === undefined ? {} : { stdin },
  );
}

Deno.test({
  name:
    "[root] denobox grade: exit status 0/1/2, isolate's meta file, --json, --batch",
  ignore: Deno.uid() !== 0,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const ok = await denobox([
        "grade",
        "--time=1",
        `--meta=${dir}/ok.meta`,
        "--",
        "/bin/echo",
        "hi",
      ]);
      assertEquals([ok.code, ok.stdout], [0, "hi\n"]);
      assertEquals(ok.stderr.startsWith("OK ("), true, ok.stderr);
      const meta = await Deno.readTextFile(`${dir}/ok.meta`);
      assertEquals(
        /^time:\d+\.\d{3}\ntime-wall:\d+\.\d{3}\n/.test(meta) &&
          meta.endsWith("exitcode:0\n"),
        true,
        meta,
      );

      const re = await denobox([
        "grade",
        "-s",
        "-M",
        `${dir}/re.meta`,
        "--",
        "/bin/sh",
        "-c",
        "exit 3",
      ]);
      assertEquals([re.code, re.stderr], [1, ""]);
      assertEquals(
        (await Deno.readTextFile(`${dir}/re.meta`)).endsWith(
          "exitcode:3\nstatus:RE\nmessage:Exited with error status 3\n",
        ),
        true,
      );

      const to = await denobox([
        "grade",
        "--json",
        "--wall-time=0.2",
        "--",
        "sleep",
        "5",
      ]);
      assertEquals(to.code, 1);
      const j = JSON.parse(to.stdout);
      assertEquals([j.status, j.timeout, j.killed], ["TO", "wall", true]);

      const xx = await denobox(["grade", "--", "/nonexistent/cmd"]);
      assertEquals(xx.code, 2);
      assertEquals(xx.stderr.includes("XX:"), true, xx.stderr);
      const usage = await denobox(["grade", "--time=abc", "--", "true"]);
      assertEquals(usage.code, 2);

      const batch = await denobox(
        ["grade", "--batch", "--parallel=2"],
        [
          JSON.stringify({ id: "a", argv: ["/bin/echo", "x"] }),
          JSON.stringify({
            id: "b",
            args: [
              "--time=0.2",
              `--meta=${dir}/b.meta`,
              "--",
              "/bin/sh",
              "-c",
              "while :; do :; done",
            ],
          }),
          JSON.stringify({
            id: "c",
            argv: ["/bin/cat"],
            stdin: { base64: btoa("\u00ff") },
          }),
        ].join("\n") + "\n",
      );
      assertEquals(batch.code, 0, batch.stderr);
      const results = new Map(
        batch.stdout.trim().split("\n").map((l) => JSON.parse(l)).map((
          r,
        ) => [r.id, r]),
      );
      assertEquals(results.get("a").stdout, "x\n");
      assertEquals([results.get("b").status, results.get("b").timeout], [
        "TO",
        "cpu",
      ]);
      assertEquals(
        (await Deno.readTextFile(`${dir}/b.meta`)).includes("status:TO\n"),
        true,
      );
      assertEquals(results.get("c").stdoutBase64, btoa("\u00ff"));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
