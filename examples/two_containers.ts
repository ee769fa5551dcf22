/**
 * Two containers on one bridge: one serves TCP with busybox nc, the other connects to it.
 *
 *   sudo tools/deno run -A examples/two_containers.ts
 *
 * Each container gets its own network namespace with `eth0` on the bridge `dbx0`, an address
 * from 10.89.0.0/24 and a default route via the bridge (10.89.0.1). So that nothing touches
 * this machine's own interfaces, the bridge itself lives in a private "host" namespace held by
 * a third, idle sandbox; drop `hostNetns` to put it in your real one, as Docker does with
 * docker0. Needs root and busybox on the host (the containers see a read-only view of it).
 */
import { spawn } from "denobox/sandbox";
import { networkSetup } from "denobox/net";

const env = { PATH: "/usr/sbin:/usr/bin:/sbin:/bin" };
const stateDir = await Deno.makeTempDir({ prefix: "denobox-example-" });
try {
  // The private "host" side: a namespace with only lo, where the bridge will appear.
  await using router = await spawn({
    argv: ["sleep", "3600"],
    env,
    namespaces: { net: true },
    stdout: "null",
    stderr: "null",
  });
  const network = {
    bridge: "dbx0",
    subnet: "10.89.0.0/24",
    hostNetns: `/proc/${router.pid}/ns/net`,
    stateDir,
    nat: false, // nothing to reach outside the bridge
  };

  // Container 1: answers one connection on port 7000.
  await using server = await spawn({
    argv: [
      "busybox",
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
    hostname: "server",
    namespaces: { net: true, uts: true, pid: true, ipc: true },
    setup: networkSetup({ ...network, ip: "10.89.0.10" }),
    stdout: "inherit",
    stderr: "inherit",
  });

  // Container 2: connects (retrying until the server listens) and prints the answer.
  await using client = await spawn({
    argv: [
      "sh",
      "-c",
      "ip -4 -br addr show dev eth0; for i in $(seq 50); do " +
      "echo 'hello from the client' | busybox nc -w 5 10.89.0.10 7000 && exit 0; " +
      "sleep 0.1; done; exit 1",
    ],
    env,
    hostname: "client",
    namespaces: { net: true, uts: true, pid: true, ipc: true },
    setup: networkSetup(network),
    stdout: "pipe",
    stderr: "inherit",
  });
  const result = await client.output();
  console.log(new TextDecoder().decode(result.stdout).trim());
  console.log(`client exited with ${result.status.code}`);
  await server.status;
} finally {
  await Deno.remove(stateDir, { recursive: true });
}
