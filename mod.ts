/**
 * denobox: Linux sandboxes and containers assembled in TypeScript.
 *
 * Each folder is also a module of its own, for narrower imports:
 * `denobox/libc` (the FFI layer and in-process calls), `denobox/sandbox` (spawn engine, typed
 * program steps, seccomp, capabilities), `denobox/cgroup`, `denobox/net`, `denobox/image`,
 * `denobox/grader`. This module re-exports the sandbox API at the top level and every folder
 * as a namespace (`libc.mount`, `cgroup.kill`), plus the pieces most scripts compose.
 *
 * Linux only (x86_64, aarch64, glibc).
 *
 * @example Run a command in a sandbox with a memory limit
 * ```ts ignore
 * import { Cgroup, setMemoryLimit, spawn } from "denobox";
 * await using cg = Cgroup.create();
 * setMemoryLimit(cg, "64m");
 * await using box = await spawn({ argv: ["/bin/echo", "hello"], cgroup: cg, stdout: "pipe" });
 * const { stdout } = await box.output();
 * console.log(new TextDecoder().decode(stdout)); // hello
 * ```
 * @module
 */
export * from "./sandbox/mod.ts";
export * as libc from "./libc/mod.ts";
export * as cgroup from "./cgroup/mod.ts";
export * as net from "./net/mod.ts";
export * as image from "./image/mod.ts";
export * as grader from "./grader/mod.ts";

export {
  mount,
  pidfdOpen,
  pidfdSendSignal,
  sethostname,
  setns,
  SyscallError,
  umount,
  unshare,
} from "./libc/mod.ts";
export {
  Cgroup,
  freeze,
  setCpuLimit,
  setCpuset,
  setCpuWeight,
  setIoLimit,
  setMemoryLimit,
  setPidsLimit,
  stats,
  thaw,
} from "./cgroup/mod.ts";
export {
  addrAdd,
  bridgeAdd,
  linkSetUp,
  networkSetup,
  routeAdd,
  vethPair,
} from "./net/mod.ts";
export { ImageStore, pull, push } from "./image/mod.ts";
export { grade, GraderPool } from "./grader/mod.ts";
