/**
 * rtnetlink requests and replies as typed values: pure encoders (`seq` in, bytes out) for every
 * request the `ip`-like functions send, and decoders from kernel messages to `Link`, `Address`
 * and `Route`. Requests follow iproute2's layout, so the golden tests can compare bytes with
 * what `ip` itself sends.
 * @module
 */
import {
  Af,
  Attributes,
  Ifa,
  IFADDRMSG_LEN,
  Iff,
  IFINFOMSG_LEN,
  Ifla,
  IflaInfo,
  MessageWriter,
  type NetlinkMessage,
  NlmF,
  readIfAddrMsg,
  readIfInfoMsg,
  readRtMsg,
  Rt,
  Rta,
  RtextFilter,
  Rtm,
  RTMSG_LEN,
  VethInfo,
} from "./_codec.ts";
import { type Cidr, formatIp } from "./cidr.ts";

const CREATE = NlmF.NLM_F_REQUEST | NlmF.NLM_F_ACK | NlmF.NLM_F_EXCL |
  NlmF.NLM_F_CREATE;
const CHANGE = NlmF.NLM_F_REQUEST | NlmF.NLM_F_ACK;
const DUMP = NlmF.NLM_F_REQUEST | NlmF.NLM_F_DUMP;

/** Where a link goes: a pid's namespace, or a namespace fd. */
export type NetnsTargetRaw = { pid: number } | { fd: number };

/** A network interface, as `ip link` shows it. */
export interface Link {
  /** The ifindex. */
  index: number;
  /** The name (`eth0`). */
  name: string;
  /** `IFLA_INFO_KIND` (`"veth"`, `"bridge"`), or null for devices without one (lo, physical). */
  kind: string | null;
  /** The `IFF_*` flags. */
  flags: number;
  /** Administratively up (IFF_UP). */
  up: boolean;
  /** RFC 2863 operational state. */
  operState:
    | "unknown"
    | "notpresent"
    | "down"
    | "lowerlayerdown"
    | "testing"
    | "dormant"
    | "up";
  /** MTU in bytes. */
  mtu: number;
  /** Hardware address (`aa:bb:...`), or null. */
  mac: string | null;
  /** ifindex of the master (bridge), or null. */
  master: number | null;
  /** ifindex of the link it is bound to (a veth's peer), or null. */
  parent: number | null;
  /** The peer's namespace id, when `parent` lives in another namespace, or null. */
  linkNetnsId: number | null;
}

/** An interface address, as `ip addr` shows it. */
export interface Address {
  /** The ifindex it belongs to. */
  index: number;
  /** 4 or 6. */
  family: 4 | 6;
  /** The local address (`10.88.0.2`). */
  address: string;
  /** Prefix length. */
  prefixLength: number;
  /** `address/prefixLength`. */
  cidr: string;
  /** `RT_SCOPE_*`: 0 global, 253 link, 254 host. */
  scope: number;
  /** `IFA_F_*` flags. */
  flags: number;
  /** The IPv4 label (`eth0`, `eth0:1`), or null. */
  label: string | null;
  /** The IPv4 broadcast address, or null. */
  broadcast: string | null;
}

/** A route, as `ip route` shows it. */
export interface Route {
  /** 4 or 6. */
  family: 4 | 6;
  /** `"default"` or the destination prefix (`10.88.0.0/16`). */
  dst: string;
  /** The next hop, or null for a directly connected route. */
  gateway: string | null;
  /** ifindex of the output device, or null. */
  dev: number | null;
  /** The routing table (254 = main). */
  table: number;
  /** `RTPROT_*`: 2 kernel, 3 boot, 4 static. */
  protocol: number;
  /** `RT_SCOPE_*`. */
  scope: number;
  /** `RTN_*`: 1 unicast, 2 local. */
  type: number;
  /** Preferred source address, or null. */
  prefsrc: string | null;
  /** Metric, or null. */
  priority: number | null;
}

const OPER_STATES = [
  "unknown",
  "notpresent",
  "down",
  "lowerlayerdown",
  "testing",
  "dormant",
  "up",
] as const;

const familyOf = (n: number): 4 | 6 => (n === Af.AF_INET6 ? 6 : 4);
const afOf = (f: 4 | 6) => (f === 6 ? Af.AF_INET6 : Af.AF_INET);

