/**
 * Bridge networking for a sandbox, as a `spawn({ setup })` hook: a veth pair whose inner end
 * is created straight inside the child's network namespace as `eth0`, an address leased from
 * the bridge's subnet, a default route via the bridge, and NAT / published ports.
 * @module
 */
import { inNetns, type NetnsRef } from "denobox/libc";
import { Rtnl } from "./_rtnl.ts";
import {
  decodeAddress,
  decodeLink,
  encodeAddr,
  encodeAddrDump,
  encodeBridgeCreate,
  encodeLinkDel,
  encodeLinkGet,
  encodeLinkSet,
  encodeRoute,
  encodeVethCreate,
  type Link,
} from "./_messages.ts";
import { checkLinkName, checkMtu, getLink } from "./_common.ts";
import { broadcastOf, parseCidr, parseIp } from "./cidr.ts";
import {
  AddressPool,
  type LeaseRecord,
  ownerOf,
  type PoolState,
} from "./ipam.ts";
import { natRuleset, nftApply } from "./nat.ts";
import { parsePortMapping, type PortMapping } from "./ports.ts";
import { NetlinkError } from "./netlink_error.ts";

export type { PortMapping };

/** Options of `networkSetup()`. */
export interface NetworkOptions {
  /** The bridge (created with the gateway address when missing, removed with the last sandbox). */
  bridge: string;
  /** The bridge's IPv4 subnet; the first host address is the gateway. Default `10.88.0.0/16`. */
  subnet?: string;
  /** A fixed address for this sandbox (must be free); default: the next free one. */
  ip?: string;
  /** Published ports (`"8080:80"`, `"127.0.0.1:8080:80/udp"`, or objects). */
  ports?: readonly (string | PortMapping)[];
  /**
   * The network namespace that plays "host": where the bridge, the host ends and the nft table
   * live (a path such as `/proc/PID/ns/net` or `/run/netns/NAME`). Default: this process's.
   */
  hostNetns?: string;
  /** Where leases are kept (default `/run/denobox/net`). */
  stateDir?: string;
  /** The interface name inside the sandbox (default `eth0`). */
  ifname?: string;
  /** MTU of the veth pair. */
  mtu?: number;
  /** Masquerade outbound traffic and turn on ip_forward in the host namespace (default true). */
  nat?: boolean;
}

/** What `networkSetup` gave a sandbox; disposing it takes everything back. */
export interface NetworkAttachment extends AsyncDisposable {
  /** The sandbox's address (`10.88.0.2`). */
  readonly address: string;
  /** `address/prefix`. */
  readonly cidr: string;
  /** The gateway, on the bridge. */
  readonly gateway: string;
  /** The host end of the veth pair. */
  readonly hostIf: string;
  /** The interface inside the sandbox. */
  readonly ifname: string;
}

const hex = () =>
  Array.from(
    crypto.getRandomValues(new Uint8Array(4)),
    (b) => b.toString(16).padStart(2, "0"),
  )
    .join("");

function writeSysctl(
  netns: NetnsRef | undefined,
  path: string,
  value: string,
): void {
  const write = () => {
    const cur = Deno.readTextFileSync(path).trim();
    if (cur !== value) Deno.writeTextFileSync(path, value);
  };
  if (netns === undefined) write();
  else inNetns(netns, write);
}

function ruleset(
  options: { bridge: string; subnet: string },
  state: PoolState,
): string {
  const masquerade = state.leases.some((l) => l.nat !== false);
  const forwards = state.leases.filter((l) => l.ports && l.ports.length > 0)
    .map((l) => ({ address: l.address, ports: l.ports! }));
  if (!masquerade && forwards.length === 0) return "";
  return natRuleset({
    bridge: options.bridge,
    subnet: options.subnet,
    masquerade,
    forwards,
  });
}

function removalScript(bridge: string): string {
  return natRuleset({
    bridge,
    subnet: "10.0.0.0/8",
    masquerade: false,
    forwards: [],
  });
}

/** Brings the nft table of `state` in line with its leases, when it changed. */
async function syncRules(
  options: { bridge: string; subnet: string; hostNetns?: string },
  state: PoolState,
): Promise<void> {
  const want = ruleset(options, state);
  if (want === state.applied) return;
  await nftApply(
    want === "" ? removalScript(options.bridge) : want,
    options.hostNetns,
  );
  state.applied = want;
}

