/**
 * Root-free tests of the netlink wire layer against bytes captured from the kernel and from
 * iproute2 (tests/net/fixtures/kernel.json, made by fixtures/capture.ts).
 */
import {
  assert,
  assertEquals,
  assertMatch,
  assertThrows,
} from "../_helpers.ts";
import {
  Af,
  Attributes,
  decodeDone,
  decodeError,
  Ifa,
  IFADDRMSG_LEN,
  IFINFOMSG_LEN,
  Ifla,
  MessageWriter,
  NLA_F_NESTED,
  NlmF,
  Nlmsg,
  parseAttributes,
  parseMessages,
  readIfAddrMsg,
  readIfInfoMsg,
  readRtMsg,
  Rta,
  Rtm,
  RTMSG_LEN,
} from "../../net/_codec.ts";
import {
  decodeAddress,
  decodeLink,
  decodeRoute,
  encodeAddr,
  encodeBridgeCreate,
  encodeLinkDel,
  encodeLinkSet,
  encodeRoute,
  encodeVethCreate,
  type Link,
} from "../../net/_messages.ts";
import { NetlinkError, parseCidr, parseIp } from "denobox/net";
import { SyscallError } from "denobox/libc";

interface Capture {
  name: string;
  command: string;
  exchanges: { dir: "send" | "recv"; hex: string }[];
}
const FIXTURES = JSON.parse(
  await Deno.readTextFile(new URL("./fixtures/kernel.json", import.meta.url)),
) as { captures: Capture[] };

const bytes = (hex: string) =>
  Uint8Array.from(hex.match(/../g)!, (h) => parseInt(h, 16));
const capture = (name: string) => {
  const c = FIXTURES.captures.find((c) => c.name === name);
  if (!c) throw new Error(`fixture ${name} missing`);
  return c;
};
/** The request `ip` sent for its command (its last datagram; earlier ones are probes). */
const request = (name: string) => {
  const sends = capture(name).exchanges.filter((e) => e.dir === "send");
  return untilEnd(bytes(sends.at(-1)!.hex));
};
/** iproute2 sends its whole request buffer; the kernel stops at a zero-length header. */
const untilEnd = (b: Uint8Array) => {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let off = 0;
  while (off + 16 <= b.length && v.getUint32(off, true) !== 0) {
    off += (v.getUint32(off, true) + 3) & ~3;
  }
  return b.subarray(0, off);
};
/** Every message the kernel sent in answer to `ip`'s last request. */
const replies = (name: string) => {
  const c = capture(name);
  const lastSend = c.exchanges.map((e) => e.dir).lastIndexOf("send");
  return c.exchanges.slice(lastSend + 1).flatMap((e) =>
    parseMessages(bytes(e.hex))
  );
};
const seqOf = (b: Uint8Array) => new DataView(b.buffer).getUint32(8, true);

// The link dump was taken after the commands before it: it tells the ifindex of each link.
const LINKS: Link[] = replies("link-dump").filter((m) =>
  m.type === Rtm.RTM_NEWLINK
).map(
  decodeLink,
);
const index = (name: string) => {
  const l = LINKS.find((l) => l.name === name);
  if (!l) throw new Error(`no link ${name} in the dump`);
  return l.index;
};

Deno.test("every captured datagram parses into whole messages and attributes", () => {
  let messages = 0;
  for (const c of FIXTURES.captures) {
    for (const e of c.exchanges) {
      const b = e.dir === "send" ? untilEnd(bytes(e.hex)) : bytes(e.hex);
      const ms = parseMessages(b);
      assert.ok(ms.length > 0, c.name);
      assertEquals(
        ms.reduce((n, m) => n + ((m.length + 3) & ~3), 0),
        b.length,
        c.name,
      );
      for (const m of ms) {
        messages++;
        const header = m.type === Rtm.RTM_NEWLINK || m.type === Rtm.RTM_GETLINK
          ? IFINFOMSG_LEN
          : m.type === Rtm.RTM_NEWADDR || m.type === Rtm.RTM_DELADDR
          ? IFADDRMSG_LEN
          : m.type === Rtm.RTM_NEWROUTE || m.type === Rtm.RTM_DELROUTE
          ? RTMSG_LEN
          : -1;
        if (header >= 0 && m.payload.length > header) {
          const attrs = parseAttributes(m.payload.subarray(header));
          assert.ok(attrs.length > 0, c.name);
        }
      }
    }
  }
  assert.ok(messages > 40);
});

