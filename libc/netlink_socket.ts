/**
 * AF_NETLINK sockets and short trips of the calling thread into another network namespace:
 * the raw ground under `denobox/net`. Messages are plain bytes here; their encoding lives in
 * `net/`.
 *
 * A netlink socket belongs to the network namespace of the thread that created it, for its
 * whole life. `NetlinkSocket.open({ netns })` therefore moves the JS main thread into the
 * target namespace (setns(2)), creates the socket, and moves back before returning, all
 * synchronously: no other JS can run in between, and Deno's I/O threads never move.
 * @module
 */
import { libc } from "./_ffi.ts";
import { check, checkBig } from "./_check.ts";
import { SyscallError } from "./error.ts";
import { OwnedFd } from "./fd.ts";
import { open, setns } from "./calls.ts";
import { CloneFlag } from "./constants.ts";
import { SOCKADDR_NL } from "./struct.ts";

/** Socket constants for netlink(7), under their kernel names. */
export const NetlinkConst = {
  AF_NETLINK: 16,
  SOCK_RAW: 3,
  SOCK_CLOEXEC: 0o2000000,
  NETLINK_ROUTE: 0,
  NETLINK_NETFILTER: 12,
  SOL_SOCKET: 1,
  SO_SNDBUF: 7,
  SO_RCVBUF: 8,
  SO_RCVTIMEO: 20,
  SOL_NETLINK: 270,
  NETLINK_CAP_ACK: 10,
  NETLINK_EXT_ACK: 11,
  NETLINK_GET_STRICT_CHK: 12,
  MSG_PEEK: 0x2,
  MSG_TRUNC: 0x20,
} as const;

/** A network namespace: a path (`/proc/PID/ns/net`, `/run/netns/NAME`) or an open fd to one (a pidfd works too). */
export type NetnsRef = string | number;

function validateNetns(netns: NetnsRef): void {
  if (typeof netns === "number") {
    if (!Number.isInteger(netns) || netns < 0) {
      throw new RangeError(`Invalid network namespace fd: ${netns}`);
    }
  } else if (typeof netns !== "string" || netns === "") {
    throw new TypeError(
      `Invalid network namespace: expected a path or an fd, got ${
        JSON.stringify(netns)
      }`,
    );
  }
}

/**
 * Runs `fn` with the calling (JS main) thread inside network namespace `netns`, then moves
 * the thread back, also when `fn` throws. `fn` must be synchronous: an `async` function would
 * let other JS run in the wrong namespace, so a returned promise is a `TypeError` (the thread
 * is moved back first). What `fn` creates keeps its namespace: sockets, and files under
 * `/proc/sys/net` opened inside it.
 *
 * If the thread cannot move back, the process would go on in the wrong namespace; that is
 * reported as an `Error` naming the failure and should be treated as fatal.
 *
 * @example Read a per-namespace sysctl of another namespace
 * ```ts ignore
 * import { inNetns } from "denobox/libc";
 * const fwd = inNetns("/run/netns/test", () =>
 *   Deno.readTextFileSync("/proc/sys/net/ipv4/ip_forward"));
 * ```
 */
export function inNetns<T>(netns: NetnsRef, fn: () => T): T {
  validateNetns(netns);
  using home = open("/proc/thread-self/ns/net");
  using target = typeof netns === "string" ? open(netns) : null;
  setns(target?.fd ?? (netns as number), CloneFlag.CLONE_NEWNET);
  let result: T | undefined;
  let failure: { error: unknown } | undefined;
  try {
    result = fn();
  } catch (e) {
    failure = { error: e };
  }
  try {
    setns(home.fd, CloneFlag.CLONE_NEWNET);
  } catch (e) {
    throw new Error(
      "Cannot return to the original network namespace: the main thread is stranded",
      { cause: e },
    );
  }
  if (failure) throw failure.error;
  if (result instanceof Promise) {
    result.catch(() => {});
    throw new TypeError(
      "Cannot run an async function in another network namespace: pass a synchronous function",
    );
  }
  return result as T;
}

