/**
 * The spawn engine: run a command in a new sandbox with no JS in the child. `clone()` starts
 * a machine-code routine (`sandbox/arch/*.S`) on a precomputed syscall program that sets up
 * namespaces, the root filesystem, ids, limits and stdio and ends in `execve`.
 *
 * - `spawn(options)`: the high-level entry with safe defaults (every namespace, a read-only
 *   host view or a rootfs, cleared env, no_new_privs, a reaping init as PID 1).
 * - `exec(sandbox, options)`: run another command inside a running sandbox.
 * - `Program` + `launch()`: the typed steps, for building a container by hand.
 * - Hardening pieces: capabilities, seccomp profiles, `defaultHardening()`.
 *
 * @example Run a command, read its output (root, or rootless with user namespaces)
 * ```ts ignore
 * import { spawn } from "denobox/sandbox";
 * await using box = await spawn({ argv: ["/bin/sh", "-c", "echo pid $$"], stdout: "pipe" });
 * const { stdout } = await box.output();
 * console.log(new TextDecoder().decode(stdout)); // pid 2
 * ```
 * @module
 */
export {
  type CapabilitySetting,
  type CommandOptions,
  type IdMap,
  type MountSpec,
  type NamespaceSetting,
  type OverlayRootfs,
  type SeccompSetting,
  spawn,
  type SpawnOptions,
  type Stdio,
} from "./spawn.ts";
export * from "./exec.ts";
export { RootTemplate, type RootTemplateOptions } from "./template.ts";
export { HOST_VIEW } from "./_host_view.ts";
export {
  type ChildInfo,
  launch,
  type LaunchExtras,
  type LaunchOptions,
  type SetupHook,
} from "./launch.ts";
export * from "./program.ts";
export * from "./errors.ts";
export type { PtyHandle, Sandbox, SandboxStatus } from "./sandbox.ts";
export { setRawMode } from "denobox/libc";
export * from "./capabilities.ts";
export * from "./hardening.ts";
export * from "./seccomp/mod.ts";
