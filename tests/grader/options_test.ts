import { assertEquals, assertThrows } from "../_helpers.ts";
import { DEFAULTS, parseSize, planGrade } from "../../grader/_options.ts";

Deno.test("planGrade fills the defaults", () => {
  const p = planGrade({ argv: ["/bin/true"] });
  assertEquals(p.argv, ["/bin/true"]);
  assertEquals(p.workDir, "/box");
  assertEquals(p.cwd, "/box");
  assertEquals(p.env, { PATH: DEFAULTS.path, HOME: "/box", LANG: "C.UTF-8" });
  assertEquals(p.timeLimit, null);
  assertEquals(p.wallTimeLimit, 10);
  assertEquals(p.extraTime, 0);
  assertEquals(p.memoryLimit, 256 * 2 ** 20);
  assertEquals(p.processLimit, 64);
  assertEquals(p.outputLimit, 64 * 2 ** 20);
  assertEquals(p.fileSizeLimit, p.workDirSize);
  assertEquals(p.stdout, "capture");
  assertEquals(p.stdin, { data: new Uint8Array(0) });
  assertEquals(p.seccomp, null);
});

Deno.test("planGrade derives the wall limit from the CPU limit", () => {
  assertEquals(planGrade({ argv: ["x"], timeLimit: 1.5 }).wallTimeLimit, 4);
  assertEquals(
    planGrade({ argv: ["x"], timeLimit: 1.5, wallTimeLimit: 2 }).wallTimeLimit,
    2,
  );
});

Deno.test("planGrade converts sizes, stdin and files", () => {
  const p = planGrade({
    argv: ["x"],
    memoryLimit: "64m",
    outputLimit: 10,
    workDir: "/w",
    stdin: "hi",
    files: [{ path: "a/b.txt", data: "x" }, {
      path: "c",
      source: "/etc/hostname",
      mode: 0o755,
    }],
    copyOut: ["out.txt"],
    stdout: { path: "/tmp/o" },
  });
  assertEquals(p.memoryLimit, 64 * 2 ** 20);
  assertEquals(p.outputLimit, 10);
  assertEquals(p.cwd, "/w");
  assertEquals(p.env.HOME, "/w");
  assertEquals(p.stdin, { data: new TextEncoder().encode("hi") });
  assertEquals(p.files, [
    {
      path: "a/b.txt",
      data: new TextEncoder().encode("x"),
      source: null,
      mode: 0o644,
    },
    { path: "c", data: null, source: "/etc/hostname", mode: 0o755 },
  ]);
  assertEquals(p.copyOut, ["out.txt"]);
  assertEquals(p.stdout, { path: "/tmp/o" });
  assertEquals(p.stackLimit <= p.memoryLimit, true);
});

Deno.test("planGrade rejects bad options with TypeError or RangeError", () => {
  const bad: [unknown, ErrorConstructor, string][] = [
    [{ argv: [] }, TypeError, "argv"],
    [{ argv: ["a\0b"] }, TypeError, "NUL"],
    [{ argv: ["x"], timeLimit: 0 }, RangeError, "timeLimit"],
    [{ argv: ["x"], timeLimit: -1 }, RangeError, "timeLimit"],
    [{ argv: ["x"], wallTimeLimit: Infinity }, RangeError, "wallTimeLimit"],
    [{ argv: ["x"], extraTime: -0.1 }, RangeError, "extraTime"],
    [{ argv: ["x"], memoryLimit: "12q" }, RangeError, "memoryLimit"],
    [{ argv: ["x"], memoryLimit: 1000 }, RangeError, "at least 1 MiB"],
    [{ argv: ["x"], processLimit: 0 }, RangeError, "processLimit"],
    [{ argv: ["x"], processLimit: 1.5 }, RangeError, "processLimit"],
    [{ argv: ["x"], openFilesLimit: 2 ** 29 }, RangeError, "openFilesLimit"],
    [{ argv: ["x"], workDir: "/" }, RangeError, "workDir"],
    [{ argv: ["x"], workDir: "box" }, RangeError, "absolute"],
    [{ argv: ["x"], cwd: "/a/../b" }, RangeError, "normalized"],
    [
      { argv: ["x"], files: [{ path: "../x", data: "" }] },
      RangeError,
      "files[0].path",
    ],
    [
      { argv: ["x"], files: [{ path: "/abs", data: "" }] },
      RangeError,
      "files[0].path",
    ],
    [{ argv: ["x"], files: [{ path: "a" }] }, TypeError, "exactly one"],
    [
      { argv: ["x"], files: [{ path: "a", data: "", mode: 0o4755 }] },
      RangeError,
      "mode",
    ],
    [
      {
        argv: ["x"],
        files: [{ path: "a", data: "" }, { path: "a", data: "" }],
      },
      RangeError,
      "twice",
    ],
    [{ argv: ["x"], copyOut: ["a/./b"] }, RangeError, "copyOut[0]"],
    [{ argv: ["x"], stdin: 5 }, TypeError, "stdin"],
    [{ argv: ["x"], stdout: "inherit" }, TypeError, "stdout"],
    [
      { argv: ["x"], dirs: [{ inside: "/box", outside: "/srv" }] },
      RangeError,
      "hide the work",
    ],
    [
      { argv: ["x"], dirs: [{ inside: "/data", outside: "srv" }] },
      RangeError,
      "absolute",
    ],
    [{ argv: ["x"], env: { "A=B": "1" } }, RangeError, "env name"],
    [{ argv: ["x"], seccomp: new Uint8Array(7) }, RangeError, "seccomp"],
    [{ argv: ["x"], rootfs: "rel" }, RangeError, "rootfs"],
  ];
  for (const [o, cls, text] of bad) {
    assertThrows(() => planGrade(o as never), cls, text);
  }
});

Deno.test("parseSize reads binary suffixes and rejects junk", () => {
  assertEquals(parseSize("64m"), 64 * 2 ** 20);
  assertEquals(parseSize("1.5G"), 1.5 * 2 ** 30);
  assertEquals(parseSize("512KiB"), 512 * 1024);
  assertEquals(parseSize(7), 7);
  assertThrows(() => parseSize("-1"), RangeError);
  assertThrows(() => parseSize("1x"), RangeError);
  assertThrows(() => parseSize(1.5), RangeError);
});
