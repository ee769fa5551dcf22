/**
 * Argument checks and name resolution shared by the `ip`-like functions. Every check runs
 * before anything reaches the kernel.
 * @module
 */
import { type NetnsRef, open, type OwnedFd } from "denobox/libc";
import type { Rtnl } from "./_rtnl.ts";
import {
  decodeLink,
  encodeLinkGet,
  type Link,
  type NetnsTargetRaw,
} from "./_messages.ts";

/** Options of every `ip`-like function: where to act. */
export interface NetnsOptions {
  /**
   * The network namespace to act in: a path (`/proc/PID/ns/net`, `/run/netns/NAME`) or an
   * open namespace fd or pidfd. Default: the calling thread's namespace.
   */
  netns?: NetnsRef;
}

/** A link by name (`"eth0"`) or ifindex. */
export type LinkRef = string | number;

/**
 * Where to move a link: a namespace path, an open namespace fd, or `{ pid }` for the
 * namespace of a process.
 */
export type NetnsTarget = string | number | { pid: number };

const encoder = new TextEncoder();

/** Checks a link name as the kernel's dev_valid_name() does; a `RangeError` otherwise. */
export function checkLinkName(name: unknown, what = "link name"): string {
  if (typeof name !== "string") {
    throw new TypeError(
      `Invalid ${what}: expected a string, got ${typeof name}`,
    );
  }
  const len = encoder.encode(name).length;
  if (
    len === 0 || len > 15 || name === "." || name === ".." ||
    /[\s/:\0]/.test(name)
  ) {
    throw new RangeError(
      `Invalid ${what}: ${
        JSON.stringify(name)
      } (1 to 15 bytes, no "/", ":" or whitespace)`,
    );
  }
  return name;
}

/** Checks a link reference (name or positive ifindex). */
export function checkLinkRef(link: unknown, what = "link"): LinkRef {
  if (typeof link === "number") {
    if (!Number.isInteger(link) || link <= 0 || link > 0x7fffffff) {
      throw new RangeError(`Invalid ${what}: ifindex ${link}`);
    }
    return link;
  }
  return checkLinkName(link, `${what} name`);
}

/** Checks an MTU. */
export function checkMtu(mtu: unknown): number {
  if (
    typeof mtu !== "number" || !Number.isInteger(mtu) || mtu < 68 || mtu > 65535
  ) {
    throw new RangeError(`Invalid MTU: ${mtu} (68 to 65535)`);
  }
  return mtu;
}

/** Checks a `netns` option. */
export function checkNetns(netns: unknown): NetnsRef | undefined {
  if (netns === undefined) return undefined;
  if (typeof netns === "number") {
    if (!Number.isInteger(netns) || netns < 0) {
      throw new RangeError(`Invalid netns fd: ${netns}`);
    }
    return netns;
  }
  if (typeof netns !== "string" || netns === "") {
    throw new TypeError(
      `Invalid netns: expected a path or an fd, got ${JSON.stringify(netns)}`,
    );
  }
  return netns;
}

/** Checks a move target. */
export function checkTarget(t: unknown): NetnsTarget {
  if (typeof t === "object" && t !== null && "pid" in t) {
    const pid = (t as { pid: unknown }).pid;
    if (typeof pid !== "number" || !Number.isInteger(pid) || pid <= 0) {
      throw new RangeError(`Invalid netns target: pid ${pid}`);
    }
    return { pid };
  }
  const r = checkNetns(t);
  if (r === undefined) throw new TypeError("Invalid netns target: undefined");
  return r;
}

/** Turns a target into what the kernel takes; a path is opened (close the returned fd after). */
export function resolveTarget(
  t: NetnsTarget,
): { raw: NetnsTargetRaw; fd: OwnedFd | null } {
  if (typeof t === "object") return { raw: { pid: t.pid }, fd: null };
  if (typeof t === "number") return { raw: { fd: t }, fd: null };
  const fd = open(t);
  return { raw: { fd: fd.fd }, fd };
}

/** Looks a link up by name or index. */
export function getLink(nl: Rtnl, link: LinkRef): Link {
  const q = typeof link === "number" ? { index: link } : { name: link };
  const found = nl.request(
    (seq) => encodeLinkGet(seq, q),
    {
      detail: typeof link === "number"
        ? `ifindex ${link}`
        : `link ${JSON.stringify(link)}`,
    },
    decodeLink,
  );
  return found[0]!;
}

/** Whether a link exists (ENODEV is false). */
export function linkExists(nl: Rtnl, link: LinkRef): boolean {
  try {
    getLink(nl, link);
    return true;
  } catch (e) {
    if ((e as { code?: string }).code === "ENODEV") return false;
    throw e;
  }
}

/** The ifindex of a link reference (names are looked up). */
export function indexOf(nl: Rtnl, link: LinkRef): number {
  return typeof link === "number" ? link : getLink(nl, link).index;
}
