/**
 * The pure netlink wire format: constants under their kernel names, a writer for requests
 * (nlmsghdr, ifinfomsg, ifaddrmsg, rtmsg, attributes, nests) and readers for what the kernel
 * sends back (message framing, attributes, NLMSG_ERROR with its extended ACK). No I/O here:
 * everything is tested root-free against bytes captured from the kernel
 * (tests/net/fixtures/).
 *
 * Layouts (include/uapi/linux/netlink.h, rtnetlink.h, if_link.h, if_addr.h); all fields are
 * host byte order (little-endian on x86_64 and aarch64), everything 4-byte aligned.
 * @module
 */

/** Address families. */
export const Af = {
  AF_UNSPEC: 0,
  AF_INET: 2,
  AF_BRIDGE: 7,
  AF_INET6: 10,
  AF_PACKET: 17,
} as const;

/** Control message types. */
export const Nlmsg = {
  NLMSG_NOOP: 1,
  NLMSG_ERROR: 2,
  NLMSG_DONE: 3,
  NLMSG_OVERRUN: 4,
} as const;

/** `nlmsg_flags` bits. */
export const NlmF = {
  NLM_F_REQUEST: 0x01,
  NLM_F_MULTI: 0x02,
  NLM_F_ACK: 0x04,
  NLM_F_ECHO: 0x08,
  NLM_F_DUMP_INTR: 0x10,
  NLM_F_DUMP_FILTERED: 0x20,
  NLM_F_ROOT: 0x100,
  NLM_F_MATCH: 0x200,
  NLM_F_DUMP: 0x300,
  NLM_F_REPLACE: 0x100,
  NLM_F_EXCL: 0x200,
  NLM_F_CREATE: 0x400,
  NLM_F_APPEND: 0x800,
  NLM_F_CAPPED: 0x100,
  NLM_F_ACK_TLVS: 0x200,
} as const;

/** rtnetlink message types. */
export const Rtm = {
  RTM_NEWLINK: 16,
  RTM_DELLINK: 17,
  RTM_GETLINK: 18,
  RTM_SETLINK: 19,
  RTM_NEWADDR: 20,
  RTM_DELADDR: 21,
  RTM_GETADDR: 22,
  RTM_NEWROUTE: 24,
  RTM_DELROUTE: 25,
  RTM_GETROUTE: 26,
} as const;

/** Link attributes (`IFLA_*`). */
export const Ifla = {
  IFLA_ADDRESS: 1,
  IFLA_BROADCAST: 2,
  IFLA_IFNAME: 3,
  IFLA_MTU: 4,
  IFLA_LINK: 5,
  IFLA_MASTER: 10,
  IFLA_TXQLEN: 13,
  IFLA_OPERSTATE: 16,
  IFLA_LINKINFO: 18,
  IFLA_NET_NS_PID: 19,
  IFLA_NET_NS_FD: 28,
  IFLA_EXT_MASK: 29,
  IFLA_LINK_NETNSID: 37,
} as const;

/** Nested in `IFLA_LINKINFO`. */
export const IflaInfo = {
  IFLA_INFO_KIND: 1,
  IFLA_INFO_DATA: 2,
  IFLA_INFO_SLAVE_KIND: 4,
} as const;

/** Nested in a veth's `IFLA_INFO_DATA`: the peer, an ifinfomsg followed by link attributes. */
export const VethInfo = { VETH_INFO_PEER: 1 } as const;

/** `IFLA_EXT_MASK` bits. */
export const RtextFilter = {
  RTEXT_FILTER_VF: 1,
  RTEXT_FILTER_SKIP_STATS: 8,
} as const;

/** Address attributes (`IFA_*`). */
export const Ifa = {
  IFA_ADDRESS: 1,
  IFA_LOCAL: 2,
  IFA_LABEL: 3,
  IFA_BROADCAST: 4,
  IFA_CACHEINFO: 6,
  IFA_FLAGS: 8,
} as const;

/** `ifa_flags` bits. */
export const IfaF = {
  IFA_F_SECONDARY: 0x01,
  IFA_F_NODAD: 0x02,
  IFA_F_TENTATIVE: 0x40,
  IFA_F_PERMANENT: 0x80,
  IFA_F_NOPREFIXROUTE: 0x200,
} as const;

/** Route attributes (`RTA_*`). */
export const Rta = {
  RTA_DST: 1,
  RTA_SRC: 2,
  RTA_IIF: 3,
  RTA_OIF: 4,
  RTA_GATEWAY: 5,
  RTA_PRIORITY: 6,
  RTA_PREFSRC: 7,
  RTA_TABLE: 15,
} as const;

