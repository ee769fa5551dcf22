/**
 * The verdict of a run from what was observed. Pure: every input is a measured fact, and a
 * verdict is only given when a fact proves it (ML only from the cgroup's OOM-kill counter,
 * never guessed from SIGKILL).
 * @module
 */
import { Signal, type SignalName } from "denobox/libc";
import type { GradeStatus } from "./types.ts";

/** Why the grader itself ended a run, if it did. */
export type KillReason = "cpu" | "wall" | "output" | "abort";

/** What was observed about a finished run. */
export interface RunFacts {
  /** Exit status of the program's first process, when it exited. */
  exitCode: number | null;
  /** Signal that ended it, when one did. */
  signal: SignalName | null;
  /** The first reason the grader had to kill the run, or null. */
  killedFor: KillReason | null;
  /** Which stream went past the output limit first, if any. */
  overflowStream: "stdout" | "stderr" | null;
  /** OOM kills counted by the cgroup during the run. */
  oomKills: number;
  /** OOM kills already counted when the grader decided to kill (equal to `oomKills` when it did not). */
  oomKillsBeforeKill: number;
  /** CPU seconds of the whole run. */
  cpuTime: number;
  /** Wall seconds. */
  wallTime: number;
  /** CPU limit in seconds, or null. */
  timeLimit: number | null;
  /** Wall limit in seconds. */
  wallTimeLimit: number;
  /** An internal error, when the grader failed. */
  internalError: string | null;
}

/** A verdict with its one-line reason. */
export interface Verdict {
  status: GradeStatus;
  timeout: "cpu" | "wall" | null;
  message: string;
}

/** Signal number → name, for messages. */
const SIGNAL_NUMBERS: Readonly<Record<string, number>> = Signal;

/**
 * Decides the verdict. Order: an internal error (`XX`); an OOM kill seen before the grader
 * killed anything (`ML`); a time limit (`TO`, also when the program ended by itself inside the
 * extra time, as isolate does); the output limit (`OL`); a signal (`SG`); a non-zero exit (`RE`);
 * else `OK`.
 */
export function decideVerdict(f: RunFacts): Verdict {
  if (f.internalError !== null) {
    return { status: "XX", timeout: null, message: f.internalError };
  }
  if (f.killedFor === "abort") {
    return { status: "XX", timeout: null, message: "Aborted" };
  }
  if (f.oomKills > 0 && (f.killedFor === null || f.oomKillsBeforeKill > 0)) {
    return {
      status: "ML",
      timeout: null,
      message:
        `Memory limit exceeded (the OOM killer ended ${f.oomKills} process${
          f.oomKills === 1 ? "" : "es"
        })`,
    };
  }
  const cpuOver = f.timeLimit !== null && f.cpuTime > f.timeLimit;
  const wallOver = f.wallTime > f.wallTimeLimit;
  if (
    f.killedFor === "cpu" || f.killedFor === "wall" ||
    (f.killedFor === null && (cpuOver || wallOver))
  ) {
    const kind = f.killedFor === "cpu" || f.killedFor === "wall"
      ? f.killedFor
      : cpuOver
      ? "cpu"
      : "wall";
    return {
      status: "TO",
      timeout: kind,
      message: kind === "cpu"
        ? "Time limit exceeded"
        : "Time limit exceeded (wall clock)",
    };
  }
  if (f.killedFor === "output") {
    return {
      status: "OL",
      timeout: null,
      message: `Output limit exceeded (${f.overflowStream ?? "output"})`,
    };
  }
  if (f.signal !== null) {
    const n = SIGNAL_NUMBERS[f.signal];
    return {
      status: "SG",
      timeout: null,
      message: `Caught fatal signal ${n} (${f.signal})`,
    };
  }
  if (f.exitCode !== null && f.exitCode !== 0) {
    return {
      status: "RE",
      timeout: null,
      message: `Exited with error status ${f.exitCode}`,
    };
  }
  if (f.exitCode === null) {
    return {
      status: "XX",
      timeout: null,
      message: "The program ended with neither an exit status nor a signal",
    };
  }
  return { status: "OK", timeout: null, message: "" };
}
