/**
 * Outbound NAT and published ports through nftables, in one table of our own per bridge
 * (`ip denobox_<bridge>`), always written whole and atomically by `nft -f -`, and removed as a
 * unit. Nothing outside that table is read or changed.
 * @module
 */
import { parsePortMapping, type PortMapping } from "./ports.ts";
import { formatCidr, networkOf, parseCidr } from "./cidr.ts";
import { checkLinkName } from "./_common.ts";

/** One sandbox's published ports. */
export interface PortForward {
  /** The sandbox's address. */
  address: string;
  /** Its published ports. */
  ports: readonly (string | PortMapping)[];
}

/** What the table holds. */
export interface NatSpec {
  /** The bridge the sandboxes hang on. */
  bridge: string;
  /** The bridge's subnet (`10.88.0.0/16`). */
  subnet: string;
  /** Masquerade traffic from the subnet that leaves through any other interface. */
  masquerade: boolean;
  /** Published ports. */
  forwards: readonly PortForward[];
}

/** The name of the table that belongs to `bridge` (`denobox_dbx0`). */
export function natTableName(bridge: string): string {
  checkLinkName(bridge, "bridge name");
  const safe = bridge.replace(/[^A-Za-z0-9_]/g, "_");
  if (safe === bridge) return `denobox_${safe}`;
  // Different names could map to the same safe text: tell them apart by a short hash.
  let h = 2166136261;
  for (const c of new TextEncoder().encode(bridge)) {
    h = Math.imul(h ^ c, 16777619) >>> 0;
  }
  return `denobox_${safe}_${h.toString(16).padStart(8, "0")}`;
}

/**
 * The nft script that replaces the table with exactly `spec` (create, delete, create: one
 * atomic transaction, whether the table existed or not). An empty spec (no masquerade, no
 * ports) yields the removal script.
 *
 * @example
 * ```ts
 * import { natRuleset } from "denobox/net";
 * const script = natRuleset({
 *   bridge: "dbx0", subnet: "10.88.0.0/16", masquerade: true,
 *   forwards: [{ address: "10.88.0.2", ports: ["8080:80"] }],
 * });
 * console.log(script.includes("dnat to 10.88.0.2:80")); // true
 * ```
 */
export function natRuleset(spec: NatSpec): string {
  const table = natTableName(spec.bridge);
  const net = networkOf(parseCidr(spec.subnet, { requirePrefix: true }));
  if (net.family !== 4) {
    throw new RangeError(`Invalid NAT subnet: ${spec.subnet} (IPv4 only)`);
  }
  const subnet = formatCidr(net);
  const br = JSON.stringify(spec.bridge);
  const dnat: string[] = [];
  const published: {
    ip: string | undefined;
    port: number;
    proto: string;
    by: string;
  }[] = [];
  for (const f of spec.forwards) {
    for (const p of f.ports) {
      const m = parsePortMapping(p);
      const clash = published.find((q) =>
        q.port === m.hostPort && q.proto === m.protocol &&
        (q.ip === undefined || m.hostIp === undefined || q.ip === m.hostIp)
      );
      if (clash) {
        throw new RangeError(
          `Cannot publish port ${m.hostPort}/${m.protocol}: already published for ${clash.by}`,
        );
      }
      published.push({
        ip: m.hostIp,
        port: m.hostPort,
        proto: m.protocol,
        by: f.address,
      });
      const match = m.hostIp === undefined
        ? "fib daddr type local"
        : `ip daddr ${m.hostIp}`;
      dnat.push(
        `${match} ${m.protocol} dport ${m.hostPort} dnat to ${f.address}:${m.containerPort}`,
      );
    }
  }
  const head = `table ip ${table} {}\ndelete table ip ${table}\n`;
  if (!spec.masquerade && dnat.length === 0) return head;
  const lines = [`table ip ${table} {`];
  if (dnat.length > 0) {
    lines.push(
      "  chain prerouting {",
      "    type nat hook prerouting priority dstnat; policy accept;",
      ...dnat.map((r) => `    ${r}`),
      "  }",
      "  chain output {",
      "    type nat hook output priority -100; policy accept;",
      ...dnat.map((r) => `    ${r}`),
      "  }",
    );
  }
  lines.push(
    "  chain postrouting {",
    "    type nat hook postrouting priority srcnat; policy accept;",
  );
  if (spec.masquerade) {
    lines.push(`    ip saddr ${subnet} oifname != ${br} masquerade`);
  }
  if (dnat.length > 0) {
    // Published ports reached from the host's loopback (needs route_localnet on the bridge)
    // and from another sandbox on the same bridge (hairpin) answer through us.
    lines.push(`    ip saddr 127.0.0.0/8 oifname ${br} masquerade`);
    lines.push(
      `    ip saddr ${subnet} oifname ${br} ct status dnat masquerade`,
    );
  }
  lines.push("  }", "}");
  return head + lines.join("\n") + "\n";
}

/**
 * Applies an nft script with `nft -f -` (one atomic transaction), inside `netns` (a path,
 * entered with nsenter) when given.
 *
 * @throws {Error} naming nft's complaint when it fails; nothing is changed then.
 * @example
 * ```ts ignore
 * import { nftApply, natRuleset } from "denobox/net";
 * await nftApply(natRuleset({ bridge: "dbx0", subnet: "10.88.0.0/16", masquerade: false, forwards: [] }));
 * ```
 */
export async function nftApply(script: string, netns?: string): Promise<void> {
  const [cmd, args] = netns === undefined
    ? ["nft", ["-f", "-"]]
    : ["nsenter", [`--net=${netns}`, "nft", "-f", "-"]];
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(cmd, {
      args,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
      clearEnv: true,
      env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin" },
    }).spawn();
  } catch (e) {
    throw new Error(
      `Cannot run ${cmd}: ${
        (e as Error).message
      } (install nftables and util-linux)`,
      { cause: e },
    );
  }
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(script));
  await w.close();
  const out = await child.output();
  if (!out.success) {
    const err = new TextDecoder().decode(out.stderr).trim();
    throw new Error(
      `Cannot apply nftables rules: nft exited with ${out.code}: ${err}`,
    );
  }
}