/** Route tables, protocols, scopes and types. */
export const Rt = {
  RT_TABLE_UNSPEC: 0,
  RT_TABLE_MAIN: 254,
  RT_TABLE_LOCAL: 255,
  RTPROT_UNSPEC: 0,
  RTPROT_KERNEL: 2,
  RTPROT_BOOT: 3,
  RTPROT_STATIC: 4,
  RT_SCOPE_UNIVERSE: 0,
  RT_SCOPE_LINK: 253,
  RT_SCOPE_HOST: 254,
  RT_SCOPE_NOWHERE: 255,
  RTN_UNSPEC: 0,
  RTN_UNICAST: 1,
  RTN_LOCAL: 2,
} as const;

/** Extended ACK attributes after an NLMSG_ERROR payload. */
export const NlmsgerrAttr = {
  NLMSGERR_ATTR_MSG: 1,
  NLMSGERR_ATTR_OFFS: 2,
  NLMSGERR_ATTR_COOKIE: 3,
  NLMSGERR_ATTR_POLICY: 4,
  NLMSGERR_ATTR_MISS_TYPE: 5,
  NLMSGERR_ATTR_MISS_NEST: 6,
} as const;

/** Interface flags (`IFF_*`, netdevice(7)). */
export const Iff = {
  IFF_UP: 0x1,
  IFF_BROADCAST: 0x2,
  IFF_LOOPBACK: 0x8,
  IFF_POINTOPOINT: 0x10,
  IFF_RUNNING: 0x40,
  IFF_NOARP: 0x80,
  IFF_PROMISC: 0x100,
  IFF_MULTICAST: 0x1000,
  IFF_LOWER_UP: 0x10000,
} as const;

/** Attribute type bits that are not part of the type number. */
export const NLA_F_NESTED = 0x8000;
/** Attribute payload in network byte order. */
export const NLA_F_NET_BYTEORDER = 0x4000;
const NLA_TYPE_MASK = ~(NLA_F_NESTED | NLA_F_NET_BYTEORDER) & 0xffff;

/** Header sizes. */
export const NLMSG_HDRLEN = 16;
/** `struct ifinfomsg` */
export const IFINFOMSG_LEN = 16;
/** `struct ifaddrmsg` */
export const IFADDRMSG_LEN = 8;
/** `struct rtmsg` */
export const RTMSG_LEN = 12;
const NLA_HDRLEN = 4;

const align4 = (n: number) => (n + 3) & ~3;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** `struct ifinfomsg`. */
export interface IfInfoMsg {
  family: number;
  type: number;
  index: number;
  flags: number;
  change: number;
}

/** `struct ifaddrmsg`. */
export interface IfAddrMsg {
  family: number;
  prefixLength: number;
  flags: number;
  scope: number;
  index: number;
}

/** `struct rtmsg`. */
export interface RtMsg {
  family: number;
  dstLength: number;
  srcLength: number;
  tos: number;
  table: number;
  protocol: number;
  scope: number;
  type: number;
  flags: number;
}

/**
 * Builds one or more netlink messages into one datagram. `begin()` opens a message, `end()`
 * patches its length; `nest()` does the same for a nested attribute.
 */
export class MessageWriter {
  #bytes = new Uint8Array(512);
  #view = new DataView(this.#bytes.buffer);
  #len = 0;
  #start = -1;

