/**
 * Seccomp without libseccomp: a compiler from rules to the classic BPF program the kernel
 * runs on every system call, Docker's profile format, and denobox's default profile.
 *
 * - `compileSeccomp(filter)`: rules by syscall name with actions (allow, errno, kill, trap,
 *   log, user-notif, trace) and 64-bit argument tests; an architecture check that refuses
 *   other ABIs (x32 included); a binary search over syscall numbers.
 * - `resolveProfile` / `compileProfile`: Docker's `default.json` shape, as is (`archMap`,
 *   `includes`/`excludes` by caps, arch and kernel, `errnoRet`).
 * - `DEFAULT_SECCOMP_PROFILE`: the built-in allowlist (keyrings, AF_VSOCK, io_uring,
 *   userfaultfd, perf, bpf, kexec and modules refused).
 *
 * The program is data: spawn installs it as the child's last step before exec, so denobox's
 * own set-up runs unfiltered and the payload starts confined.
 *
 * @example Compile the default profile
 * ```ts
 * import { compileProfile, DEFAULT_SECCOMP_PROFILE } from "denobox/sandbox";
 * const bpf = compileProfile(DEFAULT_SECCOMP_PROFILE, { caps: [] });
 * console.log(`${bpf.length / 8} instructions`);
 * ```
 * @module
 */
export * from "./compile.ts";
export * from "./profile.ts";
export * from "./default_profile.ts";