Deno.test("link requests are byte-identical to iproute2's", () => {
  const cases: [string, (seq: number) => Uint8Array][] = [
    ["veth-create", (s) => encodeVethCreate(s, "va", "vb")],
    ["bridge-create", (s) => encodeBridgeCreate(s, "br0")],
    [
      "set-master",
      (s) => encodeLinkSet(s, index("va"), { master: index("br0") }),
    ],
    ["set-nomaster", (s) => encodeLinkSet(s, index("va"), { master: 0 })],
    ["set-up", (s) => encodeLinkSet(s, index("va"), { up: true })],
    ["set-up-bridge", (s) => encodeLinkSet(s, index("br0"), { up: true })],
    ["set-mtu", (s) => encodeLinkSet(s, index("vc"), { mtu: 1400 })],
    ["set-name", (s) => encodeLinkSet(s, index("vc"), { name: "vc" })],
    ["link-del", (s) => encodeLinkDel(s, index("va"))],
  ];
  for (const [name, encode] of cases) {
    const want = request(name);
    assertEquals(encode(seqOf(want)), want, name);
  }
});

Deno.test("moving a link by pid encodes IFLA_NET_NS_PID like iproute2", () => {
  const want = request("set-netns-pid");
  const a = new Attributes(want.subarray(16 + IFINFOMSG_LEN));
  const pid = a.u32(Ifla.IFLA_NET_NS_PID)!;
  assert.ok(pid > 1);
  assertEquals(
    encodeLinkSet(seqOf(want), index("vc"), { netns: { pid } }),
    want,
  );
});

Deno.test("address and route requests are byte-identical to iproute2's", () => {
  const v4 = parseCidr("10.1.0.1/24");
  const br = index("br0");
  const cases: [string, (seq: number) => Uint8Array][] = [
    [
      "addr-add-v4",
      (s) =>
        encodeAddr(s, "add", {
          index: br,
          cidr: v4,
          broadcast: parseIp("10.1.0.255").bytes,
        }),
    ],
    [
      "addr-add-v6",
      (s) =>
        encodeAddr(s, "add", {
          index: br,
          cidr: parseCidr("fd00::1/64"),
          flags: 0x02,
        }),
    ],
    ["addr-del-v4", (s) => encodeAddr(s, "del", { index: br, cidr: v4 })],
    [
      "route-add-default-v4",
      (s) =>
        encodeRoute(s, "add", {
          family: 4,
          dst: null,
          gateway: parseIp("10.1.0.254").bytes,
        }),
    ],
    [
      "route-add-dev-v4",
      (s) =>
        encodeRoute(s, "add", {
          family: 4,
          dst: parseCidr("10.2.0.0/16"),
          oif: br,
        }),
    ],
    [
      "route-del-dev-v4",
      (s) =>
        encodeRoute(s, "del", {
          family: 4,
          dst: parseCidr("10.2.0.0/16"),
          oif: br,
        }),
    ],
  ];
  for (const [name, encode] of cases) {
    const want = request(name);
    assertEquals(encode(seqOf(want)), want, name);
  }
});

Deno.test("an IPv6 default route matches iproute2's except its explicit ::/0 RTA_DST", () => {
  const want = parseMessages(request("route-add-default-v6"))[0]!;
  const mine = parseMessages(
    encodeRoute(want.seq, "add", {
      family: 6,
      dst: null,
      gateway: parseIp("fd00::fe").bytes,
    }),
  )[0]!;
  assertEquals(readRtMsg(mine.payload), readRtMsg(want.payload));
  assertEquals([mine.type, mine.flags, mine.seq], [
    want.type,
    want.flags,
    want.seq,
  ]);
  const a = new Attributes(want.payload.subarray(RTMSG_LEN));
  const b = new Attributes(mine.payload.subarray(RTMSG_LEN));
  assertEquals(b.bytes(Rta.RTA_GATEWAY), a.bytes(Rta.RTA_GATEWAY));
  assertEquals(a.bytes(Rta.RTA_DST), new Uint8Array(16));
  assertEquals(b.has(Rta.RTA_DST), false);
});

