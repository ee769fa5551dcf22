/**
 * The FFI layer: typed access to Linux through glibc, and the only folder that calls
 * `Deno.dlopen` or handles raw pointers.
 *
 * - `SyscallError`: one error class for kernel failures (`syscall`, `errno`, `code`, `path`,
 *   `context`, `hint`).
 * - Immediate wrappers for the calling process: `mount`, `umount`, `sethostname`, `unshare`,
 *   `setns`, `pidfdOpen`, `pidfdSendSignal`, `prctl`, `getrlimit`/`setrlimit`,
 *   `open`/`pipe`/`dup`/`read`/`write`.
 * - C memory outside the V8 heap (`CArena`), C strings that reject NUL (`cstr`), owned fds.
 * - Kernel constants and per-arch syscall numbers (x86_64, aarch64).
 *
 * Linux only (x86_64, aarch64, glibc). Importing it elsewhere fails with one clear error.
 *
 * @example Catch a kernel error by code
 * ```ts
 * import { mount, SyscallError } from "denobox/libc";
 * try {
 *   mount("none", "/nonexistent/dir", { type: "tmpfs" });
 * } catch (e) {
 *   if (e instanceof SyscallError) console.log(e.code); // ENOENT (or EPERM when not root)
 * }
 * ```
 * @module
 */
export { ARCH, type SupportedArch } from "./_ffi.ts";
export * from "./error.ts";
export * from "./constants.ts";
export * from "./memory.ts";
export * from "./fd.ts";
export * from "./calls.ts";
export * from "./syscall.ts";
export * from "./struct.ts";
export * from "./process.ts";
export * from "./netlink_socket.ts";
export * from "./fs.ts";
export * from "./openat2.ts";
export * from "./lock.ts";
export * from "./fsmount.ts";
export * from "./memfd_arena.ts";
export * from "./pidfd_getfd.ts";
