/**
 * pidfd_getfd(2): a duplicate of another process's fd (it needs ptrace access to it: our own
 * child, or a process in a user namespace we own).
 * @module
 */
import { libc } from "./_ffi.ts";
import { checkBig } from "./_check.ts";
import { OwnedFd } from "./fd.ts";
import { syscallNumber } from "./syscall.ts";

/**
 * Duplicates fd `targetFd` of the process `pidfd` refers to into ours (close-on-exec).
 *
 * @example Take a child's fd 5
 * ```ts ignore
 * import { pidfdGetfd } from "denobox/libc";
 * using fd = pidfdGetfd(box.pidfd, 5);
 * ```
 */
export function pidfdGetfd(pidfd: number, targetFd: number): OwnedFd {
  if (!Number.isInteger(targetFd) || targetFd < 0) {
    throw new RangeError(`Invalid fd: ${targetFd}`);
  }
  const fd = checkBig(
    libc.syscall3(
      BigInt(syscallNumber("pidfd_getfd")),
      BigInt(pidfd),
      BigInt(targetFd),
      0n,
    ),
    "pidfd_getfd",
    { detail: `fd ${targetFd}` },
  );
  return new OwnedFd(Number(fd));
}
