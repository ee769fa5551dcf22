/** Root-free tests: addresses and CIDRs, port mappings, the nft ruleset text. */
import { assert, assertEquals, assertThrows } from "../_helpers.ts";
import {
  formatCidr,
  formatIp,
  natRuleset,
  natTableName,
  parseCidr,
  parseIp,
  parsePortMapping,
} from "denobox/net";
import { broadcastOf, contains, networkOf } from "../../net/cidr.ts";

Deno.test("IPv4 and IPv6 addresses parse and format canonically (RFC 5952)", () => {
  const cases: [string, string][] = [
    ["10.88.0.2", "10.88.0.2"],
    ["0.0.0.0", "0.0.0.0"],
    ["fd00::1", "fd00::1"],
    ["FD00:0:0:0:0:0:0:1", "fd00::1"],
    ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"],
    ["2001:0db8::0001", "2001:db8::1"],
    ["::", "::"],
    ["::1", "::1"],
    ["1::", "1::"],
    ["2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"],
    ["::ffff:10.0.0.1", "::ffff:a00:1"],
  ];
  for (const [input, want] of cases) {
    assertEquals(formatIp(parseIp(input)), want, input);
  }
  assertEquals(parseIp("10.0.0.1").bytes, new Uint8Array([10, 0, 0, 1]));
  assertEquals(parseIp("::1").bytes.length, 16);
});

Deno.test("bad addresses and CIDRs are RangeErrors, non-strings TypeErrors", () => {
  for (
    const bad of [
      "",
      "10.0.0",
      "10.0.0.256",
      "010.0.0.1",
      "10.0.0.1.1",
      "1:2:3:4:5:6:7:8:9",
      "1::2::3",
      "fe80::1%eth0",
      "g::1",
      "10.0.0.1 ",
    ]
  ) {
    assertThrows(() => parseIp(bad), RangeError, "Invalid IP address");
  }
  for (
    const bad of [
      "10.0.0.1/33",
      "fd00::/129",
      "10.0.0.1/",
      "10.0.0.1/-1",
      "x/8",
      "10.0.0.1/08",
    ]
  ) {
    assertThrows(() => parseCidr(bad), RangeError, "Invalid CIDR");
  }
  assertThrows(
    () => parseCidr("10.0.0.1", { requirePrefix: true }),
    RangeError,
    "no prefix",
  );
  assertThrows(() => parseIp(42 as unknown as string), TypeError);
});

Deno.test("prefix arithmetic: network, broadcast, containment", () => {
  const c = parseCidr("10.88.7.9/16");
  assertEquals(formatCidr(networkOf(c)), "10.88.0.0/16");
  assertEquals(formatIp(broadcastOf(c)), "10.88.255.255");
  assert.ok(contains(c, parseIp("10.88.200.1")));
  assert.ok(!contains(c, parseIp("10.89.0.1")));
  assert.ok(!contains(c, parseIp("fd00::1")));
  assertEquals(
    formatCidr(networkOf(parseCidr("fd00:1:2:3::5/64"))),
    "fd00:1:2:3::/64",
  );
  assertEquals(formatCidr(networkOf(parseCidr("10.1.2.3/0"))), "0.0.0.0/0");
});

Deno.test("port mappings follow docker -p syntax", () => {
  assertEquals(parsePortMapping("8080:80"), {
    hostPort: 8080,
    containerPort: 80,
    protocol: "tcp",
  });
  assertEquals(parsePortMapping("53:5353/udp"), {
    hostPort: 53,
    containerPort: 5353,
    protocol: "udp",
  });
  assertEquals(parsePortMapping("127.0.0.1:8080:80"), {
    hostPort: 8080,
    containerPort: 80,
    protocol: "tcp",
    hostIp: "127.0.0.1",
  });
  assertEquals(parsePortMapping("80").hostPort, 80);
  assertEquals(
    parsePortMapping({ hostPort: 1, containerPort: 2 }).protocol,
    "tcp",
  );
  for (
    const bad of [
      "0:80",
      "8080:65536",
      "8080:80/sctp",
      ":80",
      "a:b",
      "1:2:3:4",
      "::1:80:80",
    ]
  ) {
    assertThrows(
      () => parsePortMapping(bad),
      RangeError,
      "Invalid port mapping",
    );
  }
  assertThrows(
    () =>
      parsePortMapping({ hostPort: 1, containerPort: 2, hostIp: "fd00::1" }),
    RangeError,
  );
  assertThrows(() => parsePortMapping(8080 as unknown as string), TypeError);
});

Deno.test("the nft script replaces one table atomically and only that table", () => {
  const script = natRuleset({
    bridge: "dbx0",
    subnet: "10.88.3.4/16",
    masquerade: true,
    forwards: [
      { address: "10.88.0.2", ports: ["8080:80", "127.0.0.1:5353:53/udp"] },
      {
        address: "10.88.0.3",
        ports: [{ hostPort: 9000, containerPort: 9000 }],
      },
    ],
  });
  const lines = script.split("\n");
  assertEquals(lines.slice(0, 3), [
    "table ip denobox_dbx0 {}",
    "delete table ip denobox_dbx0",
    "table ip denobox_dbx0 {",
  ]);
  const tables = lines.filter((l) => /^(table|delete table) /.test(l));
  assert.ok(
    tables.every((l) => l.includes(" ip denobox_dbx0")),
    "no other table is named",
  );
  assert.ok(
    script.includes('ip saddr 10.88.0.0/16 oifname != "dbx0" masquerade'),
  );
  assertEquals(
    lines.filter((l) =>
      l.includes("fib daddr type local tcp dport 8080 dnat to 10.88.0.2:80")
    )
      .length,
    2,
    "prerouting and output",
  );
  assert.ok(
    script.includes("ip daddr 127.0.0.1 udp dport 5353 dnat to 10.88.0.2:53"),
  );
  assert.ok(script.includes("dport 9000 dnat to 10.88.0.3:9000"));
  const empty = natRuleset({
    bridge: "dbx0",
    subnet: "10.88.0.0/16",
    masquerade: false,
    forwards: [],
  });
  assertEquals(
    empty,
    "table ip denobox_dbx0 {}\ndelete table ip denobox_dbx0\n",
  );
});

Deno.test("one host port cannot be published twice; table names stay apart", () => {
  assertThrows(
    () =>
      natRuleset({
        bridge: "dbx0",
        subnet: "10.88.0.0/16",
        masquerade: false,
        forwards: [
          { address: "10.88.0.2", ports: ["8080:80"] },
          { address: "10.88.0.3", ports: ["127.0.0.1:8080:81"] },
        ],
      }),
    RangeError,
    "already published for 10.88.0.2",
  );
  const a = natTableName("br-a"), b = natTableName("br_a");
  assert.ok(a !== b);
  assert.ok(/^[A-Za-z0-9_]+$/.test(a));
  assertThrows(() => natTableName("bad name"), RangeError);
});
