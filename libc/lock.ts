/**
 * Advisory file locks (flock(2)) on raw fds: what several processes sharing one on-disk store
 * need. (For a `Deno.FsFile`, its own `lock()`/`tryLockSync()` are flock(2) too.)
 * @module
 */
import { libc } from "./_ffi.ts";
import { check } from "./_check.ts";

// flock(2) operations.
const LOCK_SH = 1, LOCK_EX = 2, LOCK_NB = 4, LOCK_UN = 8;

/**
 * flock(2) on `fd`: a shared or exclusive advisory lock on the open file description, released
 * when every copy of the descriptor is closed, also when the process dies. With `wait: false`
 * it returns `false` at once instead of waiting when another holder has it.
 *
 * @example Hold an exclusive lock while the fd is open
 * ```ts
 * import { flock, open, OpenFlag } from "denobox/libc";
 * const path = Deno.makeTempFileSync();
 * using fd = open(path, { flags: OpenFlag.O_RDWR });
 * console.log(flock(fd.fd, { wait: false })); // true
 * Deno.removeSync(path);
 * ```
 */
export function flock(
  fd: number,
  options: { shared?: boolean; wait?: boolean; unlock?: boolean } = {},
): boolean {
  let op = options.unlock ? LOCK_UN : options.shared ? LOCK_SH : LOCK_EX;
  if (options.wait === false) op |= LOCK_NB;
  for (;;) {
    const ret = libc.flock(fd, op);
    if (ret === 0) return true;
    try {
      check(ret, "flock", { detail: `fd ${fd}` });
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code === "EWOULDBLOCK" || code === "EAGAIN") return false;
      if (code === "EINTR") continue;
      throw e;
    }
  }
}
