/**
 * The request layer: one NETLINK_ROUTE socket, sequence numbers, replies matched to requests,
 * multipart dumps read to NLMSG_DONE (and restarted when the kernel marks them interrupted),
 * NLMSG_ERROR turned into `NetlinkError`.
 * @module
 */
import {
  NetlinkSocket,
  type NetnsRef,
  type SyscallErrorInfo,
} from "denobox/libc";
import {
  decodeDone,
  decodeError,
  type ErrorReply,
  messageTypeName,
  type NetlinkMessage,
  NlmF,
  Nlmsg,
  parseMessages,
} from "./_codec.ts";
import { NetlinkError } from "./netlink_error.ts";

/** Builds a request for a sequence number. */
export type Encoder = (seq: number) => Uint8Array<ArrayBuffer>;

// One receive buffer for every socket: all use is synchronous, and 64 KiB holds the largest
// datagram the kernel sends (dump datagrams are at most 32 KiB).
const BUF = new Uint8Array(64 * 1024);
const MAX_DUMP_RETRIES = 5;

let nextSeq = (Date.now() & 0x3fffffff) >>> 0;

function toError(
  reply: ErrorReply,
  requestType: number,
  info: SyscallErrorInfo,
): NetlinkError {
  const extra: { extAck?: string; extAckOffset?: number } = {};
  if (reply.message !== undefined) extra.extAck = reply.message;
  if (reply.offset !== undefined) extra.extAckOffset = reply.offset;
  return new NetlinkError(messageTypeName(requestType), reply.errno, {
    ...info,
    ...extra,
  });
}

/** An rtnetlink connection in one network namespace. */
export class Rtnl implements Disposable {
  readonly #sock: NetlinkSocket;

  private constructor(sock: NetlinkSocket) {
    this.#sock = sock;
  }

  /** Opens a socket in `netns` (default: the calling thread's namespace). */
  static open(netns?: NetnsRef): Rtnl {
    return new Rtnl(
      NetlinkSocket.open(netns === undefined ? {} : { netns }),
    );
  }

  /** The socket's port id. */
  get portId(): number {
    return this.#sock.portId;
  }

  #exchange(
    requests: { seq: number; type: number; info: SyscallErrorInfo }[],
    bytes: Uint8Array<ArrayBuffer>,
    onData: (m: NetlinkMessage) => void,
  ): { interrupted: boolean } {
    this.#sock.send(bytes);
    const open = new Map(requests.map((r) => [r.seq, r]));
    let error: NetlinkError | undefined;
    let interrupted = false;
    while (open.size > 0) {
      const n = this.#sock.receive(BUF);
      for (const m of parseMessages(BUF.subarray(0, n))) {
        const req = open.get(m.seq);
        // Replies to an earlier request that was abandoned mid-way are skipped.
        if (req === undefined || m.pid !== this.#sock.portId) continue;
        if (m.type === Nlmsg.NLMSG_ERROR) {
          open.delete(m.seq);
          const r = decodeError(m);
          if (r.errno !== 0) error ??= toError(r, req.type, req.info);
        } else if (m.type === Nlmsg.NLMSG_DONE) {
          open.delete(m.seq);
          const r = decodeDone(m);
          if (r) error ??= toError(r, req.type, req.info);
          if (m.flags & NlmF.NLM_F_DUMP_INTR) interrupted = true;
        } else if (m.type === Nlmsg.NLMSG_NOOP) {
          continue;
        } else if (m.type === Nlmsg.NLMSG_OVERRUN) {
          throw new Error(
            "Cannot read netlink reply: the kernel reported data lost (NLMSG_OVERRUN)",
          );
        } else {
          if (m.flags & NlmF.NLM_F_DUMP_INTR) interrupted = true;
          onData(m);
        }
      }
    }
    if (error) throw error;
    return { interrupted };
  }

  /**
   * Sends one request that the kernel acknowledges; returns what `decode` made of the data
   * messages before the ACK (a GET's answer), or an empty list.
   */
  request<T = never>(
    encode: Encoder,
    info: SyscallErrorInfo = {},
    decode?: (m: NetlinkMessage) => T | undefined,
  ): T[] {
    const seq = nextSeq = (nextSeq + 1) >>> 0;
    const bytes = encode(seq);
    const type = new DataView(bytes.buffer).getUint16(4, true);
    const out: T[] = [];
    this.#exchange([{ seq, type, info }], bytes, (m) => {
      const v = decode?.(m);
      if (v !== undefined) out.push(v);
    });
    return out;
  }

  /**
   * Sends several acknowledged requests in one datagram; the kernel runs them in order. Waits
   * for every ACK, then throws the first error, if any (later requests still ran).
   */
  batch(
    requests: readonly { encode: Encoder; info?: SyscallErrorInfo }[],
  ): void {
    const parts: Uint8Array[] = [];
    const meta: { seq: number; type: number; info: SyscallErrorInfo }[] = [];
    for (const r of requests) {
      const seq = nextSeq = (nextSeq + 1) >>> 0;
      const b = r.encode(seq);
      parts.push(b);
      meta.push({
        seq,
        type: new DataView(b.buffer).getUint16(4, true),
        info: r.info ?? {},
      });
    }
    const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let off = 0;
    for (const p of parts) {
      all.set(p, off);
      off += p.length;
    }
    this.#exchange(meta, all, () => {});
  }

  /** Runs a dump to NLMSG_DONE; restarts it when the kernel says it was interrupted. */
  dump<T>(
    encode: Encoder,
    decode: (m: NetlinkMessage) => T | undefined,
    info: SyscallErrorInfo = {},
  ): T[] {
    for (let attempt = 1;; attempt++) {
      const seq = nextSeq = (nextSeq + 1) >>> 0;
      const bytes = encode(seq);
      const type = new DataView(bytes.buffer).getUint16(4, true);
      const out: T[] = [];
      const { interrupted } = this.#exchange(
        [{ seq, type, info }],
        bytes,
        (m) => {
          const v = decode(m);
          if (v !== undefined) out.push(v);
        },
      );
      if (!interrupted || attempt >= MAX_DUMP_RETRIES) return out;
    }
  }

  /** Closes the socket. Idempotent. */
  close(): void {
    this.#sock.close();
  }

  /** Closes the socket. */
  [Symbol.dispose](): void {
    this.close();
  }
}

/** Runs `fn` with an rtnetlink connection in `netns`, closed afterwards. */
export function withRtnl<T>(
  netns: NetnsRef | undefined,
  fn: (nl: Rtnl) => T,
): T {
  using nl = Rtnl.open(netns);
  return fn(nl);
}
