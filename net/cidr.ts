/**
 * IPv4/IPv6 addresses and CIDR prefixes: strict parsing (a `RangeError` names what is wrong,
 * before anything reaches the kernel), canonical formatting (RFC 5952 for IPv6) and the
 * prefix arithmetic that address allocation needs.
 * @module
 */

/** An IP address as bytes: 4 for IPv4, 16 for IPv6. */
export interface IpAddress {
  /** 4 or 6. */
  readonly family: 4 | 6;
  /** Network byte order. */
  readonly bytes: Uint8Array;
}

/** An address with a prefix length (`10.88.0.2/16`). */
export interface Cidr extends IpAddress {
  /** Prefix length in bits (0..32 or 0..128). */
  readonly prefixLength: number;
}

function typeCheck(s: unknown, what: string): asserts s is string {
  if (typeof s !== "string") {
    throw new TypeError(`Invalid ${what}: expected a string, got ${typeof s}`);
  }
}

function parseV4(s: string): Uint8Array | null {
  const parts = s.split(".");
  if (parts.length !== 4) return null;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i]!;
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return null;
    const n = Number(p);
    if (n > 255) return null;
    out[i] = n;
  }
  return out;
}

function parseV6(s: string): Uint8Array | null {
  if (!/^[0-9a-fA-F:.]+$/.test(s)) return null;
  const halves = s.split("::");
  if (halves.length > 2) return null;
  const groups = (part: string): number[] | null => {
    if (part === "") return [];
    const out: number[] = [];
    const items = part.split(":");
    for (let i = 0; i < items.length; i++) {
      const it = items[i]!;
      if (i === items.length - 1 && it.includes(".")) {
        const v4 = parseV4(it);
        if (!v4) return null;
        out.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(it)) return null;
        out.push(parseInt(it, 16));
      }
    }
    return out;
  };
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  if (!head || !tail) return null;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return null;
  const all = [
    ...head,
    ...Array(halves.length === 2 ? missing : 0).fill(0),
    ...tail,
  ];
  const out = new Uint8Array(16);
  all.forEach((g, i) => {
    out[i * 2] = g >> 8;
    out[i * 2 + 1] = g & 0xff;
  });
  return out;
}

/**
 * Parses an IPv4 (`10.0.0.1`) or IPv6 (`fd00::1`, `::ffff:10.0.0.1`) address. Leading zeros
 * in IPv4 parts, zones (`%eth0`) and prefixes are rejected.
 *
 * @throws {TypeError} when `s` is not a string.
 * @throws {RangeError} when it is not an address.
 * @example Parse and format
 * ```ts
 * import { formatIp, parseIp } from "denobox/net";
 * const a = parseIp("fd00:0:0::1");
 * console.log(a.family, formatIp(a)); // 6 fd00::1
 * ```
 */
export function parseIp(s: string): IpAddress {
  typeCheck(s, "IP address");
  const v4 = parseV4(s);
  if (v4) return { family: 4, bytes: v4 };
  const v6 = s.includes(":") ? parseV6(s) : null;
  if (v6) return { family: 6, bytes: v6 };
  throw new RangeError(`Invalid IP address: ${JSON.stringify(s)}`);
}

/**
 * Parses `address/prefix` (`10.88.0.2/16`, `fd00::2/64`). Without `/prefix` the address is a
 * host route (/32 or /128) unless `requirePrefix` is set.
 *
 * @throws {TypeError} when `s` is not a string.
 * @throws {RangeError} for a bad address or prefix length.
 * @example
 * ```ts
 * import { parseCidr } from "denobox/net";
 * console.log(parseCidr("10.88.0.2/16").prefixLength); // 16
 * ```
 */
export function parseCidr(
  s: string,
  options: { requirePrefix?: boolean } = {},
): Cidr {
  typeCheck(s, "CIDR");
  const slash = s.indexOf("/");
  if (slash < 0 && options.requirePrefix) {
    throw new RangeError(
      `Invalid CIDR: ${
        JSON.stringify(s)
      } has no prefix length (like 10.0.0.1/24)`,
    );
  }
  const addrPart = slash < 0 ? s : s.slice(0, slash);
  let ip: IpAddress;
  try {
    ip = parseIp(addrPart);
  } catch {
    throw new RangeError(
      `Invalid CIDR: ${JSON.stringify(s)} has a bad address`,
    );
  }
  const max = ip.family === 4 ? 32 : 128;
  let prefixLength = max;
  if (slash >= 0) {
    const p = s.slice(slash + 1);
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p) || Number(p) > max) {
      throw new RangeError(
        `Invalid CIDR: ${
          JSON.stringify(s)
        } needs a prefix length of 0 to ${max}`,
      );
    }
    prefixLength = Number(p);
  }
  return { ...ip, prefixLength };
}

/**
 * The canonical text of an address: dotted quad, or RFC 5952 IPv6 (lower case, the longest
 * run of two or more zero groups as `::`).
 *
 * @example
 * ```ts
 * import { formatIp } from "denobox/net";
 * console.log(formatIp({ family: 4, bytes: new Uint8Array([10, 0, 0, 1]) })); // 10.0.0.1
 * ```
 */
export function formatIp(ip: IpAddress | Uint8Array): string {
  const b = ip instanceof Uint8Array ? ip : ip.bytes;
  if (b.length === 4) return Array.from(b).join(".");
  if (b.length !== 16) {
    throw new RangeError(`Invalid IP address: ${b.length} bytes`);
  }
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push((b[i * 2]! << 8) | b[i * 2 + 1]!);
  let best = -1, bestLen = 0;
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (xs: number[]) => xs.map((x) => x.toString(16)).join(":");
  if (best < 0) return hex(g);
  return `${hex(g.slice(0, best))}::${hex(g.slice(best + bestLen))}`;
}

/** `address/prefix` text of a CIDR. */
export function formatCidr(c: Cidr): string {
  return `${formatIp(c)}/${c.prefixLength}`;
}

/** The network part of a CIDR (host bits cleared). */
export function networkOf(c: Cidr): Cidr {
  const bytes = new Uint8Array(c.bytes);
  for (let bit = c.prefixLength; bit < bytes.length * 8; bit++) {
    bytes[bit >> 3]! &= ~(0x80 >> (bit & 7));
  }
  return { family: c.family, bytes, prefixLength: c.prefixLength };
}

/** The IPv4 broadcast address of a CIDR (host bits set). */
export function broadcastOf(c: Cidr): Uint8Array {
  const bytes = new Uint8Array(c.bytes);
  for (let bit = c.prefixLength; bit < bytes.length * 8; bit++) {
    bytes[bit >> 3]! |= 0x80 >> (bit & 7);
  }
  return bytes;
}

/** Whether `ip` lies inside `net`. */
export function contains(net: Cidr, ip: IpAddress): boolean {
  if (net.family !== ip.family) return false;
  const a = networkOf(net).bytes;
  const b = networkOf({ ...ip, prefixLength: net.prefixLength }).bytes;
  return a.every((x, i) => x === b[i]);
}

/** An IPv4 address as an unsigned 32-bit number. */
export function ipv4ToNumber(ip: IpAddress): number {
  if (ip.family !== 4) throw new RangeError("Not an IPv4 address");
  const b = ip.bytes;
  return ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
}

/** An unsigned 32-bit number as an IPv4 address. */
export function numberToIpv4(n: number): IpAddress {
  return {
    family: 4,
    bytes: new Uint8Array([
      n >>> 24,
      (n >>> 16) & 255,
      (n >>> 8) & 255,
      n & 255,
    ]),
  };
}
