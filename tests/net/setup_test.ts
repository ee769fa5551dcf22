/**
 * networkSetup end to end. The whole topology lives in namespaces the test creates: the
 * "host" (bridge, host ends, nft table) is a test namespace too, so no packet can reach the
 * machine's real interfaces. Sandboxes here are `unshare -n` processes; spawn_test covers
 * spawn({ setup }).
 */
import {
  assert,
  assertEquals,
  assertMatch,
  assertThrows,
  IS_ROOT,
  openFds,
} from "../_helpers.ts";
import {
  AddressPool,
  addrList,
  linkList,
  linkSetUp,
  networkSetup,
} from "denobox/net";
import { pidfdOpen } from "denobox/libc";
import { runIn, TestNetns } from "./_netns.ts";

const ignore = !IS_ROOT;
const SUBNET = "10.123.0.0/24";

async function nftRuleset(ns: TestNetns): Promise<string> {
  const out = await ns.run(["nft", "list", "ruleset"]);
  assertEquals(out.code, 0, out.stderr);
  return out.stdout;
}

async function hostSnapshot(host: TestNetns) {
  return {
    links: linkList({ netns: host.path }),
    addrs: addrList({ netns: host.path }),
    nft: await nftRuleset(host),
  };
}

/** A one-shot TCP server in `ns`: answers the first line it reads with `${tag} ${line}`. */
function serve(nsPath: string, port: number, tag: string): Deno.ChildProcess {
  return new Deno.Command("nsenter", {
    args: [
      `--net=${nsPath}`,
      "busybox",
      "nc",
      "-l",
      "-p",
      String(port),
      "-e",
      "sh",
      "-c",
      `read line; echo "${tag} $line"`,
    ],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
}

/** Connects from `nsPath` until the server listens; returns what it answered. */
async function talk(
  nsPath: string,
  ip: string,
  port: number,
  line: string,
): Promise<string> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const out = await runIn(nsPath, [
      "busybox",
      "nc",
      "-w",
      "5",
      ip,
      String(port),
    ], {
      stdin: `${line}\n`,
    });
    if (out.code === 0 && out.stdout !== "") return out.stdout.trim();
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`Cannot reach ${ip}:${port} from ${nsPath}`);
}

async function stop(server: Deno.ChildProcess): Promise<void> {
  try {
    server.kill("SIGKILL");
  } catch { /* exited */ }
  await server.status;
}

Deno.test({
  name:
    "[root] two sandboxes on one bridge talk TCP, reach the gateway and a published port",
  ignore,
  async fn() {
    const stateDir = await Deno.makeTempDir({ prefix: "denobox-net-" });
    await using host = await TestNetns.create();
    linkSetUp("lo", { netns: host.path });
    const before = await hostSnapshot(host);
    const fdsBefore = openFds();
    {
      await using a = await TestNetns.create();
      await using b = await TestNetns.create();
      using pidfdA = pidfdOpen(a.pid);
      using pidfdB = pidfdOpen(b.pid);
      const common = {
        bridge: "dbx0",
        subnet: SUBNET,
        hostNetns: host.path,
        stateDir,
      };
      await using netA = await networkSetup({ ...common, ports: ["8080:80"] })({
        pid: a.pid,
        pidfd: pidfdA.fd,
      });
      await using netB = await networkSetup(common)({
        pid: b.pid,
        pidfd: pidfdB.fd,
      });

      assertEquals([netA.cidr, netB.cidr, netA.gateway], [
        "10.123.0.2/24",
        "10.123.0.3/24",
        "10.123.0.1",
      ]);
      const inA = linkList({ netns: a.path });
      assertEquals(inA.map((l) => [l.name, l.up]), [["lo", true], [
        "eth0",
        true,
      ]]);
      assertEquals(
        addrList({ netns: a.path, link: "eth0", family: 4 }).map((x) => x.cidr),
        [
          "10.123.0.2/24",
        ],
      );
      const routes = await runIn(a.path, ["ip", "route"]);
      assertMatch(routes.stdout, /^default via 10\.123\.0\.1 dev eth0/m);
      const bridge = linkList({ netns: host.path }).find((l) =>
        l.name === "dbx0"
      )!;
      const ends = linkList({ netns: host.path }).filter((l) =>
        l.master === bridge.index
      );
      assertEquals(
        ends.map((l) => l.name).sort(),
        [netA.hostIf, netB.hostIf].sort(),
      );

      // Sandbox to sandbox over the bridge.
      let server = serve(a.path, 5000, "a got");
      assertEquals(
        await talk(b.path, netA.address, 5000, "hello from b"),
        "a got hello from b",
      );
      await stop(server);

      // Sandbox to the gateway (the bridge's address in the host namespace).
      server = serve(host.path, 5001, "gateway got");
      assertEquals(
        await talk(a.path, netA.gateway, 5001, "hi"),
        "gateway got hi",
      );
      await stop(server);
      const ping = await runIn(b.path, [
        "busybox",
        "ping",
        "-c",
        "1",
        "-W",
        "5",
        netB.gateway,
      ]);
      assertEquals(ping.code, 0, ping.stdout + ping.stderr);

      // Published port: the host namespace's loopback 8080 reaches port 80 in sandbox a.
      server = serve(a.path, 80, "published");
      assertEquals(
        await talk(host.path, "127.0.0.1", 8080, "knock"),
        "published knock",
      );
      await stop(server);
      const rules = await nftRuleset(host);
      assertMatch(rules, /table ip denobox_dbx0/);
      assertMatch(rules, /dnat to 10\.123\.0\.2:80/);
      assertEquals(
        (await runIn(host.path, ["cat", "/proc/sys/net/ipv4/ip_forward"]))
          .stdout.trim(),
        "1",
      );
    }
    assertEquals(
      await hostSnapshot(host),
      before,
      "links, addresses and nft as before",
    );
    assertEquals(openFds(), fdsBefore, "no fd leaked");
    assertEquals([...Deno.readDirSync(stateDir)].map((e) => e.name), [
      "dbx0.lock",
    ]);
    await Deno.remove(stateDir, { recursive: true });
  },
});

