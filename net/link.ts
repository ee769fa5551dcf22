/**
 * Links, as `ip link` handles them: list, get, create veth pairs and bridges, set up/down,
 * master, name, MTU, namespace, delete. Each call is synchronous (rtnetlink answers at once)
 * and acts in `options.netns` when given.
 * @module
 */
import { NetlinkError } from "./netlink_error.ts";
import { withRtnl } from "./_rtnl.ts";
import {
  decodeLink,
  encodeBridgeCreate,
  encodeLinkDel,
  encodeLinkDump,
  encodeLinkSet,
  encodeVethCreate,
  type Link,
  type LinkChange,
} from "./_messages.ts";
import {
  checkLinkName,
  checkLinkRef,
  checkMtu,
  checkNetns,
  checkTarget,
  getLink,
  indexOf,
  linkExists,
  type LinkRef,
  type NetnsOptions,
  type NetnsTarget,
  resolveTarget,
} from "./_common.ts";
import type { Rtnl } from "./_rtnl.ts";

export type { Link };

const EEXIST = 17;

function existsError(
  context: string,
  name: string,
  where: string,
): NetlinkError {
  return new NetlinkError("RTM_NEWLINK", EEXIST, {
    detail: `link ${JSON.stringify(name)}${where}`,
    context: [context],
    hint: "a link with that name already exists; nothing was changed",
  });
}

/**
 * All links (`ip link show`).
 *
 * @example List link names
 * ```ts
 * import { linkList } from "denobox/net";
 * console.log(linkList().some((l) => l.name === "lo")); // true
 * ```
 */
export function linkList(options: NetnsOptions = {}): Link[] {
  const netns = checkNetns(options.netns);
  return withRtnl(netns, (nl) => nl.dump(encodeLinkDump, decodeLink));
}

/**
 * One link by name or ifindex (`ip link show dev X`).
 *
 * @throws {NetlinkError} `ENODEV` when there is no such link.
 * @example
 * ```ts
 * import { linkGet } from "denobox/net";
 * console.log(linkGet("lo").index); // 1
 * ```
 */
export function linkGet(link: LinkRef, options: NetnsOptions = {}): Link {
  const ref = checkLinkRef(link);
  const netns = checkNetns(options.netns);
  return withRtnl(netns, (nl) => getLink(nl, ref));
}

/** Options of `vethPair()`. */
export interface VethOptions extends NetnsOptions {
  /** Create the peer directly in this namespace (path, fd, or `{ pid }`). */
  peerNetns?: NetnsTarget;
  /** MTU of both ends. */
  mtu?: number;
  /** Bring the first end up. */
  up?: boolean;
  /** Attach the first end to this bridge. */
  master?: LinkRef;
}

/**
 * Creates a veth pair `name` <-> `peer` (`ip link add NAME type veth peer name PEER`), the
 * peer optionally straight in another namespace (one atomic request). Returns the first end.
 * The peer starts down (the kernel cannot open it before the pair is linked): bring it up with
 * `linkSetUp` in its namespace.
 *
 * @throws {NetlinkError} `EEXIST` naming the link when either name is taken (nothing is
 * created).
 * @example A pair with one end in a container's namespace
 * ```ts ignore
 * import { vethPair } from "denobox/net";
 * vethPair("veth0", "eth0", { peerNetns: { pid: 1234 }, up: true });
 * ```
 */
