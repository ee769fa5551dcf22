/**
 * Container networking on rtnetlink, without running `ip`: links, veth pairs, bridges,
 * addresses, routes and namespace moves through an AF_NETLINK socket; address leases for a
 * bridge subnet shared safely between processes; outbound NAT and published ports in an
 * nftables table of our own; and `networkSetup()`, the `spawn({ setup })` hook that gives a
 * sandbox `eth0` on a bridge.
 *
 * Every `ip`-like function is synchronous (the kernel answers at once) and takes
 * `{ netns }`, a namespace path or fd, to act inside another network namespace: the socket is
 * opened there by moving the main thread in and straight back. Bad arguments are
 * `TypeError`/`RangeError` before any request; kernel refusals are `NetlinkError` (a
 * `SyscallError`) with the errno code and the kernel's extended-ACK text.
 *
 * @example List links and addresses
 * ```ts
 * import { addrList, linkList } from "denobox/net";
 * for (const l of linkList()) {
 *   const addrs = addrList({ link: l.index }).map((a) => a.cidr);
 *   console.log(l.index, l.name, l.kind ?? "", l.up ? "UP" : "DOWN", addrs.join(" "));
 * }
 * ```
 * @module
 */
export {
  bridgeAdd,
  type BridgeOptions,
  type Link,
  linkDel,
  linkGet,
  linkList,
  linkSetDown,
  linkSetMaster,
  linkSetMtu,
  linkSetName,
  linkSetNetns,
  linkSetUp,
  type VethOptions,
  vethPair,
} from "./link.ts";
export {
  addrAdd,
  addrDel,
  type Address,
  addrList,
  type AddrListOptions,
  type AddrOptions,
} from "./addr.ts";
export {
  type Route,
  routeAdd,
  routeDel,
  routeList,
  type RouteListOptions,
  type RouteSpec,
} from "./route.ts";
export type { LinkRef, NetnsOptions, NetnsTarget } from "./_common.ts";
export { NetlinkError, type NetlinkErrorInfo } from "./netlink_error.ts";
export {
  type Cidr,
  formatCidr,
  formatIp,
  type IpAddress,
  parseCidr,
  parseIp,
} from "./cidr.ts";
export { parsePortMapping, type PortMapping } from "./ports.ts";
export {
  natRuleset,
  type NatSpec,
  natTableName,
  nftApply,
  type PortForward,
} from "./nat.ts";
export {
  AddressPool,
  DEFAULT_STATE_DIR,
  type Lease,
  type LeaseOwner,
  type LeaseRecord,
  type PoolOptions,
  type PoolState,
} from "./ipam.ts";
export {
  type NetworkAttachment,
  type NetworkOptions,
  networkSetup,
} from "./setup.ts";
