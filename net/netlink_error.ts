import { SyscallError, type SyscallErrorInfo } from "denobox/libc";

/** What a `NetlinkError` carries besides `SyscallError`'s fields. */
export interface NetlinkErrorInfo extends SyscallErrorInfo {
  /** The kernel's extended-ACK text (NLMSGERR_ATTR_MSG). */
  extAck?: string;
  /** Byte offset of the offending attribute in the request (NLMSGERR_ATTR_OFFS). */
  extAckOffset?: number;
}

/**
 * The kernel refused a netlink request (an NLMSG_ERROR reply). A `SyscallError` whose
 * `syscall` is the request type (`"RTM_NEWLINK"`), with `errno`/`code` from the reply and the
 * kernel's extended-ACK text, when it sent one, in `extAck` and in the message.
 *
 * @example Tell an existing link from other failures
 * ```ts ignore
 * import { bridgeAdd, NetlinkError } from "denobox/net";
 * try {
 *   bridgeAdd("br0");
 * } catch (e) {
 *   if (e instanceof NetlinkError && e.code === "EEXIST") console.log("already there");
 *   else throw e;
 * }
 * ```
 */
export class NetlinkError extends SyscallError {
  /** Always `"NetlinkError"`: the class name survives logging and structured cloning. */
  override name = "NetlinkError";
  /** The kernel's extended-ACK text, if any. */
  readonly extAck: string | undefined;
  /** Offset of the attribute the kernel blamed, if any. */
  readonly extAckOffset: number | undefined;

  /** Makes an error for request `syscall` failing with `errno`. */
  constructor(syscall: string, errno: number, info: NetlinkErrorInfo = {}) {
    const { extAck, extAckOffset, ...base } = info;
    super(syscall, errno, base);
    this.extAck = extAck;
    this.extAckOffset = extAckOffset;
    if (extAck !== undefined && extAck !== "") {
      const cut = this.message.indexOf("\nHint: ");
      const head = cut < 0 ? this.message : this.message.slice(0, cut);
      const tail = cut < 0 ? "" : this.message.slice(cut);
      this.message = `${head}: ${extAck}${tail}`;
    }
  }

  #info(): NetlinkErrorInfo {
    const info: NetlinkErrorInfo = { context: this.context };
    if (this.path !== undefined) info.path = this.path;
    if (this.dest !== undefined) info.dest = this.dest;
    if (this.detail !== undefined) info.detail = this.detail;
    if (this.hint !== undefined) info.hint = this.hint;
    if (this.extAck !== undefined) info.extAck = this.extAck;
    if (this.extAckOffset !== undefined) info.extAckOffset = this.extAckOffset;
    return info;
  }

  /** A copy with `label` added as the outermost context. */
  override withContext(label: string): NetlinkError {
    const e = new NetlinkError(this.syscall, this.errno, {
      ...this.#info(),
      context: [label, ...this.context],
    });
    if (this.stack !== undefined) e.stack = this.stack;
    return e;
  }

  /** A copy with a hint. */
  override withHint(hint: string): NetlinkError {
    const e = new NetlinkError(this.syscall, this.errno, {
      ...this.#info(),
      hint,
    });
    if (this.stack !== undefined) e.stack = this.stack;
    return e;
  }
}