function deleteIfNamed(nl: Rtnl, name: string): void {
  let link: Link;
  try {
    link = getLink(nl, name);
  } catch (e) {
    if (e instanceof NetlinkError && e.code === "ENODEV") return;
    throw e;
  }
  try {
    nl.request((seq) => encodeLinkDel(seq, link.index), {
      detail: `link ${name}`,
    });
  } catch (e) {
    // Gone in between (its sandbox's namespace died): that is what we wanted.
    if (!(e instanceof NetlinkError && e.code === "ENODEV")) throw e;
  }
}

/**
 * Makes a `spawn({ setup })` hook that attaches the child to a bridge. While the child waits
 * on its sync fd, the hook (in the parent):
 *
 * 1. takes the pool lock, reclaims leases of sandboxes that are gone, creates the bridge with
 *    the gateway address when it is missing, and leases an address;
 * 2. creates the veth pair in one request: the host end up and on the bridge, the other end
 *    created directly in the child's namespace under `ifname` (no rename, no move);
 * 3. inside the child's namespace, in one batch: `lo` up, `eth0` up, the address, the
 *    default route via the gateway;
 * 4. rewrites the nft table for NAT and published ports when it changed.
 *
 * The returned attachment, disposed after the sandbox is reaped (also when it was killed),
 * removes the host end (if the namespace's end did not take it along), the lease and its
 * port rules, and the bridge and table with the last sandbox when setup created them. A
 * failure at any step undoes the steps before it.
 *
 * Options are checked when `networkSetup` is called: a bad subnet, address, port or name is a
 * `RangeError`/`TypeError` before anything happens.
 *
 * @example Two published ports
 * ```ts ignore
 * import { spawn } from "denobox/sandbox";
 * import { networkSetup } from "denobox/net";
 * await using box = await spawn({
 *   argv: ["/bin/httpd", "-f", "-p", "80"],
 *   rootfs: "/srv/rootfs",
 *   namespaces: { net: true, mnt: true, pid: true },
 *   setup: networkSetup({ bridge: "dbx0", ports: ["8080:80"] }),
 * });
 * ```
 */
