import { assertEquals } from "../_helpers.ts";
import { formatMeta } from "../../grader/meta.ts";
import type { GradeResult } from "../../grader/types.ts";

const ok: GradeResult = {
  status: "OK",
  timeout: null,
  message: "",
  exitCode: 0,
  signal: null,
  killed: false,
  cpuTime: 0.0123,
  userTime: 0.01,
  sysTime: 0.002,
  wallTime: 0.5,
  memoryPeak: 1_000_000,
  maxRss: 1234,
  oomKilled: false,
  outputTruncated: false,
  stdout: null,
  stderr: null,
  outputBytes: { stdout: 0, stderr: 0 },
  files: {},
  voluntarySwitches: 5,
  involuntarySwitches: 1,
};

Deno.test("formatMeta writes isolate's keys in isolate's order", () => {
  assertEquals(
    formatMeta(ok),
    "time:0.012\ntime-wall:0.500\nmax-rss:1234\ncsw-voluntary:5\ncsw-forced:1\ncg-mem:977\nexitcode:0\n",
  );
});

Deno.test("formatMeta: killed, OOM, signal, status and message", () => {
  const r: GradeResult = {
    ...ok,
    status: "ML",
    message: "Memory limit exceeded\n(x)",
    exitCode: null,
    signal: "SIGKILL",
    oomKilled: true,
  };
  assertEquals(
    formatMeta(r).split("\n").slice(5),
    [
      "cg-mem:977",
      "cg-oom-killed:1",
      "exitsig:9",
      "status:ML",
      "message:Memory limit exceeded (x)",
      "",
    ],
  );
  const to = formatMeta({
    ...ok,
    status: "TO",
    message: "Time limit exceeded",
    killed: true,
    exitCode: null,
    signal: "SIGKILL",
  });
  assertEquals(
    to.includes(
      "killed:1\nexitsig:9\nstatus:TO\nmessage:Time limit exceeded\n",
    ),
    true,
  );
});

Deno.test("formatMeta of an internal error that never ran has status and message only", () => {
  assertEquals(
    formatMeta({
      ...ok,
      status: "XX",
      message: "boom",
      wallTime: 0,
      maxRss: 0,
      exitCode: null,
    }),
    "status:XX\nmessage:boom\n",
  );
});