/** Options of `NetlinkSocket.open()`. */
export interface NetlinkSocketOptions {
  /** Netlink protocol (default `NETLINK_ROUTE`). */
  protocol?: number;
  /** Create the socket inside this network namespace (default: the calling thread's). */
  netns?: NetnsRef;
  /** Receive timeout in milliseconds (default 10000), so a lost reply cannot hang forever. */
  timeoutMs?: number;
  /** Receive buffer size asked of the kernel (SO_RCVBUF), default 1 MiB. */
  receiveBuffer?: number;
}

function setIntOption(fd: number, level: number, name: number, value: number) {
  const v = new Int32Array([value]);
  check(
    libc.setsockopt(fd, level, name, new Uint8Array(v.buffer), 4),
    "setsockopt",
    { detail: `fd ${fd}, option ${name}` },
  );
}

/**
 * A bound AF_NETLINK socket that talks to the kernel (port 0). `send()` and `receive()` are
 * synchronous: rtnetlink answers within the sending call, so a reply is queued by the time
 * `send()` returns, and a dump is produced as it is read. Extended ACKs (`NETLINK_EXT_ACK`)
 * and capped ACKs (`NETLINK_CAP_ACK`) and strict dump checking are switched on.
 *
 * @example Open a route socket and read its port id
 * ```ts
 * import { NetlinkSocket } from "denobox/libc";
 * using sock = NetlinkSocket.open();
 * console.log(sock.portId > 0); // true
 * ```
 */
export class NetlinkSocket implements Disposable {
  readonly #fd: OwnedFd;
  /** The port id the kernel assigned (the `nlmsg_pid` of its replies to us). */
  readonly portId: number;
  /** The protocol (`NETLINK_ROUTE`...). */
  readonly protocol: number;
  readonly #from = new Uint8Array(SOCKADDR_NL.size);
  readonly #fromLen = new Uint32Array(1);
  readonly #to: Uint8Array<ArrayBuffer>;

  private constructor(fd: OwnedFd, portId: number, protocol: number) {
    this.#fd = fd;
    this.portId = portId;
    this.protocol = protocol;
    this.#to = new Uint8Array(SOCKADDR_NL.size);
    new DataView(this.#to.buffer).setUint16(
      SOCKADDR_NL.nl_family,
      NetlinkConst.AF_NETLINK,
      true,
    );
  }