function netnsAttr(w: MessageWriter, t: NetnsTargetRaw): void {
  if ("pid" in t) w.u32(Ifla.IFLA_NET_NS_PID, t.pid);
  else w.u32(Ifla.IFLA_NET_NS_FD, t.fd);
}

function upFlags(up: boolean | undefined) {
  return up === undefined
    ? {}
    : { flags: up ? Iff.IFF_UP : 0, change: Iff.IFF_UP };
}

/** RTM_GETLINK dump of every link (statistics skipped). */
export function encodeLinkDump(seq: number): Uint8Array<ArrayBuffer> {
  return new MessageWriter().begin(Rtm.RTM_GETLINK, DUMP, seq)
    .ifinfomsg({ family: Af.AF_UNSPEC })
    .u32(Ifla.IFLA_EXT_MASK, RtextFilter.RTEXT_FILTER_SKIP_STATS)
    .end().bytes();
}

/** RTM_GETLINK of one link by index or name. */
export function encodeLinkGet(
  seq: number,
  link: { index: number } | { name: string },
): Uint8Array<ArrayBuffer> {
  const w = new MessageWriter().begin(Rtm.RTM_GETLINK, CHANGE, seq)
    .ifinfomsg({ index: "index" in link ? link.index : 0 });
  if ("name" in link) w.string(Ifla.IFLA_IFNAME, link.name);
  return w.u32(Ifla.IFLA_EXT_MASK, RtextFilter.RTEXT_FILTER_SKIP_STATS).end()
    .bytes();
}

/** Options common to link creation. */
export interface CreateLinkFields {
  mtu?: number;
  up?: boolean;
  master?: number;
}

/** RTM_NEWLINK creating a veth pair (`ip link add NAME type veth peer name PEER`). */
export function encodeVethCreate(
  seq: number,
  name: string,
  peer: string,
  options: CreateLinkFields & {
    peerNetns?: NetnsTargetRaw;
    peerMtu?: number;
  } = {},
): Uint8Array<ArrayBuffer> {
  const w = new MessageWriter().begin(Rtm.RTM_NEWLINK, CREATE, seq)
    .ifinfomsg(upFlags(options.up))
    .string(Ifla.IFLA_IFNAME, name);
  if (options.mtu !== undefined) w.u32(Ifla.IFLA_MTU, options.mtu);
  if (options.master !== undefined) w.u32(Ifla.IFLA_MASTER, options.master);
  w.nest(Ifla.IFLA_LINKINFO, (li) => {
    li.stringNoNul(IflaInfo.IFLA_INFO_KIND, "veth");
    li.nest(IflaInfo.IFLA_INFO_DATA, (d) => {
      d.nest(VethInfo.VETH_INFO_PEER, (p) => {
        p.ifinfomsg().string(Ifla.IFLA_IFNAME, peer);
        const mtu = options.peerMtu ?? options.mtu;
        if (mtu !== undefined) p.u32(Ifla.IFLA_MTU, mtu);
        if (options.peerNetns) netnsAttr(p, options.peerNetns);
      });
    });
  });
  return w.end().bytes();
}

/** RTM_NEWLINK creating a bridge (`ip link add NAME type bridge`). */
export function encodeBridgeCreate(
  seq: number,
  name: string,
  options: CreateLinkFields = {},
): Uint8Array<ArrayBuffer> {
  const w = new MessageWriter().begin(Rtm.RTM_NEWLINK, CREATE, seq)
    .ifinfomsg(upFlags(options.up))
    .string(Ifla.IFLA_IFNAME, name);
  if (options.mtu !== undefined) w.u32(Ifla.IFLA_MTU, options.mtu);
  w.nest(
    Ifla.IFLA_LINKINFO,
    (li) => li.stringNoNul(IflaInfo.IFLA_INFO_KIND, "bridge"),
  );
  return w.end().bytes();
}

/** What `encodeLinkSet` changes; absent fields stay as they are. */
export interface LinkChange {
  up?: boolean;
  name?: string;
  mtu?: number;
  /** ifindex of the new master; 0 detaches (`nomaster`). */
  master?: number;
  netns?: NetnsTargetRaw;
}

