/**
 * The seam between "what to set" (the public functions, which validate arguments) and "which
 * file gets which text" (one driver per cgroup version). Drivers take directories, so unit tests
 * point them at a temp dir holding fixture files.
 * @module
 */
import type { CounterName, CounterReading } from "./stats.ts";

/** io.max / blkio.throttle limits; Infinity is "no limit". */
export interface IoLimits {
  rbps?: number;
  wbps?: number;
  riops?: number;
  wiops?: number;
}

/** What a cgroup driver does; arguments are already validated. */
export interface Driver {
  readonly version: 1 | 2;
  /** The directories a process joins (spawn writes "0" to each cgroup.procs). */
  readonly paths: readonly string[];
  /** The controllers available in this group. */
  controllers(): string[];
  /**
   * `fresh`: the group was just made by this process, so its limits are the kernel's
   * defaults (no limit) and need not be read first.
   */
  setMemory(
    max: number,
    swap: number | undefined,
    high: number | undefined,
    fresh: boolean,
  ): void;
  setCpuMax(quota: number, period: number): void;
  setCpuWeight(weight: number): void;
  setCpuset(cpus: string | undefined, mems: string | undefined): void;
  setPidsMax(max: number): void;
  setIoMax(device: string, limits: IoLimits): void;
  setIoWeight(weight: number, device: string | undefined): void;
  /** Starts freezing (true) or thawing (false). */
  requestFreeze(frozen: boolean): void;
  /** Whether the freeze/thaw asked for has completed. */
  freezeSettled(frozen: boolean): boolean;
  /** Writes cgroup.kill (v2, kernel 5.14+); false when that file does not exist. */
  killAll(): boolean;
  /** Member processes of this group and all its descendants. */
  procs(): number[];
  /** Whether any process is in this group or a descendant. */
  populated(): boolean;
  addProcess(pid: number): void;
  /** Reads the named counters, each file at most once. */
  counters(names: readonly CounterName[]): CounterReading;
  /** Removes every directory of this group (descendants first); true once all are gone. */
  remove(): boolean;
}
