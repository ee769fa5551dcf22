/**
 * Routes, as `ip route` handles them: default routes, routes via a gateway, routes to a device.
 * @module
 */
import { withRtnl } from "./_rtnl.ts";
import { NetlinkError } from "./netlink_error.ts";
import {
  decodeRoute,
  encodeRoute,
  encodeRouteDump,
  type Route,
} from "./_messages.ts";
import { Rt } from "./_codec.ts";
import { type Cidr, networkOf, parseCidr, parseIp } from "./cidr.ts";
import {
  checkLinkRef,
  checkNetns,
  indexOf,
  type LinkRef,
  type NetnsOptions,
} from "./_common.ts";

export type { Route };

/** A route to add or delete. */
export interface RouteSpec {
  /** `"default"` (the default) or a destination prefix (`10.89.0.0/16`, `fd00::/64`). */
  dst?: string;
  /** The next hop (`10.88.0.1`). */
  via?: string;
  /** The output device. */
  dev?: LinkRef;
  /** 4 or 6: only needed for a default route with neither `via` nor a prefix to tell. */
  family?: 4 | 6;
  /** Routing table (default 254, main). */
  table?: number;
  /** Metric. */
  metric?: number;
  /** Preferred source address. */
  src?: string;
}

interface Checked {
  family: 4 | 6;
  dst: Cidr | null;
  via: Uint8Array | undefined;
  dev: LinkRef | undefined;
  table: number;
  metric: number | undefined;
  src: Uint8Array | undefined;
}

function checkSpec(spec: RouteSpec): Checked {
  if (typeof spec !== "object" || spec === null) {
    throw new TypeError(
      "Invalid route: expected an object like { dst, via, dev }",
    );
  }
  const dstText = spec.dst ?? "default";
  let dst: Cidr | null = null;
  if (dstText !== "default") {
    dst = parseCidr(dstText, { requirePrefix: false });
    const net = networkOf(dst);
    if (!net.bytes.every((b, i) => b === dst!.bytes[i])) {
      throw new RangeError(
        `Invalid route destination: ${dstText} has host bits set (did you mean the network address?)`,
      );
    }
  }
  const via = spec.via === undefined ? undefined : parseIp(spec.via);
  const src = spec.src === undefined ? undefined : parseIp(spec.src);
  const family = dst?.family ?? via?.family ?? spec.family ?? 4;
  if (spec.family !== undefined && spec.family !== 4 && spec.family !== 6) {
    throw new RangeError(`Invalid route family: ${spec.family} (4 or 6)`);
  }
  for (
    const [what, f] of [["via", via?.family], ["src", src?.family], [
      "family",
      spec.family,
    ]]
  ) {
    if (f !== undefined && f !== family) {
      throw new RangeError(
        `Invalid route: ${what} is IPv${f} but the route is IPv${family}`,
      );
    }
  }
  const dev = spec.dev === undefined
    ? undefined
    : checkLinkRef(spec.dev, "route device");
  if (via === undefined && dev === undefined) {
    throw new RangeError(
      "Invalid route: give a gateway (via), a device (dev), or both",
    );
  }
  const table = spec.table ?? Rt.RT_TABLE_MAIN;
  if (!Number.isInteger(table) || table < 1 || table > 0xffffffff) {
    throw new RangeError(`Invalid route table: ${table}`);
  }
  if (
    spec.metric !== undefined &&
    (!Number.isInteger(spec.metric) || spec.metric < 0 ||
      spec.metric > 0xffffffff)
  ) {
    throw new RangeError(`Invalid route metric: ${spec.metric}`);
  }
  return {
    family,
    dst,
    via: via?.bytes,
    dev,
    table,
    metric: spec.metric,
    src: src?.bytes,
  };
}

function send(op: "add" | "del", spec: RouteSpec, options: NetnsOptions): void {
  const c = checkSpec(spec);
  const netns = checkNetns(options.netns);
  withRtnl(netns, (nl) => {
    const f: Parameters<typeof encodeRoute>[2] = {
      family: c.family,
      dst: c.dst,
      table: c.table,
    };
    if (c.via) f.gateway = c.via;
    if (c.dev !== undefined) f.oif = indexOf(nl, c.dev);
    if (c.metric !== undefined) f.priority = c.metric;
    if (c.src) f.prefsrc = c.src;
    const text = [
      spec.dst ?? "default",
      c.via ? `via ${spec.via}` : "",
      c.dev ? `dev ${c.dev}` : "",
    ]
      .filter(Boolean).join(" ");
    nl.request((seq) => encodeRoute(seq, op, f), {
      detail: text,
      context: [op === "add" ? "routeAdd" : "routeDel"],
    });
  });
}

/**
 * Adds a route (`ip route add default via 10.88.0.1`, `ip route add 10.89.0.0/16 dev br0`).
 *
 * @throws {RangeError} for a bad prefix or address, before any request.
 * @throws {NetlinkError} `ENETUNREACH` with the kernel's text when the gateway is unreachable,
 * `EEXIST` when the route exists.
 * @example
 * ```ts ignore
 * import { routeAdd } from "denobox/net";
 * routeAdd({ via: "10.88.0.1" }, { netns: "/proc/1234/ns/net" });
 * ```
 */
export function routeAdd(spec: RouteSpec, options: NetnsOptions = {}): void {
  send("add", spec, options);
}

/**
 * Deletes a route (`ip route del ...`).
 *
 * @throws {NetlinkError} `ESRCH` when there is no such route.
 * @example
 * ```ts ignore
 * import { routeDel } from "denobox/net";
 * routeDel({ dst: "10.89.0.0/16", dev: "br0" });
 * ```
 */
export function routeDel(spec: RouteSpec, options: NetnsOptions = {}): void {
  send("del", spec, options);
}

/** Options of `routeList()`. */
export interface RouteListOptions extends NetnsOptions {
  /** 4 (default) or 6. */
  family?: 4 | 6;
  /** Table to list (default 254, main). */
  table?: number;
}

/**
 * Lists the routes of one table (`ip route show`, `ip -6 route show`).
 *
 * @example
 * ```ts
 * import { routeList } from "denobox/net";
 * for (const r of routeList()) console.log(r.dst, r.gateway ?? "", r.dev ?? "");
 * ```
 */
export function routeList(options: RouteListOptions = {}): Route[] {
  const family = options.family ?? 4;
  if (family !== 4 && family !== 6) {
    throw new RangeError(`Invalid route family: ${family} (4 or 6)`);
  }
  const table = options.table ?? Rt.RT_TABLE_MAIN;
  if (!Number.isInteger(table) || table < 1 || table > 0xffffffff) {
    throw new RangeError(`Invalid route table: ${table}`);
  }
  const netns = checkNetns(options.netns);
  return withRtnl(netns, (nl) => {
    try {
      return nl.dump((seq) => encodeRouteDump(seq, { family, table }), (m) => {
        const r = decodeRoute(m);
        return r.table === table && r.family === family ? r : undefined;
      });
    } catch (e) {
      // A table that holds no route does not exist yet: the kernel says ENOENT.
      if (e instanceof NetlinkError && e.code === "ENOENT") return [];
      throw e;
    }
  });
}