  /** Creates, configures and binds a socket, in `options.netns` when given. */
  static open(options: NetlinkSocketOptions = {}): NetlinkSocket {
    const protocol = options.protocol ?? NetlinkConst.NETLINK_ROUTE;
    const timeout = options.timeoutMs ?? 10_000;
    if (!Number.isInteger(protocol) || protocol < 0 || protocol > 31) {
      throw new RangeError(`Invalid netlink protocol: ${protocol}`);
    }
    if (!Number.isFinite(timeout) || timeout <= 0) {
      throw new RangeError(`Invalid netlink timeout: ${timeout} ms`);
    }
    const create = () =>
      new OwnedFd(check(
        libc.socket(
          NetlinkConst.AF_NETLINK,
          NetlinkConst.SOCK_RAW | NetlinkConst.SOCK_CLOEXEC,
          protocol,
        ),
        "socket",
        { detail: "AF_NETLINK" },
      ));
    const fd = options.netns === undefined
      ? create()
      : inNetns(options.netns, create);
    try {
      const n = fd.fd;
      const { SOL_NETLINK, SOL_SOCKET } = NetlinkConst;
      setIntOption(n, SOL_SOCKET, NetlinkConst.SO_SNDBUF, 32768);
      setIntOption(
        n,
        SOL_SOCKET,
        NetlinkConst.SO_RCVBUF,
        options.receiveBuffer ?? 1 << 20,
      );
      setIntOption(n, SOL_NETLINK, NetlinkConst.NETLINK_EXT_ACK, 1);
      setIntOption(n, SOL_NETLINK, NetlinkConst.NETLINK_CAP_ACK, 1);
      if (protocol === NetlinkConst.NETLINK_ROUTE) {
        setIntOption(n, SOL_NETLINK, NetlinkConst.NETLINK_GET_STRICT_CHK, 1);
      }
      const tv = new BigInt64Array([
        BigInt(Math.floor(timeout / 1000)),
        BigInt(Math.round((timeout % 1000) * 1000)),
      ]);
      check(
        libc.setsockopt(
          n,
          SOL_SOCKET,
          NetlinkConst.SO_RCVTIMEO,
          new Uint8Array(tv.buffer),
          16,
        ),
        "setsockopt",
        { detail: "SO_RCVTIMEO" },
      );
      const addr = new Uint8Array(SOCKADDR_NL.size);
      new DataView(addr.buffer).setUint16(0, NetlinkConst.AF_NETLINK, true);
      check(libc.bind(n, addr, addr.length), "bind", { detail: "AF_NETLINK" });
      const len = new Uint32Array([SOCKADDR_NL.size]);
      check(
        libc.getsockname(n, addr, new Uint8Array(len.buffer)),
        "getsockname",
      );
      const portId = new DataView(addr.buffer).getUint32(
        SOCKADDR_NL.nl_pid,
        true,
      );
      return new NetlinkSocket(fd, portId, protocol);
    } catch (e) {
      fd.close();
      throw e;
    }
  }

  /** The socket's fd number (owned by this object). */
  get fd(): number {
    return this.#fd.fd;
  }

  /** Whether the socket is still open. */
  get open(): boolean {
    return this.#fd.open;
  }

  /** Sends one datagram (one or more netlink messages) to the kernel. */
  send(data: Uint8Array<ArrayBuffer>): void {
    for (;;) {
      const n = libc.sendto(
        this.fd,
        data,
        BigInt(data.length),
        0,
        this.#to,
        this.#to.length,
      );
      try {
        checkBig(n, "sendto", { detail: "netlink" });
        return;
      } catch (e) {
        if (e instanceof SyscallError && e.code === "EINTR") continue;
        throw e;
      }
    }
  }

  /**
   * Receives one datagram from the kernel into `buf`; returns its length. Datagrams from any
   * other sender are dropped. A datagram larger than `buf` is a `RangeError` (its bytes are
   * lost), so give a buffer of at least 32 KiB, the most the kernel puts in one dump datagram.
   */
  receive(buf: Uint8Array<ArrayBuffer>): number {
    for (;;) {
      this.#fromLen[0] = SOCKADDR_NL.size;
      const n = libc.recvfrom(
        this.fd,
        buf,
        BigInt(buf.length),
        NetlinkConst.MSG_TRUNC,
        this.#from,
        new Uint8Array(this.#fromLen.buffer),
      );
      let len: number;
      try {
        len = Number(checkBig(n, "recvfrom", { detail: "netlink" }));
      } catch (e) {
        if (e instanceof SyscallError && e.code === "EINTR") continue;
        if (e instanceof SyscallError && e.code === "EAGAIN") {
          throw e.withHint("the kernel sent no netlink reply in time");
        }
        throw e;
      }
      const sender = new DataView(this.#from.buffer).getUint32(
        SOCKADDR_NL.nl_pid,
        true,
      );
      if (sender !== 0) continue;
      if (len > buf.length) {
        throw new RangeError(
          `Cannot receive netlink datagram: ${len} bytes do not fit the ${buf.length}-byte buffer`,
        );
      }
      return len;
    }
  }

  /** Closes the socket. Idempotent. */
  close(): void {
    this.#fd.close();
  }

  /** Closes the socket. */
  [Symbol.dispose](): void {
    this.close();
  }
}