  #reserve(n: number): number {
    const need = this.#len + n;
    if (need > this.#bytes.length) {
      const bigger = new Uint8Array(Math.max(need, this.#bytes.length * 2));
      bigger.set(this.#bytes);
      this.#bytes = bigger;
      this.#view = new DataView(bigger.buffer);
    }
    const at = this.#len;
    this.#len = need;
    return at;
  }

  #pad(): void {
    const n = align4(this.#len) - this.#len;
    if (n > 0) this.#reserve(n);
  }

  /** Opens a message: an nlmsghdr whose length `end()` fills in. */
  begin(type: number, flags: number, seq: number, pid = 0): this {
    if (this.#start >= 0) {
      throw new Error("Cannot begin a message: one is open");
    }
    this.#pad();
    const at = this.#reserve(NLMSG_HDRLEN);
    this.#view.setUint16(at + 4, type, true);
    this.#view.setUint16(at + 6, flags, true);
    this.#view.setUint32(at + 8, seq >>> 0, true);
    this.#view.setUint32(at + 12, pid >>> 0, true);
    this.#start = at;
    return this;
  }

  /** Closes the open message. */
  end(): this {
    if (this.#start < 0) throw new Error("Cannot end a message: none is open");
    this.#pad();
    this.#view.setUint32(this.#start, this.#len - this.#start, true);
    this.#start = -1;
    return this;
  }

  /** Raw bytes, padded to 4. */
  raw(data: Uint8Array): this {
    const at = this.#reserve(data.length);
    this.#bytes.set(data, at);
    this.#pad();
    return this;
  }

  /** `struct ifinfomsg` (fields default to 0). */
  ifinfomsg(h: Partial<IfInfoMsg> = {}): this {
    const at = this.#reserve(IFINFOMSG_LEN);
    const v = this.#view;
    v.setUint8(at, h.family ?? 0);
    v.setUint16(at + 2, h.type ?? 0, true);
    v.setInt32(at + 4, h.index ?? 0, true);
    v.setUint32(at + 8, (h.flags ?? 0) >>> 0, true);
    v.setUint32(at + 12, (h.change ?? 0) >>> 0, true);
    return this;
  }

  /** `struct ifaddrmsg` (fields default to 0). */
  ifaddrmsg(h: Partial<IfAddrMsg> = {}): this {
    const at = this.#reserve(IFADDRMSG_LEN);
    const v = this.#view;
    v.setUint8(at, h.family ?? 0);
    v.setUint8(at + 1, h.prefixLength ?? 0);
    v.setUint8(at + 2, h.flags ?? 0);
    v.setUint8(at + 3, h.scope ?? 0);
    v.setUint32(at + 4, h.index ?? 0, true);
    return this;
  }

  /** `struct rtmsg` (fields default to 0). */
  rtmsg(h: Partial<RtMsg> = {}): this {
    const at = this.#reserve(RTMSG_LEN);
    const v = this.#view;
    v.setUint8(at, h.family ?? 0);
    v.setUint8(at + 1, h.dstLength ?? 0);
    v.setUint8(at + 2, h.srcLength ?? 0);
    v.setUint8(at + 3, h.tos ?? 0);
    v.setUint8(at + 4, h.table ?? 0);
    v.setUint8(at + 5, h.protocol ?? 0);
    v.setUint8(at + 6, h.scope ?? 0);
    v.setUint8(at + 7, h.type ?? 0);
    v.setUint32(at + 8, h.flags ?? 0, true);
    return this;
  }

  /** An attribute holding `data`. */
  attr(type: number, data: Uint8Array): this {
    const at = this.#reserve(NLA_HDRLEN + data.length);
    this.#view.setUint16(at, NLA_HDRLEN + data.length, true);
    this.#view.setUint16(at + 2, type, true);
    this.#bytes.set(data, at + NLA_HDRLEN);
    this.#pad();
    return this;
  }

  /** A u8 attribute. */
  u8(type: number, value: number): this {
    return this.attr(type, new Uint8Array([value]));
  }

  /** A u16 attribute (host order). */
  u16(type: number, value: number): this {
    const b = new Uint8Array(2);
    new DataView(b.buffer).setUint16(0, value, true);
    return this.attr(type, b);
  }

  /** A u32 attribute (host order). */
  u32(type: number, value: number): this {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, value >>> 0, true);
    return this.attr(type, b);
  }

  /** A NUL-terminated string attribute (NLA_NUL_STRING, as IFLA_IFNAME). */
  string(type: number, value: string): this {
    const s = encoder.encode(value);
    const b = new Uint8Array(s.length + 1);
    b.set(s);
    return this.attr(type, b);
  }

  /** A string attribute without the NUL (NLA_STRING; how iproute2 sends IFLA_INFO_KIND). */
  stringNoNul(type: number, value: string): this {
    return this.attr(type, encoder.encode(value));
  }

  /** A nested attribute whose content `fill` writes. */
  nest(type: number, fill: (w: this) => void): this {
    const at = this.#reserve(NLA_HDRLEN);
    this.#view.setUint16(at + 2, type, true);
    fill(this);
    this.#view.setUint16(at, this.#len - at, true);
    return this;
  }

  /** The datagram so far (a copy). */
  bytes(): Uint8Array<ArrayBuffer> {
    if (this.#start >= 0) {
      throw new Error("Cannot take the bytes: a message is open");
    }
    return this.#bytes.slice(0, this.#len);
  }
}

/** One message as received. `payload` is a view of what follows the nlmsghdr. */
export interface NetlinkMessage {
  length: number;
  type: number;
  flags: number;
  seq: number;
  pid: number;
  payload: Uint8Array;
}

const viewOf = (b: Uint8Array) =>
  new DataView(b.buffer, b.byteOffset, b.byteLength);

/** Splits a datagram into messages. Malformed framing is a `RangeError`. */
export function parseMessages(buf: Uint8Array): NetlinkMessage[] {
  const out: NetlinkMessage[] = [];
  const v = viewOf(buf);
  let off = 0;
  while (off + NLMSG_HDRLEN <= buf.length) {
    const length = v.getUint32(off, true);
    if (length < NLMSG_HDRLEN || off + length > buf.length) {
      throw new RangeError(
        `Cannot parse netlink message at offset ${off}: length ${length} in a ${buf.length}-byte datagram`,
      );
    }
    out.push({
      length,
      type: v.getUint16(off + 4, true),
      flags: v.getUint16(off + 6, true),
      seq: v.getUint32(off + 8, true),
      pid: v.getUint32(off + 12, true),
      payload: buf.subarray(off + NLMSG_HDRLEN, off + length),
    });
    off += align4(length);
  }
  return out;
}

/** One attribute. `type` is without the NESTED/NET_BYTEORDER bits; `data` is a view. */
export interface Attribute {
  type: number;
  nested: boolean;
  data: Uint8Array;
}

/** Splits attribute bytes. Malformed lengths are a `RangeError`. */
export function parseAttributes(buf: Uint8Array): Attribute[] {
  const out: Attribute[] = [];
  const v = viewOf(buf);
  let off = 0;
  while (off + NLA_HDRLEN <= buf.length) {
    const len = v.getUint16(off, true);
    const raw = v.getUint16(off + 2, true);
    if (len < NLA_HDRLEN || off + len > buf.length) {
      throw new RangeError(
        `Cannot parse netlink attribute at offset ${off}: length ${len} in ${buf.length} bytes`,
      );
    }
    out.push({
      type: raw & NLA_TYPE_MASK,
      nested: (raw & NLA_F_NESTED) !== 0,
      data: buf.subarray(off + NLA_HDRLEN, off + len),
    });
    off += align4(len);
  }
  return out;
}

/** Attributes by type (the last one wins), with typed getters. */
export class Attributes {
  readonly #map = new Map<number, Uint8Array>();

  /** Parses `buf` (see `parseAttributes`). */
  constructor(buf: Uint8Array) {
    for (const a of parseAttributes(buf)) this.#map.set(a.type, a.data);
  }

  /** Whether the type is present. */
  has(type: number): boolean {
    return this.#map.has(type);
  }

  /** The raw payload, or undefined. */
  bytes(type: number): Uint8Array | undefined {
    return this.#map.get(type);
  }

  /** A nested attribute set, or undefined. */
  nested(type: number): Attributes | undefined {
    const b = this.#map.get(type);
    return b === undefined ? undefined : new Attributes(b);
  }

  /** A u8, or undefined. */
  u8(type: number): number | undefined {
    const b = this.#map.get(type);
    return b === undefined || b.length < 1 ? undefined : b[0];
  }

  /** A u32 (host order), or undefined. */
  u32(type: number): number | undefined {
    const b = this.#map.get(type);
    return b === undefined || b.length < 4
      ? undefined
      : viewOf(b).getUint32(0, true);
  }

  /** An i32 (host order), or undefined. */
  i32(type: number): number | undefined {
    const b = this.#map.get(type);
    return b === undefined || b.length < 4
      ? undefined
      : viewOf(b).getInt32(0, true);
  }

  /** A string up to its first NUL, or undefined. */
  string(type: number): string | undefined {
    const b = this.#map.get(type);
    if (b === undefined) return undefined;
    const nul = b.indexOf(0);
    return decoder.decode(nul < 0 ? b : b.subarray(0, nul));
  }
}

/** Reads `struct ifinfomsg` at the start of a payload. */
export function readIfInfoMsg(payload: Uint8Array): IfInfoMsg {
  need(payload, IFINFOMSG_LEN, "ifinfomsg");
  const v = viewOf(payload);
  return {
    family: v.getUint8(0),
    type: v.getUint16(2, true),
    index: v.getInt32(4, true),
    flags: v.getUint32(8, true),
    change: v.getUint32(12, true),
  };
}

/** Reads `struct ifaddrmsg` at the start of a payload. */
export function readIfAddrMsg(payload: Uint8Array): IfAddrMsg {
  need(payload, IFADDRMSG_LEN, "ifaddrmsg");
  const v = viewOf(payload);
  return {
    family: v.getUint8(0),
    prefixLength: v.getUint8(1),
    flags: v.getUint8(2),
    scope: v.getUint8(3),
    index: v.getUint32(4, true),
  };
}

/** Reads `struct rtmsg` at the start of a payload. */
export function readRtMsg(payload: Uint8Array): RtMsg {
  need(payload, RTMSG_LEN, "rtmsg");
  const v = viewOf(payload);
  return {
    family: v.getUint8(0),
    dstLength: v.getUint8(1),
    srcLength: v.getUint8(2),
    tos: v.getUint8(3),
    table: v.getUint8(4),
    protocol: v.getUint8(5),
    scope: v.getUint8(6),
    type: v.getUint8(7),
    flags: v.getUint32(8, true),
  };
}

function need(b: Uint8Array, n: number, what: string): void {
  if (b.length < n) {
    throw new RangeError(`Cannot parse ${what}: ${b.length} bytes, need ${n}`);
  }
}

/** What an NLMSG_ERROR (or an NLMSG_DONE carrying an error) says. */
export interface ErrorReply {
  /** The positive errno, 0 for a plain ACK. */
  errno: number;
  /** The header of the request it answers. */
  request: {
    length: number;
    type: number;
    flags: number;
    seq: number;
    pid: number;
  };
  /** The kernel's extended-ACK text (NLMSGERR_ATTR_MSG). */
  message?: string;
  /** Byte offset of the offending attribute in the request (NLMSGERR_ATTR_OFFS). */
  offset?: number;
  /** A required attribute that was missing (NLMSGERR_ATTR_MISS_TYPE). */
  missingType?: number;
}

/**
 * Decodes an NLMSG_ERROR message: the error code, the echoed request header (the whole
 * request unless the socket set NETLINK_CAP_ACK, which the kernel marks with NLM_F_CAPPED), and
 * the extended-ACK attributes when NLM_F_ACK_TLVS is set.
 */
export function decodeError(msg: NetlinkMessage): ErrorReply {
  const p = msg.payload;
  need(p, 4 + NLMSG_HDRLEN, "nlmsgerr");
  const v = viewOf(p);
  const error = v.getInt32(0, true);
  const request = {
    length: v.getUint32(4, true),
    type: v.getUint16(8, true),
    flags: v.getUint16(10, true),
    seq: v.getUint32(12, true),
    pid: v.getUint32(16, true),
  };
  const reply: ErrorReply = { errno: error === 0 ? 0 : -error, request };
  if (msg.flags & NlmF.NLM_F_ACK_TLVS) {
    const echoed = msg.flags & NlmF.NLM_F_CAPPED
      ? NLMSG_HDRLEN
      : request.length;
    const start = 4 + align4(echoed);
    if (start <= p.length) addExtAck(reply, new Attributes(p.subarray(start)));
  }
  return reply;
}

/** Decodes the error of an NLMSG_DONE that ends a failed dump (an int, then ext-ACK TLVs). */
export function decodeDone(msg: NetlinkMessage): ErrorReply | null {
  const p = msg.payload;
  if (p.length < 4) return null;
  const error = viewOf(p).getInt32(0, true);
  if (error === 0) return null;
  const reply: ErrorReply = {
    errno: -error,
    request: { length: 0, type: 0, flags: 0, seq: msg.seq, pid: msg.pid },
  };
  if (msg.flags & NlmF.NLM_F_ACK_TLVS) {
    addExtAck(reply, new Attributes(p.subarray(4)));
  }
  return reply;
}

function addExtAck(reply: ErrorReply, a: Attributes): void {
  const text = a.string(NlmsgerrAttr.NLMSGERR_ATTR_MSG);
  if (text !== undefined) reply.message = text;
  const offs = a.u32(NlmsgerrAttr.NLMSGERR_ATTR_OFFS);
  if (offs !== undefined) reply.offset = offs;
  const miss = a.u32(NlmsgerrAttr.NLMSGERR_ATTR_MISS_TYPE);
  if (miss !== undefined) reply.missingType = miss;
}

/** The kernel name of an rtnetlink or control message type, for error messages. */
export function messageTypeName(type: number): string {
  for (const [name, n] of Object.entries(Rtm)) if (n === type) return name;
  for (const [name, n] of Object.entries(Nlmsg)) if (n === type) return name;
  return `netlink message ${type}`;
}
