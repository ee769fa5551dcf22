/**
 * Published ports (`-p 8080:80`): parsing and checking.
 * @module
 */
import { parseIp } from "./cidr.ts";

/** A published port: `hostPort` on the host (or on `hostIp` only) forwards to `containerPort`. */
export interface PortMapping {
  /** Port on the host side. */
  hostPort: number;
  /** Port inside the sandbox. */
  containerPort: number;
  /** Default `"tcp"`. */
  protocol?: "tcp" | "udp";
  /** Only this host IPv4 address (`127.0.0.1`); default: every local address. */
  hostIp?: string;
}

function port(s: string | number, spec: string): number {
  const n = typeof s === "number"
    ? s
    : /^[0-9]{1,5}$/.test(s)
    ? Number(s)
    : NaN;
  if (!Number.isInteger(n) || n < 1 || n > 65535) {
    throw new RangeError(
      `Invalid port mapping: ${JSON.stringify(spec)} (ports are 1 to 65535)`,
    );
  }
  return n;
}

/**
 * Parses Docker's `-p` syntax: `"8080:80"`, `"8080:80/udp"`, `"127.0.0.1:8080:80"`, `"80"`
 * (the same port on both sides), or checks an object. IPv4 host addresses only.
 *
 * @throws {RangeError} for a malformed mapping.
 * @example
 * ```ts
 * import { parsePortMapping } from "denobox/net";
 * console.log(parsePortMapping("127.0.0.1:8080:80/tcp"));
 * // { hostPort: 8080, containerPort: 80, protocol: "tcp", hostIp: "127.0.0.1" }
 * ```
 */
export function parsePortMapping(
  spec: string | PortMapping,
): Required<Omit<PortMapping, "hostIp">> & { hostIp?: string } {
  if (typeof spec === "object" && spec !== null) {
    const text = JSON.stringify(spec);
    const protocol = spec.protocol ?? "tcp";
    if (protocol !== "tcp" && protocol !== "udp") {
      throw new RangeError(
        `Invalid port mapping: ${text} (protocol is tcp or udp)`,
      );
    }
    const out: Required<Omit<PortMapping, "hostIp">> & { hostIp?: string } = {
      hostPort: port(spec.hostPort, text),
      containerPort: port(spec.containerPort, text),
      protocol,
    };
    if (spec.hostIp !== undefined) out.hostIp = checkHostIp(spec.hostIp, text);
    return out;
  }
  if (typeof spec !== "string") {
    throw new TypeError(
      `Invalid port mapping: expected a string or an object, got ${typeof spec}`,
    );
  }
  const bad = () =>
    new RangeError(
      `Invalid port mapping: ${
        JSON.stringify(spec)
      } (like "8080:80", "127.0.0.1:8080:80/udp")`,
    );
  const slash = spec.lastIndexOf("/");
  const proto = slash < 0 ? "tcp" : spec.slice(slash + 1);
  if (proto !== "tcp" && proto !== "udp") throw bad();
  const parts = (slash < 0 ? spec : spec.slice(0, slash)).split(":");
  if (parts.length > 3 || parts.some((p) => p === "")) throw bad();
  const container = parts[parts.length - 1]!;
  const hostPort = parts.length >= 2 ? parts[parts.length - 2]! : container;
  const hostIp = parts.length === 3 ? parts[0] : undefined;
  const out: Required<Omit<PortMapping, "hostIp">> & { hostIp?: string } = {
    hostPort: port(hostPort, spec),
    containerPort: port(container, spec),
    protocol: proto,
  };
  if (hostIp !== undefined) out.hostIp = checkHostIp(hostIp, spec);
  return out;
}

function checkHostIp(ip: string, spec: string): string {
  let family: number;
  try {
    family = parseIp(ip).family;
  } catch {
    throw new RangeError(
      `Invalid port mapping: ${JSON.stringify(spec)} has a bad host address`,
    );
  }
  if (family !== 4) {
    throw new RangeError(
      `Invalid port mapping: ${
        JSON.stringify(spec)
      } (IPv4 host addresses only)`,
    );
  }
  return ip;
}