export function vethPair(
  name: string,
  peer: string,
  options: VethOptions = {},
): Link {
  checkLinkName(name);
  checkLinkName(peer, "peer name");
  const netns = checkNetns(options.netns);
  if (options.mtu !== undefined) checkMtu(options.mtu);
  const target = options.peerNetns === undefined
    ? undefined
    : checkTarget(options.peerNetns);
  const master = options.master === undefined
    ? undefined
    : checkLinkRef(options.master, "master");
  if (target === undefined && name === peer) {
    throw new RangeError(
      `Invalid veth pair: both ends are named ${JSON.stringify(name)}`,
    );
  }
  const context = `vethPair(${JSON.stringify(name)}, ${JSON.stringify(peer)})`;
  return withRtnl(netns, (nl) => {
    const masterIndex = master === undefined ? undefined : indexOf(nl, master);
    const resolved = target === undefined ? undefined : resolveTarget(target);
    try {
      const fields: Parameters<typeof encodeVethCreate>[3] = {};
      if (options.mtu !== undefined) fields.mtu = options.mtu;
      if (options.up !== undefined) fields.up = options.up;
      if (masterIndex !== undefined) fields.master = masterIndex;
      if (resolved) fields.peerNetns = resolved.raw;
      try {
        nl.request((seq) => encodeVethCreate(seq, name, peer, fields), {
          detail: `link ${JSON.stringify(name)}`,
          context: [context],
        });
      } catch (e) {
        if (e instanceof NetlinkError && e.code === "EEXIST") {
          if (linkExists(nl, name)) throw existsError(context, name, "");
          throw existsError(
            context,
            peer,
            target === undefined ? "" : " in the peer namespace",
          );
        }
        throw e;
      }
    } finally {
      resolved?.fd?.close();
    }
    return getLink(nl, name);
  });
}

/** Options of `bridgeAdd()`. */
export interface BridgeOptions extends NetnsOptions {
  /** MTU. */
  mtu?: number;
  /** Bring it up. */
  up?: boolean;
}

/**
 * Creates a bridge (`ip link add NAME type bridge`). Returns it.
 *
 * @throws {NetlinkError} `EEXIST` when the name is taken (nothing is changed).
 * @example
 * ```ts ignore
 * import { bridgeAdd } from "denobox/net";
 * const br = bridgeAdd("dbx0", { up: true });
 * ```
 */
export function bridgeAdd(name: string, options: BridgeOptions = {}): Link {
  checkLinkName(name);
  const netns = checkNetns(options.netns);
  if (options.mtu !== undefined) checkMtu(options.mtu);
  const context = `bridgeAdd(${JSON.stringify(name)})`;
  return withRtnl(netns, (nl) => {
    const fields: { mtu?: number; up?: boolean } = {};
    if (options.mtu !== undefined) fields.mtu = options.mtu;
    if (options.up !== undefined) fields.up = options.up;
    try {
      nl.request((seq) => encodeBridgeCreate(seq, name, fields), {
        detail: `link ${JSON.stringify(name)}`,
        context: [context],
      });
    } catch (e) {
      if (e instanceof NetlinkError && e.code === "EEXIST") {
        throw existsError(context, name, "");
      }
      throw e;
    }
    return getLink(nl, name);
  });
}

function setLink(
  nl: Rtnl,
  link: LinkRef,
  change: LinkChange,
  context: string,
): void {
  const index = indexOf(nl, link);
  nl.request((seq) => encodeLinkSet(seq, index, change), {
    detail: typeof link === "number"
      ? `ifindex ${link}`
      : `link ${JSON.stringify(link)}`,
    context: [context],
  });
}

/**
 * Attaches a link to a bridge (`ip link set dev X master BR`), or detaches it with `null`
 * (`nomaster`).
 *
 * @example
 * ```ts ignore
 * import { linkSetMaster } from "denobox/net";
 * linkSetMaster("veth0", "dbx0");
 * ```
 */
export function linkSetMaster(
  link: LinkRef,
  master: LinkRef | null,
  options: NetnsOptions = {},
): void {
  const ref = checkLinkRef(link);
  const m = master === null ? null : checkLinkRef(master, "master");
  const netns = checkNetns(options.netns);
  withRtnl(netns, (nl) => {
    const index = m === null ? 0 : indexOf(nl, m);
    setLink(nl, ref, { master: index }, "linkSetMaster");
  });
}

/**
 * Brings a link up (`ip link set dev X up`).
 *
 * @example
 * ```ts ignore
 * import { linkSetUp } from "denobox/net";
 * linkSetUp("lo", { netns: "/proc/1234/ns/net" });
 * ```
 */
