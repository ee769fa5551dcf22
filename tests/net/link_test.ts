/**
 * The `ip`-like functions against the real kernel, inside network namespaces the tests create
 * (nothing touches the machine's own interfaces). `ip -j` run in the same namespace is the
 * independent witness.
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
  addrAdd,
  addrDel,
  addrList,
  bridgeAdd,
  linkDel,
  linkGet,
  linkList,
  linkSetDown,
  linkSetMaster,
  linkSetMtu,
  linkSetName,
  linkSetNetns,
  linkSetUp,
  NetlinkError,
  routeAdd,
  routeDel,
  routeList,
  vethPair,
} from "denobox/net";
import { inNetns, open } from "denobox/libc";
import { TestNetns } from "./_netns.ts";

const ignore = !IS_ROOT;

// deno-lint-ignore no-explicit-any
async function ipJson(ns: TestNetns, args: string[]): Promise<any[]> {
  const out = await ns.run(["ip", "-j", ...args]);
  assertEquals(out.code, 0, out.stderr);
  return JSON.parse(out.stdout);
}

function snapshot(netns: string) {
  return {
    links: linkList({ netns }),
    addrs: addrList({ netns }),
    routes: [...routeList({ netns }), ...routeList({ netns, family: 6 })],
  };
}

Deno.test({
  name: "[root] links, addresses and routes mirror ip inside a test namespace",
  ignore,
  async fn() {
    await using host = await TestNetns.create();
    await using peer = await TestNetns.create();
    const netns = host.path;
    const fdsBefore = openFds();

    const br = bridgeAdd("br0", { netns, up: true, mtu: 1450 });
    assertEquals([br.kind, br.up, br.mtu], ["bridge", true, 1450]);
    const va = vethPair("va", "vb", { netns, master: "br0", up: true });
    assertEquals([va.kind, va.master, va.up], ["veth", br.index, true]);
    vethPair("vx", "eth0", { netns, peerNetns: { pid: peer.pid } });
    assertEquals(linkGet("eth0", { netns: peer.path }).kind, "veth");

    linkSetMtu("vb", 1400, { netns });
    linkSetName("vb", "vc", { netns });
    linkSetUp("vc", { netns });
    linkSetDown("va", { netns });
    linkSetMaster("va", null, { netns });

    const seen = await ipJson(host, ["link", "show"]);
    const byName = (n: string) => seen.find((l) => l.ifname === n);
    assertEquals(byName("vc").mtu, 1400);
    assertEquals(byName("va").master, undefined);
    assert.ok(byName("vc").flags.includes("UP"));
    assert.ok(!byName("va").flags.includes("UP"));
    const mine = linkList({ netns });
    assertEquals(
      mine.map((l) => [l.index, l.name, l.mtu]).sort(),
      seen.map((l) => [l.ifindex, l.ifname, l.mtu]).sort(),
    );

    addrAdd("br0", "10.9.0.1/24", { netns });
    addrAdd("br0", "fd09::1/64", { netns });
    addrAdd("vc", "10.9.1.1/32", { netns });
    const ipAddrs =
      (await ipJson(host, ["addr", "show", "dev", "br0"]))[0].addr_info;
    const v4 = ipAddrs.find((a: { family: string }) => a.family === "inet");
    assertEquals([v4.local, v4.prefixlen, v4.broadcast], [
      "10.9.0.1",
      24,
      "10.9.0.255",
    ]);
    assert.ok(ipAddrs.some((a: { local: string }) => a.local === "fd09::1"));
    const listed = addrList({ netns, link: "br0" }).map((a) => a.cidr);
    assert.ok(
      listed.includes("10.9.0.1/24") && listed.includes("fd09::1/64"),
      String(listed),
    );
    assertEquals(
      addrList({ netns, link: "br0", family: 4 }).map((a) => a.cidr),
      ["10.9.0.1/24"],
    );

    routeAdd({ via: "10.9.0.254" }, { netns });
    routeAdd({ dst: "10.10.0.0/16", dev: "br0", metric: 50 }, { netns });
    routeAdd({ via: "fd09::fe" }, { netns });
    const ipRoutes = await ipJson(host, ["route", "show"]);
    assert.ok(
      ipRoutes.some((r) => r.dst === "default" && r.gateway === "10.9.0.254"),
    );
    assert.ok(
      ipRoutes.some((r) =>
        r.dst === "10.10.0.0/16" && r.dev === "br0" && r.metric === 50
      ),
    );
    const routes = routeList({ netns });
    assert.ok(
      routes.some((r) => r.dst === "default" && r.gateway === "10.9.0.254"),
    );
    assert.ok(
      routes.some((r) =>
        r.dst === "10.10.0.0/16" && r.dev === br.index && r.priority === 50
      ),
    );
    assert.ok(
      routeList({ netns, family: 6 }).some((r) =>
        r.dst === "default" && r.gateway === "fd09::fe"
      ),
    );

    routeDel({ dst: "10.10.0.0/16", dev: "br0" }, { netns });
    routeDel({ via: "10.9.0.254" }, { netns });
    assert.ok(
      !routeList({ netns }).some((r) =>
        r.dst === "10.10.0.0/16" || r.dst === "default"
      ),
    );
    addrDel("br0", "10.9.0.1/24", { netns });
    assertEquals(addrList({ netns, link: "br0", family: 4 }), []);

    linkSetNetns("vc", { pid: peer.pid }, { netns });
    assert.ok(linkList({ netns: peer.path }).some((l) => l.name === "vc"));
    {
      using nsFd = open(host.path);
      linkSetNetns("vc", nsFd.fd, { netns: peer.path });
    }
    assert.ok(linkList({ netns }).some((l) => l.name === "vc"));
    linkDel("va", { netns });
    linkDel("vx", { netns });
    linkDel(br.index, { netns });
    assertEquals(linkList({ netns }).map((l) => l.name), ["lo"]);
    assertEquals(linkList({ netns: peer.path }).map((l) => l.name), ["lo"]);
    assertEquals(openFds(), fdsBefore, "no fd leaked");
  },
});

Deno.test({
  name:
    "[root] an existing link name or a bad CIDR is a clear error and changes nothing",
  ignore,
  async fn() {
    await using host = await TestNetns.create();
    await using peer = await TestNetns.create();
    const netns = host.path;
    bridgeAdd("br0", { netns });
    vethPair("va", "vb", { netns });
    vethPair("vx", "eth0", { netns, peerNetns: peer.path });
    addrAdd("br0", "10.9.0.1/24", { netns });
    const before = snapshot(netns);
    const peerBefore = snapshot(peer.path);

    let e = assertThrows(() => vethPair("va", "new1", { netns }), NetlinkError);
    assertEquals((e as NetlinkError).code, "EEXIST");
    assertMatch(e.message, /vethPair\("va", "new1"\).*link "va".*EEXIST/);
    e = assertThrows(
      () => vethPair("new2", "vb", { netns }),
      NetlinkError,
      'link "vb"',
    );
    e = assertThrows(
      () => vethPair("new3", "eth0", { netns, peerNetns: { pid: peer.pid } }),
      NetlinkError,
      'link "eth0" in the peer namespace',
    );
    assertThrows(() => bridgeAdd("br0", { netns }), NetlinkError, 'link "br0"');
    assertThrows(
      () => linkSetName("va", "br0", { netns }),
      NetlinkError,
      "EEXIST",
    );
    assertThrows(
      () => addrAdd("br0", "10.9.0.1/24", { netns }),
      NetlinkError,
      "EEXIST",
    );
    const bad = assertThrows(
      () => routeAdd({ via: "192.0.2.1", table: 100 }, { netns }),
      NetlinkError,
      "Nexthop has invalid gateway",
    ) as NetlinkError;
    assertEquals([bad.code, bad.extAck], [
      "ENETUNREACH",
      "Nexthop has invalid gateway",
    ]);
    assertThrows(() => linkGet("nope", { netns }), NetlinkError, "ENODEV");

    // Refused before any request.
    assertThrows(
      () => addrAdd("br0", "10.9.0.300/24", { netns }),
      RangeError,
      "Invalid CIDR",
    );
    assertThrows(
      () => addrAdd("br0", "10.9.0.1/33", { netns }),
      RangeError,
      "Invalid CIDR",
    );
    assertThrows(
      () => routeAdd({ dst: "10.9.0.1/24", dev: "br0" }, { netns }),
      RangeError,
      "host bits",
    );
    assertThrows(
      () => routeAdd({ dst: "10.9.0.0/24" }, { netns }),
      RangeError,
      "via",
    );
    assertThrows(
      () => routeAdd({ dst: "10.9.0.0/24", via: "fd00::1" }, { netns }),
      RangeError,
    );
    assertThrows(
      () => vethPair("a-name-that-is-too-long", "b", { netns }),
      RangeError,
      "1 to 15",
    );
    assertThrows(() => vethPair("a/b", "c", { netns }), RangeError);
    assertThrows(() => bridgeAdd("x", { netns, mtu: 10 }), RangeError, "MTU");
    assertThrows(() => linkSetUp(0, { netns }), RangeError);
    assertThrows(() => linkList({ netns: 1.5 }), RangeError);
    assertThrows(() => linkSetNetns("va", { pid: -1 }, { netns }), RangeError);

    assertEquals(snapshot(netns), before);
    assertEquals(snapshot(peer.path), peerBefore);
  },
});

Deno.test({
  name: "[root] inNetns moves only for the call and always comes back",
  ignore,
  async fn() {
    await using ns = await TestNetns.create();
    const self = () => Deno.readLinkSync("/proc/thread-self/ns/net");
    const home = self();
    const inside = inNetns(ns.path, self);
    assert.ok(inside !== home);
    assertEquals(inside, Deno.readLinkSync(ns.path));
    assertEquals(self(), home);
    assertThrows(
      () =>
        inNetns(ns.path, () => {
          throw new Error("boom");
        }),
      Error,
      "boom",
    );
    assertEquals(self(), home);
    assertThrows(
      () => inNetns(ns.path, async () => {}),
      TypeError,
      "synchronous",
    );
    assertEquals(self(), home);
    assertThrows(() => inNetns("/nonexistent/ns", self), Error, "ENOENT");
    assertEquals(self(), home);
    // A socket made there stays there.
    assertEquals(linkList({ netns: ns.path }).map((l) => l.name), ["lo"]);
  },
});