/** RTM_NEWLINK changing an existing link (`ip link set dev X ...`). */
export function encodeLinkSet(
  seq: number,
  index: number,
  change: LinkChange,
): Uint8Array<ArrayBuffer> {
  const w = new MessageWriter().begin(Rtm.RTM_NEWLINK, CHANGE, seq)
    .ifinfomsg({ index, ...upFlags(change.up) });
  if (change.name !== undefined) w.string(Ifla.IFLA_IFNAME, change.name);
  if (change.mtu !== undefined) w.u32(Ifla.IFLA_MTU, change.mtu);
  if (change.master !== undefined) w.u32(Ifla.IFLA_MASTER, change.master);
  if (change.netns !== undefined) netnsAttr(w, change.netns);
  return w.end().bytes();
}

/** RTM_DELLINK (`ip link del dev X`). */
export function encodeLinkDel(
  seq: number,
  index: number,
): Uint8Array<ArrayBuffer> {
  return new MessageWriter().begin(Rtm.RTM_DELLINK, CHANGE, seq)
    .ifinfomsg({ index }).end().bytes();
}

/** Fields of an address request. */
export interface AddrFields {
  index: number;
  cidr: Cidr;
  /** IPv4 broadcast address bytes. */
  broadcast?: Uint8Array;
  /** `IFA_F_*` (NODAD...). */
  flags?: number;
  scope?: number;
  label?: string;
}

/** RTM_NEWADDR / RTM_DELADDR (`ip addr add|del CIDR dev X`). */
export function encodeAddr(
  seq: number,
  op: "add" | "del",
  f: AddrFields,
): Uint8Array<ArrayBuffer> {
  const flags = f.flags ?? 0;
  const w = new MessageWriter()
    .begin(
      op === "add" ? Rtm.RTM_NEWADDR : Rtm.RTM_DELADDR,
      op === "add" ? CREATE : CHANGE,
      seq,
    )
    .ifaddrmsg({
      family: afOf(f.cidr.family),
      prefixLength: f.cidr.prefixLength,
      flags: flags & 0xff,
      scope: f.scope ?? 0,
      index: f.index,
    })
    .attr(Ifa.IFA_LOCAL, f.cidr.bytes)
    .attr(Ifa.IFA_ADDRESS, f.cidr.bytes);
  if (f.broadcast) w.attr(Ifa.IFA_BROADCAST, f.broadcast);
  if (f.label !== undefined) w.string(Ifa.IFA_LABEL, f.label);
  if (flags > 0xff) w.u32(Ifa.IFA_FLAGS, flags);
  return w.end().bytes();
}

/** RTM_GETADDR dump, filtered in the kernel by family and ifindex (strict checking). */
export function encodeAddrDump(
  seq: number,
  filter: { family?: 4 | 6; index?: number } = {},
): Uint8Array<ArrayBuffer> {
  return new MessageWriter().begin(Rtm.RTM_GETADDR, DUMP, seq)
    .ifaddrmsg({
      family: filter.family === undefined ? Af.AF_UNSPEC : afOf(filter.family),
      index: filter.index ?? 0,
    })
    .end().bytes();
}

/** Fields of a route request. */
export interface RouteFields {
  family: 4 | 6;
  /** Destination prefix; prefixLength 0 is the default route. */
  dst: Cidr | null;
  gateway?: Uint8Array;
  oif?: number;
  table?: number;
  protocol?: number;
  scope?: number;
  type?: number;
  priority?: number;
  prefsrc?: Uint8Array;
}

/** RTM_NEWROUTE / RTM_DELROUTE (`ip route add|del ...`). */
export function encodeRoute(
  seq: number,
  op: "add" | "del",
  f: RouteFields,
): Uint8Array<ArrayBuffer> {
  const table = f.table ?? Rt.RT_TABLE_MAIN;
  const dstLength = f.dst?.prefixLength ?? 0;
  const add = op === "add";
  const defaultScope = !add
    ? Rt.RT_SCOPE_NOWHERE
    : f.gateway === undefined
    ? Rt.RT_SCOPE_LINK
    : Rt.RT_SCOPE_UNIVERSE;
  const w = new MessageWriter()
    .begin(
      add ? Rtm.RTM_NEWROUTE : Rtm.RTM_DELROUTE,
      add ? CREATE : CHANGE,
      seq,
    )
    .rtmsg({
      family: afOf(f.family),
      dstLength,
      table: table > 255 ? Rt.RT_TABLE_UNSPEC : table,
      protocol: f.protocol ?? (add ? Rt.RTPROT_BOOT : Rt.RTPROT_UNSPEC),
      scope: f.scope ?? defaultScope,
      type: f.type ?? (add ? Rt.RTN_UNICAST : Rt.RTN_UNSPEC),
    });
  if (f.dst && dstLength > 0) w.attr(Rta.RTA_DST, f.dst.bytes);
  if (f.prefsrc) w.attr(Rta.RTA_PREFSRC, f.prefsrc);
  if (f.gateway) w.attr(Rta.RTA_GATEWAY, f.gateway);
  if (f.priority !== undefined) w.u32(Rta.RTA_PRIORITY, f.priority);
  if (f.oif !== undefined) w.u32(Rta.RTA_OIF, f.oif);
  if (table > 255) w.u32(Rta.RTA_TABLE, table);
  return w.end().bytes();
}