export function networkSetup(
  options: NetworkOptions,
): (child: { pid: number; pidfd: number }) => Promise<NetworkAttachment> {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(
      "Invalid network options: expected an object with a bridge",
    );
  }
  const bridge = checkLinkName(options.bridge, "bridge name");
  const ifname = checkLinkName(options.ifname ?? "eth0", "interface name");
  const pool = AddressPool.open({
    subnet: options.subnet ?? "10.88.0.0/16",
    name: bridge,
    ...(options.stateDir === undefined ? {} : { stateDir: options.stateDir }),
  });
  if (options.ip !== undefined) parseIp(options.ip);
  if (options.mtu !== undefined) checkMtu(options.mtu);
  const ports = [...(options.ports ?? [])];
  for (const p of ports) parsePortMapping(p);
  const hostNetns = options.hostNetns;
  if (
    hostNetns !== undefined &&
    (typeof hostNetns !== "string" || hostNetns === "")
  ) {
    throw new TypeError("Invalid hostNetns: expected a namespace path");
  }
  const nat = options.nat ?? true;
  const subnet = pool.subnetText;
  const prefix = pool.subnet.prefixLength;
  const gateway = parseCidr(`${pool.gateway}/${prefix}`);
  const ruleOptions = hostNetns === undefined
    ? { bridge, subnet }
    : { bridge, subnet, hostNetns };

  return async (child) => {
    const owner = ownerOf(child.pid);
    const hostIf = `dbx${hex()}`;
    using host = Rtnl.open(hostNetns);
    const rec = await pool.transaction(async (state, reclaimed) => {
      for (const dead of reclaimed) {
        if (dead.hostIf) deleteIfNamed(host, dead.hostIf);
      }
      const before = structuredClone(state);
      let createdBridge = false;
      let vethMade = false;
      try {
        let br: Link;
        try {
          br = getLink(host, bridge);
        } catch (e) {
          if (!(e instanceof NetlinkError && e.code === "ENODEV")) throw e;
          host.request((seq) => encodeBridgeCreate(seq, bridge, { up: true }), {
            detail: `bridge ${bridge}`,
          });
          createdBridge = true;
          state.createdBridge = true;
          br = getLink(host, bridge);
          host.request(
            (seq) =>
              encodeAddr(seq, "add", {
                index: br.index,
                cidr: gateway,
                broadcast: broadcastOf(gateway),
              }),
            { detail: `${pool.gateway}/${prefix} dev ${bridge}` },
          );
        }
        if (!createdBridge && !state.createdBridge) {
          const has = host.dump(
            (seq) => encodeAddrDump(seq, { family: 4, index: br.index }),
            decodeAddress,
          ).some((a) =>
            a.address === pool.gateway && a.prefixLength === prefix
          );
          if (!has) {
            throw new Error(
              `Cannot use bridge ${bridge}: it lacks the gateway address ${pool.gateway}/${prefix} (add it, or let networkSetup create the bridge)`,
            );
          }
        }
        const extra: Omit<LeaseRecord, "address" | "owner"> = { hostIf, nat };
        if (ports.length > 0) extra.ports = ports;
        const lease = pool.allocate(
          state,
          owner,
          options.ip === undefined ? { extra } : { ip: options.ip, extra },
        );
        if (nat) writeSysctl(hostNetns, "/proc/sys/net/ipv4/ip_forward", "1");
        if (ports.length > 0) {
          writeSysctl(
            hostNetns,
            `/proc/sys/net/ipv4/conf/${bridge}/route_localnet`,
            "1",
          );
        }

        const veth: Parameters<typeof encodeVethCreate>[3] = {
          up: true,
          master: br.index,
          peerNetns: { pid: child.pid },
        };
        if (options.mtu !== undefined) veth.mtu = options.mtu;
        host.request((seq) => encodeVethCreate(seq, hostIf, ifname, veth), {
          detail: `veth ${hostIf} to ${ifname} in pid ${child.pid}`,
        });
        vethMade = true;

        using inner = Rtnl.open(
          child.pidfd >= 0 ? child.pidfd : `/proc/${child.pid}/ns/net`,
        );
        const eth = inner.request(
          (seq) => encodeLinkGet(seq, { name: ifname }),
          { detail: `link ${ifname}` },
          decodeLink,
        )[0]!;
        const cidr = parseCidr(`${lease.address}/${prefix}`);
        inner.batch([
          {
            encode: (seq) => encodeLinkSet(seq, 1, { up: true }),
            info: { detail: "link lo" },
          },
          {
            encode: (seq) => encodeLinkSet(seq, eth.index, { up: true }),
            info: { detail: `link ${ifname}` },
          },
          {
            encode: (seq) =>
              encodeAddr(seq, "add", {
                index: eth.index,
                cidr,
                broadcast: broadcastOf(cidr),
              }),
            info: { detail: `${lease.address}/${prefix} dev ${ifname}` },
          },
          {
            encode: (seq) =>
              encodeRoute(seq, "add", {
                family: 4,
                dst: null,
                gateway: gateway.bytes,
                oif: eth.index,
              }),
            info: { detail: `default via ${pool.gateway}` },
          },
        ]);
        await syncRules(ruleOptions, state);
        return lease;
      } catch (e) {
        if (vethMade) deleteIfNamed(host, hostIf);
        if (createdBridge) deleteIfNamed(host, bridge);
        Object.assign(state, before);
        if (e instanceof NetlinkError) {
          throw e.withContext(`networkSetup(${bridge})`);
        }
        throw e;
      }
    });

    let done = false;
    return {
      address: rec.address,
      cidr: `${rec.address}/${prefix}`,
      gateway: pool.gateway,
      hostIf,
      ifname,
      async [Symbol.asyncDispose]() {
        if (done) return;
        done = true;
        using nl = Rtnl.open(hostNetns);
        await pool.transaction(async (state, reclaimed) => {
          for (const dead of reclaimed) {
            if (dead.hostIf) deleteIfNamed(nl, dead.hostIf);
          }
          deleteIfNamed(nl, hostIf);
          state.leases = state.leases.filter((l) =>
            !(l.address === rec.address && l.owner.pid === owner.pid &&
              l.owner.start === owner.start)
          );
          await syncRules(ruleOptions, state);
          if (state.leases.length === 0 && state.createdBridge) {
            deleteIfNamed(nl, bridge);
            state.createdBridge = false;
          }
        });
      },
    };
  };
}