Deno.test({
  name: "[root] a killed sandbox and a vanished owner are cleaned up",
  ignore,
  async fn() {
    const stateDir = await Deno.makeTempDir({ prefix: "denobox-net-" });
    await using host = await TestNetns.create();
    const before = await hostSnapshot(host);
    const common = {
      bridge: "dbx1",
      subnet: SUBNET,
      hostNetns: host.path,
      stateDir,
    };
    {
      // Killed before its teardown: the namespace takes its veth along; teardown still works.
      const a = await TestNetns.create();
      const netA = await networkSetup({ ...common, ports: ["9000:90"] })({
        pid: a.pid,
        pidfd: -1,
      });
      await a.kill();
      await netA[Symbol.asyncDispose]();
      await netA[Symbol.asyncDispose]();
      assertEquals(await hostSnapshot(host), before);

      // An owner that died without any teardown (its manager crashed): the next setup reclaims
      // its address and drops its port rules.
      const b = await TestNetns.create();
      const c = await TestNetns.create();
      await networkSetup({ ...common, ip: "10.123.0.7", ports: ["9001:91"] })({
        pid: b.pid,
        pidfd: -1,
      });
      await b.kill();
      await using netC = await networkSetup({ ...common, ip: "10.123.0.7" })({
        pid: c.pid,
        pidfd: -1,
      });
      assertEquals(netC.address, "10.123.0.7");
      const rules = await nftRuleset(host);
      assert.ok(!rules.includes("9001"), rules);
      const pool = AddressPool.open({ subnet: SUBNET, name: "dbx1", stateDir });
      assertEquals((await pool.leases()).map((l) => l.owner.pid), [c.pid]);
      await netC[Symbol.asyncDispose]();
      await c.kill();
    }
    assertEquals(await hostSnapshot(host), before);
    await Deno.remove(stateDir, { recursive: true });
  },
});

Deno.test({
  name:
    "[root] bad network options fail before anything changes; a taken address is refused",
  ignore,
  async fn() {
    const stateDir = await Deno.makeTempDir({ prefix: "denobox-net-" });
    await using host = await TestNetns.create();
    const before = await hostSnapshot(host);
    const base = { bridge: "dbx2", hostNetns: host.path, stateDir };
    assertThrows(
      () => networkSetup({ ...base, subnet: "10.123.0.0/33" }),
      RangeError,
      "Invalid CIDR",
    );
    assertThrows(
      () => networkSetup({ ...base, subnet: "10.123.0.0" }),
      RangeError,
      "prefix",
    );
    assertThrows(
      () => networkSetup({ ...base, subnet: "fd00::/64" }),
      RangeError,
      "IPv4",
    );
    assertThrows(
      () => networkSetup({ ...base, ip: "10.123.0.300" }),
      RangeError,
    );
    assertThrows(
      () => networkSetup({ ...base, ports: ["70000:80"] }),
      RangeError,
      "port",
    );
    assertThrows(
      () => networkSetup({ ...base, bridge: "bridge/with/slash" }),
      RangeError,
    );
    assertThrows(() => networkSetup({ ...base, ifname: "" }), RangeError);
    assertThrows(() => networkSetup({ ...base, mtu: 1 }), RangeError);

    await using a = await TestNetns.create();
    await using b = await TestNetns.create();
    // A kernel refusal mid-way (the sandbox already has a "lo") undoes every earlier step,
    // the bridge this setup created included.
    let refused: unknown;
    try {
      await networkSetup({ ...base, subnet: SUBNET, ifname: "lo" })({
        pid: a.pid,
        pidfd: -1,
      });
    } catch (e) {
      refused = e;
    }
    assertMatch(
      String(refused),
      /^NetlinkError: networkSetup\(dbx2\): RTM_NEWLINK\(veth dbx[0-9a-f]+ to lo in pid \d+\): EEXIST/,
    );
    assertEquals(await hostSnapshot(host), before);
    assertEquals(linkList({ netns: a.path }).map((l) => l.name), ["lo"]);
    const setup = networkSetup({ ...base, subnet: SUBNET, ip: "10.123.0.9" });
    {
      await using _net = await setup({ pid: a.pid, pidfd: -1 });
      // operState settles asynchronously after a port joins: compare what setup controls.
      const stable = async () => {
        const s = await hostSnapshot(host);
        return {
          ...s,
          links: s.links.map((l) => [l.index, l.name, l.master, l.up]),
        };
      };
      const mid = await stable();
      let err: unknown;
      try {
        await setup({ pid: b.pid, pidfd: -1 });
      } catch (e) {
        err = e;
      }
      assertMatch(
        String(err),
        /Cannot allocate 10\.123\.0\.9: it is leased to process/,
      );
      assertEquals(await stable(), mid, "the failed setup left nothing behind");
      assertEquals(linkList({ netns: b.path }).map((l) => l.name), ["lo"]);
      const outside = networkSetup({
        ...base,
        subnet: SUBNET,
        ip: "10.124.0.9",
      });
      let err2: unknown;
      try {
        await outside({ pid: b.pid, pidfd: -1 });
      } catch (e) {
        err2 = e;
      }
      assert.ok(err2 instanceof RangeError, String(err2));
    }
    assertEquals(await hostSnapshot(host), before);
    await Deno.remove(stateDir, { recursive: true });
  },
});