export function linkSetUp(link: LinkRef, options: NetnsOptions = {}): void {
  const ref = checkLinkRef(link);
  withRtnl(
    checkNetns(options.netns),
    (nl) => setLink(nl, ref, { up: true }, "linkSetUp"),
  );
}

/**
 * Brings a link down (`ip link set dev X down`).
 *
 * @example
 * ```ts ignore
 * import { linkSetDown } from "denobox/net";
 * linkSetDown("veth0");
 * ```
 */
export function linkSetDown(link: LinkRef, options: NetnsOptions = {}): void {
  const ref = checkLinkRef(link);
  withRtnl(
    checkNetns(options.netns),
    (nl) => setLink(nl, ref, { up: false }, "linkSetDown"),
  );
}

/**
 * Renames a link (`ip link set dev X name Y`). The kernel refuses (`EBUSY`) to rename a link
 * that is up unless it allows live renames.
 *
 * @throws {NetlinkError} `EEXIST` when the new name is taken (nothing is changed).
 * @example
 * ```ts ignore
 * import { linkSetName } from "denobox/net";
 * linkSetName("vethc1234", "eth0", { netns: "/proc/1234/ns/net" });
 * ```
 */
export function linkSetName(
  link: LinkRef,
  name: string,
  options: NetnsOptions = {},
): void {
  const ref = checkLinkRef(link);
  checkLinkName(name, "new link name");
  const context = `linkSetName(${JSON.stringify(ref)}, ${
    JSON.stringify(name)
  })`;
  withRtnl(checkNetns(options.netns), (nl) => {
    try {
      setLink(nl, ref, { name }, context);
    } catch (e) {
      if (e instanceof NetlinkError && e.code === "EEXIST") {
        throw existsError(context, name, "");
      }
      throw e;
    }
  });
}

/**
 * Sets a link's MTU (`ip link set dev X mtu N`).
 *
 * @example
 * ```ts ignore
 * import { linkSetMtu } from "denobox/net";
 * linkSetMtu("veth0", 1400);
 * ```
 */
export function linkSetMtu(
  link: LinkRef,
  mtu: number,
  options: NetnsOptions = {},
): void {
  const ref = checkLinkRef(link);
  checkMtu(mtu);
  withRtnl(
    checkNetns(options.netns),
    (nl) => setLink(nl, ref, { mtu }, "linkSetMtu"),
  );
}

/**
 * Moves a link into another network namespace (`ip link set dev X netns PID|NAME`): a
 * namespace path, an open namespace fd, or `{ pid }`.
 *
 * @example
 * ```ts ignore
 * import { linkSetNetns } from "denobox/net";
 * linkSetNetns("vethc", { pid: 1234 });
 * ```
 */
export function linkSetNetns(
  link: LinkRef,
  target: NetnsTarget,
  options: NetnsOptions = {},
): void {
  const ref = checkLinkRef(link);
  const t = checkTarget(target);
  withRtnl(checkNetns(options.netns), (nl) => {
    const { raw, fd } = resolveTarget(t);
    try {
      setLink(nl, ref, { netns: raw }, "linkSetNetns");
    } finally {
      fd?.close();
    }
  });
}

/**
 * Deletes a link (`ip link del dev X`); deleting one end of a veth pair deletes both.
 *
 * @example
 * ```ts ignore
 * import { linkDel } from "denobox/net";
 * linkDel("veth0");
 * ```
 */
export function linkDel(link: LinkRef, options: NetnsOptions = {}): void {
  const ref = checkLinkRef(link);
  withRtnl(checkNetns(options.netns), (nl) => {
    const index = indexOf(nl, ref);
    nl.request((seq) => encodeLinkDel(seq, index), {
      detail: typeof ref === "number"
        ? `ifindex ${ref}`
        : `link ${JSON.stringify(ref)}`,
      context: ["linkDel"],
    });
  });
}
