/**
 * spawn({ setup: networkSetup(...) }) end to end, with the "host" side in a namespace the
 * test creates: two sandboxes talk TCP over the bridge, and a killed sandbox's network is
 * taken back.
 */
import {
  assertEquals,
  assertMatch,
  ensureRootfs,
  IS_ROOT,
} from "../_helpers.ts";
import { spawn } from "denobox/sandbox";
import { addrList, linkList, networkSetup } from "denobox/net";
import { TestNetns } from "./_netns.ts";

const ignore = !IS_ROOT;
const env = { PATH: "/bin" };

async function snapshot(host: TestNetns) {
  const nft = await host.run(["nft", "list", "ruleset"]);
  return {
    links: linkList({ netns: host.path }),
    addrs: addrList({ netns: host.path }),
    nft: nft.stdout,
  };
}

Deno.test({
  name: "[root] two spawned sandboxes on one bridge exchange data over TCP",
  ignore,
  async fn() {
    const rootfs = await ensureRootfs();
    const stateDir = await Deno.makeTempDir({ prefix: "denobox-net-" });
    await using host = await TestNetns.create();
    const before = await snapshot(host);
    const network = {
      bridge: "dbx3",
      subnet: "10.124.0.0/24",
      hostNetns: host.path,
      stateDir,
      ports: [] as string[],
    };
    {
      await using server = await spawn({
        argv: [
          "nc",
          "-l",
          "-p",
          "7000",
          "-e",
          "sh",
          "-c",
          'read l; echo "server got: $l"',
        ],
        env,
        rootfs,
        namespaces: { net: true, mnt: true, pid: true, uts: true, ipc: true },
        setup: networkSetup({ ...network, ip: "10.124.0.10" }),
        stdout: "null",
        stderr: "null",
      });
      await using client = await spawn({
        argv: [
          "sh",
          "-c",
          "ip -4 -o addr show dev eth0; ip route; for i in $(seq 100); do " +
          "echo hello | nc -w 5 10.124.0.10 7000 && exit 0; sleep 0.05; done; exit 1",
        ],
        env,
        rootfs,
        namespaces: { net: true, mnt: true, pid: true, uts: true, ipc: true },
        setup: networkSetup(network),
        stdout: "pipe",
        stderr: "pipe",
      });
      const out = await client.output();
      const text = new TextDecoder().decode(out.stdout);
      assertEquals(
        out.status.code,
        0,
        text + new TextDecoder().decode(out.stderr),
      );
      assertMatch(text, /eth0\s+inet 10\.124\.0\.2\/24/);
      assertMatch(text, /default via 10\.124\.0\.1 dev eth0/);
      assertMatch(text, /server got: hello/);
      assertEquals((await server.status).code, 0);
    }
    assertEquals(
      await snapshot(host),
      before,
      "teardown restored the host side",
    );
    await Deno.remove(stateDir, { recursive: true });
  },
});

Deno.test({
  name: "[root] a killed sandbox's veth, lease and port rules go with it",
  ignore,
  async fn() {
    const rootfs = await ensureRootfs();
    const stateDir = await Deno.makeTempDir({ prefix: "denobox-net-" });
    await using host = await TestNetns.create();
    const before = await snapshot(host);
    const box = await spawn({
      argv: ["sleep", "3600"],
      env,
      rootfs,
      namespaces: { net: true, mnt: true, pid: true },
      setup: networkSetup({
        bridge: "dbx4",
        subnet: "10.125.0.0/24",
        hostNetns: host.path,
        stateDir,
        ports: ["8080:80"],
      }),
      stdout: "null",
      stderr: "null",
    });
    const during = await snapshot(host);
    assertMatch(during.nft, /dnat to 10\.125\.0\.2:80/);
    box.kill("SIGKILL");
    assertEquals((await box.status).signal, "SIGKILL");
    await box[Symbol.asyncDispose]();
    assertEquals(await snapshot(host), before);
    await Deno.remove(stateDir, { recursive: true });
  },
});
