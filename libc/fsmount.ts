/**
 * The file-descriptor mount API (fsopen, fsconfig, fsmount): a filesystem instance made and
 * configured through fds, handed back as a detached mount that appears in no mount table until
 * someone attaches it. Files can be created in it through `openat2(mountFd, ...)`, and it is
 * freed when the last fd referring to it closes, also when the process dies.
 * @module
 */
import { libc } from "./_ffi.ts";
import { checkBig } from "./_check.ts";
import { cstr } from "./memory.ts";
import { OwnedFd } from "./fd.ts";
import { syscallNumber } from "./syscall.ts";

// linux/mount.h
const FSOPEN_CLOEXEC = 0x1;
const FSMOUNT_CLOEXEC = 0x1;
const FSCONFIG_SET_STRING = 1;
const FSCONFIG_CMD_CREATE = 6;

/** `MOUNT_ATTR_*` bits of fsmount(2) and mount_setattr(2). */
export const MountAttr = {
  MOUNT_ATTR_RDONLY: 0x1,
  MOUNT_ATTR_NOSUID: 0x2,
  MOUNT_ATTR_NODEV: 0x4,
  MOUNT_ATTR_NOEXEC: 0x8,
  MOUNT_ATTR_NOSYMFOLLOW: 0x200000,
} as const;

/** Options of `fsmountNew()`. */
export interface FsMountOptions {
  /** String parameters, in order (`{ size: "64m", mode: "0755", uid: "1000" }`). */
  config?: Readonly<Record<string, string>>;
  /** `MountAttr` bits for the new mount. */
  attributes?: number;
}

const addr = (b: Uint8Array<ArrayBuffer>) =>
  BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(b)));

/**
 * fsopen(2) + fsconfig(2) + fsmount(2): a new, detached mount of filesystem `type` (for
 * instance a size-limited tmpfs). The result is a directory fd on the mount's root; bind
 * `/proc/self/fd/N` to attach it somewhere, or work inside it with `openat2`.
 *
 * @throws {SyscallError} `EINVAL` for an option the filesystem rejects, `EPERM` without
 * CAP_SYS_ADMIN.
 * @example A detached 1 MiB tmpfs
 * ```ts ignore
 * import { fsmountNew, MountAttr, openat2, OpenFlag } from "denobox/libc";
 * using mnt = fsmountNew("tmpfs", {
 *   config: { size: "1m", mode: "0755" },
 *   attributes: MountAttr.MOUNT_ATTR_NOSUID | MountAttr.MOUNT_ATTR_NODEV,
 * });
 * using f = openat2(mnt.fd, "hello", { flags: OpenFlag.O_CREAT | OpenFlag.O_WRONLY });
 * ```
 */
export function fsmountNew(
  type: string,
  options: FsMountOptions = {},
): OwnedFd {
  const t = cstr(type, "filesystem type");
  using fs = new OwnedFd(Number(checkBig(
    libc.syscall2(
      BigInt(syscallNumber("fsopen")),
      addr(t),
      BigInt(FSOPEN_CLOEXEC),
    ),
    "fsopen",
    { detail: type },
  )));
  for (const [key, value] of Object.entries(options.config ?? {})) {
    const k = cstr(key, "fsconfig key"), v = cstr(value, "fsconfig value");
    checkBig(
      libc.syscall5(
        BigInt(syscallNumber("fsconfig")),
        BigInt(fs.fd),
        BigInt(FSCONFIG_SET_STRING),
        addr(k),
        addr(v),
        0n,
      ),
      "fsconfig",
      { detail: `${type} ${key}=${value}` },
    );
  }
  checkBig(
    libc.syscall5(
      BigInt(syscallNumber("fsconfig")),
      BigInt(fs.fd),
      BigInt(FSCONFIG_CMD_CREATE),
      0n,
      0n,
      0n,
    ),
    "fsconfig",
    { detail: `${type} create` },
  );
  const fd = checkBig(
    libc.syscall3(
      BigInt(syscallNumber("fsmount")),
      BigInt(fs.fd),
      BigInt(FSMOUNT_CLOEXEC),
      BigInt(options.attributes ?? 0),
    ),
    "fsmount",
    { detail: type },
  );
  return new OwnedFd(Number(fd));
}