/** RTM_GETROUTE dump of one family, filtered in the kernel by table (strict checking). */
export function encodeRouteDump(
  seq: number,
  filter: { family: 4 | 6; table?: number },
): Uint8Array<ArrayBuffer> {
  const table = filter.table ?? 0;
  const w = new MessageWriter().begin(Rtm.RTM_GETROUTE, DUMP, seq)
    .rtmsg({ family: afOf(filter.family), table: table > 255 ? 0 : table });
  if (table > 255) w.u32(Rta.RTA_TABLE, table);
  return w.end().bytes();
}

const hex2 = (b: number) => b.toString(16).padStart(2, "0");

/** Decodes an RTM_NEWLINK message. */
export function decodeLink(msg: NetlinkMessage): Link {
  const h = readIfInfoMsg(msg.payload);
  const a = new Attributes(msg.payload.subarray(IFINFOMSG_LEN));
  const mac = a.bytes(Ifla.IFLA_ADDRESS);
  const op = a.u8(Ifla.IFLA_OPERSTATE) ?? 0;
  const parent = a.u32(Ifla.IFLA_LINK);
  return {
    index: h.index,
    name: a.string(Ifla.IFLA_IFNAME) ?? "",
    kind: a.nested(Ifla.IFLA_LINKINFO)?.string(IflaInfo.IFLA_INFO_KIND) ?? null,
    flags: h.flags,
    up: (h.flags & Iff.IFF_UP) !== 0,
    operState: OPER_STATES[op] ?? "unknown",
    mtu: a.u32(Ifla.IFLA_MTU) ?? 0,
    mac: mac ? Array.from(mac, hex2).join(":") : null,
    master: a.u32(Ifla.IFLA_MASTER) ?? null,
    parent: parent === undefined || parent === h.index ? null : parent,
    linkNetnsId: a.i32(Ifla.IFLA_LINK_NETNSID) ?? null,
  };
}

/** Decodes an RTM_NEWADDR message. */
export function decodeAddress(msg: NetlinkMessage): Address {
  const h = readIfAddrMsg(msg.payload);
  const a = new Attributes(msg.payload.subarray(IFADDRMSG_LEN));
  const local = a.bytes(Ifa.IFA_LOCAL) ?? a.bytes(Ifa.IFA_ADDRESS);
  const address = local ? formatIp(local) : "";
  const brd = a.bytes(Ifa.IFA_BROADCAST);
  return {
    index: h.index,
    family: familyOf(h.family),
    address,
    prefixLength: h.prefixLength,
    cidr: `${address}/${h.prefixLength}`,
    scope: h.scope,
    flags: a.u32(Ifa.IFA_FLAGS) ?? h.flags,
    label: a.string(Ifa.IFA_LABEL) ?? null,
    broadcast: brd ? formatIp(brd) : null,
  };
}

/** Decodes an RTM_NEWROUTE message. */
export function decodeRoute(msg: NetlinkMessage): Route {
  const h = readRtMsg(msg.payload);
  const a = new Attributes(msg.payload.subarray(RTMSG_LEN));
  const dst = a.bytes(Rta.RTA_DST);
  const gw = a.bytes(Rta.RTA_GATEWAY);
  const src = a.bytes(Rta.RTA_PREFSRC);
  return {
    family: familyOf(h.family),
    dst: h.dstLength === 0 || !dst
      ? "default"
      : `${formatIp(dst)}/${h.dstLength}`,
    gateway: gw ? formatIp(gw) : null,
    dev: a.u32(Rta.RTA_OIF) ?? null,
    table: a.u32(Rta.RTA_TABLE) ?? h.table,
    protocol: h.protocol,
    scope: h.scope,
    type: h.type,
    prefsrc: src ? formatIp(src) : null,
    priority: a.u32(Rta.RTA_PRIORITY) ?? null,
  };
}