Deno.test("a link dump decodes to the links the commands made", () => {
  const msgs = replies("link-dump");
  assertEquals(msgs.at(-1)!.type, Nlmsg.NLMSG_DONE);
  assert.ok(msgs.slice(0, -1).every((m) => m.flags & NlmF.NLM_F_MULTI));
  const by = (n: string) => LINKS.find((l) => l.name === n)!;
  assertEquals(LINKS.map((l) => l.name).sort(), ["br0", "lo", "va", "vc"]);
  assertEquals(by("lo").index, 1);
  assertEquals(by("lo").kind, null);
  assertEquals(by("va").kind, "veth");
  assertEquals(by("vc").kind, "veth");
  assertEquals(by("br0").kind, "bridge");
  assertEquals(by("va").master, by("br0").index);
  assertEquals(by("va").parent, by("vc").index);
  assertEquals(by("vc").parent, by("va").index);
  assertEquals(by("vc").mtu, 1400);
  assertEquals(by("va").up, true);
  assertEquals(by("vc").up, false);
  assertMatch(by("va").mac!, /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
});

Deno.test("an address dump decodes IPv4 (with broadcast) and IPv6 addresses", () => {
  const addrs = replies("addr-dump").filter((m) => m.type === Rtm.RTM_NEWADDR)
    .map(
      decodeAddress,
    );
  const br = index("br0");
  const v4 = addrs.find((a) => a.family === 4 && a.index === br)!;
  assertEquals([v4.cidr, v4.broadcast, v4.label, v4.scope], [
    "10.1.0.1/24",
    "10.1.0.255",
    "br0",
    0,
  ]);
  const v6 = addrs.find((a) =>
    a.family === 6 && a.index === br && a.scope === 0
  )!;
  assertEquals(v6.cidr, "fd00::1/64");
  assert.ok(v6.flags & 0x02, "nodad");
  const lo = addrs.filter((a) => a.index === 1);
  assertEquals(lo, [], "lo is down in a fresh namespace: no addresses");
});

Deno.test("route dumps decode default, via and dev routes", () => {
  const v4 = replies("route-dump-v4").filter((m) => m.type === Rtm.RTM_NEWROUTE)
    .map(
      decodeRoute,
    );
  const br = index("br0");
  const def = v4.find((r) => r.dst === "default")!;
  assertEquals([def.gateway, def.table, def.protocol, def.family], [
    "10.1.0.254",
    254,
    3,
    4,
  ]);
  const connected = v4.find((r) => r.dst === "10.1.0.0/24")!;
  assertEquals([
    connected.dev,
    connected.protocol,
    connected.scope,
    connected.prefsrc,
  ], [
    br,
    2,
    253,
    "10.1.0.1",
  ]);
  const viaDev = v4.find((r) => r.dst === "10.2.0.0/16")!;
  assertEquals([viaDev.dev, viaDev.gateway, viaDev.scope], [br, null, 253]);
  const v6 = replies("route-dump-v6").filter((m) => m.type === Rtm.RTM_NEWROUTE)
    .map(
      decodeRoute,
    );
  assertEquals(v6.find((r) => r.dst === "default")?.gateway, "fd00::fe");
  assert.ok(v6.some((r) => r.dst === "fd00::/64" && r.dev === br));
});

Deno.test("NLMSG_ERROR decodes errno and extended ACK, full and capped", () => {
  const cases: [string, number, string | undefined, boolean][] = [
    ["veth-exists", 17, undefined, false],
    ["unknown-kind", 95, "Unknown device type", false],
    ["bad-gateway", 101, "Nexthop has invalid gateway", false],
    ["capped-exists", 17, undefined, true],
    ["capped-unknown-kind", 95, "Unknown device type", true],
    ["capped-bad-gateway", 101, "Nexthop has invalid gateway", true],
    ["capped-ack", 0, undefined, true],
  ];
  for (const [name, errno, text, capped] of cases) {
    const sent = request(name);
    const msg = replies(name).at(-1)!;
    assertEquals(msg.type, Nlmsg.NLMSG_ERROR, name);
    assertEquals(Boolean(msg.flags & NlmF.NLM_F_CAPPED), capped, name);
    const r = decodeError(msg);
    assertEquals(r.errno, errno, name);
    assertEquals(r.message, text, name);
    assertEquals(r.request.seq, seqOf(sent), name);
    assertEquals(r.request.length, sent.length, name);
    assertEquals(
      r.request.type,
      new DataView(sent.buffer).getUint16(4, true),
      name,
    );
  }
});

Deno.test("a dump that fails ends in NLMSG_DONE carrying errno and extended ACK", () => {
  const done = replies("route-dump-missing-table").at(-1)!;
  assertEquals(done.type, Nlmsg.NLMSG_DONE);
  const r = decodeDone(done)!;
  assertEquals(r.errno, 2);
  assertMatch(r.message!, /table does not exist/);
  const ok = replies("link-dump").at(-1)!;
  assertEquals(decodeDone(ok), null);
});

Deno.test("NetlinkError is a SyscallError carrying code and the kernel's text", () => {
  const r = decodeError(replies("capped-bad-gateway").at(-1)!);
  const e = new NetlinkError("RTM_NEWROUTE", r.errno, {
    detail: "default via 192.0.2.1",
    extAck: r.message!,
    hint: "check the gateway",
  });
  assert.ok(e instanceof SyscallError);
  assertEquals(e.code, "ENETUNREACH");
  assertEquals(e.extAck, "Nexthop has invalid gateway");
  assertEquals(
    e.message,
    "RTM_NEWROUTE(default via 192.0.2.1): ENETUNREACH (Network is unreachable): " +
      "Nexthop has invalid gateway\nHint: check the gateway",
  );
  const c = e.withContext("networkSetup(dbx0)");
  assert.ok(c instanceof NetlinkError);
  assertMatch(
    c.message,
    /^networkSetup\(dbx0\): RTM_NEWROUTE.*invalid gateway\nHint/,
  );
});

Deno.test("the writer nests, pads and frames several messages in one datagram", () => {
  const w = new MessageWriter()
    .begin(Rtm.RTM_NEWLINK, NlmF.NLM_F_REQUEST, 7)
    .ifinfomsg({ family: Af.AF_UNSPEC, index: 3 })
    .string(Ifla.IFLA_IFNAME, "abcde")
    .nest(
      Ifla.IFLA_LINKINFO | NLA_F_NESTED,
      (n) => n.u8(1, 9).u32(2, 0xdeadbeef),
    )
    .end()
    .begin(Rtm.RTM_GETADDR, NlmF.NLM_F_REQUEST | NlmF.NLM_F_DUMP, 8)
    .ifaddrmsg({ family: Af.AF_INET6, index: 4 })
    .end();
  const b = w.bytes();
  assertEquals(b.length % 4, 0);
  const [m1, m2] = parseMessages(b);
  assertEquals([m1!.seq, m2!.seq, m2!.flags], [7, 8, 0x301]);
  assertEquals(readIfInfoMsg(m1!.payload).index, 3);
  assertEquals(readIfAddrMsg(m2!.payload), {
    family: 10,
    prefixLength: 0,
    flags: 0,
    scope: 0,
    index: 4,
  });
  const attrs = parseAttributes(m1!.payload.subarray(IFINFOMSG_LEN));
  assertEquals(attrs.map((a) => [a.type, a.nested]), [[3, false], [18, true]]);
  const a = new Attributes(m1!.payload.subarray(IFINFOMSG_LEN));
  assertEquals(a.string(Ifla.IFLA_IFNAME), "abcde");
  const inner = a.nested(Ifla.IFLA_LINKINFO)!;
  assertEquals([inner.u8(1), inner.u32(2)], [9, 0xdeadbeef]);
  assertEquals(Ifa.IFA_LOCAL, 2);
});

Deno.test("malformed framing is a RangeError, not a wrong answer", () => {
  const good = request("set-mtu");
  const bad = good.slice();
  new DataView(bad.buffer).setUint32(0, good.length + 4, true);
  assertThrows(
    () => parseMessages(bad),
    RangeError,
    "Cannot parse netlink message",
  );
  const attr = new Uint8Array([8, 0, 1, 0, 1, 2]);
  assertThrows(
    () => parseAttributes(attr),
    RangeError,
    "Cannot parse netlink attribute",
  );
  assertThrows(() => readRtMsg(new Uint8Array(3)), RangeError, "rtmsg");
});
