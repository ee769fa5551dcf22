/**
 * Interface addresses, as `ip addr` handles them (IPv4 and IPv6).
 * @module
 */
import { withRtnl } from "./_rtnl.ts";
import {
  type Address,
  decodeAddress,
  encodeAddr,
  encodeAddrDump,
} from "./_messages.ts";
import { IfaF, Rt } from "./_codec.ts";
import { broadcastOf, type Cidr, parseCidr } from "./cidr.ts";
import {
  checkLinkRef,
  checkNetns,
  indexOf,
  type LinkRef,
  type NetnsOptions,
} from "./_common.ts";

export type { Address };

/** Options of `addrAdd()` and `addrDel()`. */
export interface AddrOptions extends NetnsOptions {
  /** IPv4: also set the broadcast address (`brd +`). Default true for prefixes up to /30. */
  broadcast?: boolean;
  /** IPv4 label (`eth0:1`). */
  label?: string;
  /** IPv6: skip duplicate address detection, so the address is usable at once. Default true. */
  nodad?: boolean;
  /** Address scope. Default `"global"` (`"host"` for 127.0.0.0/8 and ::1). */
  scope?: "global" | "link" | "host";
}

const SCOPES = {
  global: Rt.RT_SCOPE_UNIVERSE,
  link: Rt.RT_SCOPE_LINK,
  host: Rt.RT_SCOPE_HOST,
};

function fields(index: number, cidr: Cidr, options: AddrOptions, add: boolean) {
  const f: Parameters<typeof encodeAddr>[2] = { index, cidr };
  if (options.scope !== undefined) {
    const s = SCOPES[options.scope];
    if (s === undefined) {
      throw new RangeError(`Invalid address scope: ${options.scope}`);
    }
    f.scope = s;
  } else if (
    (cidr.family === 4 && cidr.bytes[0] === 127) ||
    (cidr.family === 6 && cidr.bytes.every((b, i) => b === (i === 15 ? 1 : 0)))
  ) {
    f.scope = Rt.RT_SCOPE_HOST;
  }
  if (!add) return f;
  if (cidr.family === 4 && (options.broadcast ?? cidr.prefixLength <= 30)) {
    f.broadcast = broadcastOf(cidr);
  }
  if (cidr.family === 6 && (options.nodad ?? true)) f.flags = IfaF.IFA_F_NODAD;
  if (options.label !== undefined) {
    if (typeof options.label !== "string" || options.label.length > 15) {
      throw new RangeError(
        `Invalid address label: ${JSON.stringify(options.label)}`,
      );
    }
    f.label = options.label;
  }
  return f;
}

/**
 * Adds an address (`ip addr add CIDR dev LINK`). A CIDR without a prefix is a host address
 * (/32, /128).
 *
 * @throws {RangeError} for a bad CIDR, before any request.
 * @throws {NetlinkError} `EEXIST` when the link already has the address.
 * @example
 * ```ts ignore
 * import { addrAdd } from "denobox/net";
 * addrAdd("eth0", "10.88.0.2/16", { netns: "/proc/1234/ns/net" });
 * ```
 */
export function addrAdd(
  link: LinkRef,
  cidr: string,
  options: AddrOptions = {},
): void {
  const ref = checkLinkRef(link);
  const c = parseCidr(cidr);
  const netns = checkNetns(options.netns);
  withRtnl(netns, (nl) => {
    const f = fields(indexOf(nl, ref), c, options, true);
    nl.request((seq) => encodeAddr(seq, "add", f), {
      detail: `${cidr} dev ${ref}`,
      context: ["addrAdd"],
    });
  });
}

/**
 * Removes an address (`ip addr del CIDR dev LINK`).
 *
 * @throws {NetlinkError} `EADDRNOTAVAIL` when the link does not have it.
 * @example
 * ```ts ignore
 * import { addrDel } from "denobox/net";
 * addrDel("eth0", "10.88.0.2/16");
 * ```
 */
export function addrDel(
  link: LinkRef,
  cidr: string,
  options: NetnsOptions = {},
): void {
  const ref = checkLinkRef(link);
  const c = parseCidr(cidr);
  const netns = checkNetns(options.netns);
  withRtnl(netns, (nl) => {
    const f = fields(indexOf(nl, ref), c, {}, false);
    nl.request((seq) => encodeAddr(seq, "del", f), {
      detail: `${cidr} dev ${ref}`,
      context: ["addrDel"],
    });
  });
}

/** Options of `addrList()`. */
export interface AddrListOptions extends NetnsOptions {
  /** Only this link's addresses. */
  link?: LinkRef;
  /** Only IPv4 or IPv6. */
  family?: 4 | 6;
}

/**
 * Lists addresses (`ip addr show`), optionally of one link or family.
 *
 * @example
 * ```ts
 * import { addrList } from "denobox/net";
 * const lo = addrList({ link: "lo" });
 * console.log(lo.map((a) => a.cidr)); // e.g. [ "127.0.0.1/8", "::1/128" ]
 * ```
 */
export function addrList(options: AddrListOptions = {}): Address[] {
  const ref = options.link === undefined
    ? undefined
    : checkLinkRef(options.link);
  if (
    options.family !== undefined && options.family !== 4 && options.family !== 6
  ) {
    throw new RangeError(`Invalid address family: ${options.family} (4 or 6)`);
  }
  const netns = checkNetns(options.netns);
  return withRtnl(netns, (nl) => {
    const filter: { family?: 4 | 6; index?: number } = {};
    if (options.family !== undefined) filter.family = options.family;
    if (ref !== undefined) filter.index = indexOf(nl, ref);
    return nl.dump((seq) => encodeAddrDump(seq, filter), (m) => {
      const a = decodeAddress(m);
      if (filter.index !== undefined && a.index !== filter.index) {
        return undefined;
      }
      if (filter.family !== undefined && a.family !== filter.family) {
        return undefined;
      }
      return a;
    });
  });
}
