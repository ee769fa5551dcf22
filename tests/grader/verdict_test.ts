import { assertEquals } from "../_helpers.ts";
import { decideVerdict, type RunFacts } from "../../grader/_verdict.ts";

const base: RunFacts = {
  exitCode: 0,
  signal: null,
  killedFor: null,
  overflowStream: null,
  oomKills: 0,
  oomKillsBeforeKill: 0,
  cpuTime: 0.1,
  wallTime: 0.2,
  timeLimit: 1,
  wallTimeLimit: 3,
  internalError: null,
};
const v = (f: Partial<RunFacts>) => decideVerdict({ ...base, ...f });

Deno.test("decideVerdict: each status from the facts that prove it", () => {
  assertEquals(v({}), { status: "OK", timeout: null, message: "" });
  assertEquals(v({ exitCode: 3 }).status, "RE");
  assertEquals(v({ exitCode: 3 }).message, "Exited with error status 3");
  assertEquals(
    v({ exitCode: null, signal: "SIGSEGV" }).message,
    "Caught fatal signal 11 (SIGSEGV)",
  );
  assertEquals(
    v({ exitCode: null, signal: "SIGKILL", killedFor: "cpu", cpuTime: 1.01 })
      .timeout,
    "cpu",
  );
  assertEquals(
    v({ exitCode: null, signal: "SIGKILL", killedFor: "wall", wallTime: 3.01 }),
    {
      status: "TO",
      timeout: "wall",
      message: "Time limit exceeded (wall clock)",
    },
  );
  assertEquals(
    v({
      exitCode: null,
      signal: "SIGKILL",
      killedFor: "output",
      overflowStream: "stderr",
    }),
    {
      status: "OL",
      timeout: null,
      message: "Output limit exceeded (stderr)",
    },
  );
  assertEquals(v({ internalError: "boom" }).status, "XX");
  assertEquals(
    v({ killedFor: "abort", exitCode: null, signal: "SIGKILL" }).status,
    "XX",
  );
});

Deno.test("decideVerdict: ML only from the OOM counter, never from SIGKILL alone", () => {
  assertEquals(v({ exitCode: null, signal: "SIGKILL" }).status, "SG");
  assertEquals(
    v({ exitCode: null, signal: "SIGKILL", oomKills: 1, oomKillsBeforeKill: 1 })
      .status,
    "ML",
  );
  // a child was OOM-killed, the parent exited 0: still ML (the cgroup OOM-killed something)
  assertEquals(v({ oomKills: 1, oomKillsBeforeKill: 1 }).status, "ML");
  // the grader killed for time first; an OOM kill counted only afterwards does not take over
  assertEquals(
    v({
      exitCode: null,
      signal: "SIGKILL",
      killedFor: "cpu",
      cpuTime: 1.2,
      oomKills: 1,
      oomKillsBeforeKill: 0,
    })
      .status,
    "TO",
  );
  assertEquals(
    v({
      exitCode: null,
      signal: "SIGKILL",
      killedFor: "cpu",
      cpuTime: 1.2,
      oomKills: 2,
      oomKillsBeforeKill: 1,
    })
      .status,
    "ML",
  );
});

Deno.test("decideVerdict: a program that ends inside the extra time is still TO", () => {
  assertEquals(v({ cpuTime: 1.2 }), {
    status: "TO",
    timeout: "cpu",
    message: "Time limit exceeded",
  });
  assertEquals(v({ wallTime: 3.5 }).timeout, "wall");
  assertEquals(v({ cpuTime: 1.0 }).status, "OK"); // at the limit is not over it
  assertEquals(v({ timeLimit: null, cpuTime: 100 }).status, "OK");
  // TO outranks the exit status
  assertEquals(v({ exitCode: 1, cpuTime: 1.2 }).status, "TO");
});
