/**
 * bench/net: the time to give a sandbox a configured veth (pair created, one end in the
 * sandbox's namespace, addresses, default route, links up) with denobox, next to the same
 * done with `ip` commands, in one run. Root only. Everything happens inside network
 * namespaces made here ("host" included), removed at the end.
 *
 *   tools/deno run -A bench/net.ts [iterations]
 */
import {
  addrAdd,
  bridgeAdd,
  linkDel,
  linkSetUp,
  networkSetup,
  routeAdd,
  vethPair,
} from "denobox/net";

if (Deno.uid() !== 0) {
  console.error("bench/net: needs root (network namespaces, veth pairs)");
  Deno.exit(1);
}
const N = Number(Deno.args[0] ?? 30);
const SUBNET_PREFIX = "10.201";

class Holder {
  readonly child: Deno.ChildProcess;
  constructor() {
    this.child = new Deno.Command("unshare", {
      args: ["--net", "sleep", "600"],
      stdin: "null",
    }).spawn();
  }
  get pid(): number {
    return this.child.pid;
  }
  get path(): string {
    return `/proc/${this.child.pid}/ns/net`;
  }
  async ready(): Promise<this> {
    for (let i = 0; i < 1000; i++) {
      const comm = await Deno.readTextFile(`/proc/${this.pid}/comm`).catch(() =>
        ""
      );
      if (comm.trim() === "sleep") return this;
      await new Promise((r) => setTimeout(r, 2));
    }
    throw new Error("unshare did not start");
  }
  async kill(): Promise<void> {
    try {
      this.child.kill("SIGKILL");
    } catch { /* gone */ }
    await this.child.status;
  }
}

async function sh(args: string[]): Promise<void> {
  const out = await new Deno.Command(args[0]!, {
    args: args.slice(1),
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(
      `${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`,
    );
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

const host = await new Holder().ready();
const stateDir = await Deno.makeTempDir({ prefix: "denobox-bench-net-" });
const netns = host.path;
const times = {
  ip: [] as number[],
  ipBatch: [] as number[],
  api: [] as number[],
  setup: [] as number[],
};
try {
  bridgeAdd("br0", { netns, up: true });
  addrAdd("br0", `${SUBNET_PREFIX}.0.1/16`, { netns });
  const gw = `${SUBNET_PREFIX}.0.1`;
  const nsenter = (pid: number) => ["nsenter", `--net=/proc/${pid}/ns/net`];
  const inHost = nsenter(host.pid);

  for (let i = 0; i < N; i++) {
    const addr = (k: number) => `${SUBNET_PREFIX}.${k}.${i + 2}/16`;

    // 1. ip, one command per step (what a shell script does).
    let c = await new Holder().ready();
    let t = performance.now();
    await sh([
      ...inHost,
      "ip",
      "link",
      "add",
      "vip",
      "type",
      "veth",
      "peer",
      "name",
      "eth0",
      "netns",
      String(c.pid),
    ]);
    await sh([...inHost, "ip", "link", "set", "vip", "master", "br0", "up"]);
    await sh([...nsenter(c.pid), "ip", "addr", "add", addr(1), "dev", "eth0"]);
    await sh([...nsenter(c.pid), "ip", "link", "set", "eth0", "up"]);
    await sh([...nsenter(c.pid), "ip", "link", "set", "lo", "up"]);
    await sh([...nsenter(c.pid), "ip", "route", "add", "default", "via", gw]);
    times.ip.push(performance.now() - t);
    linkDel("vip", { netns });
    await c.kill();

    // 2. ip in batch mode: one process per namespace.
    c = await new Holder().ready();
    t = performance.now();
    const hostBatch =
      `link add vipb type veth peer name eth0 netns ${c.pid}\nlink set vipb master br0 up\n`;
    const childBatch = `addr add ${
      addr(2)
    } dev eth0\nlink set eth0 up\nlink set lo up\nroute add default via ${gw}\n`;
    for (
      const [who, batch] of [[inHost, hostBatch], [
        nsenter(c.pid),
        childBatch,
      ]] as const
    ) {
      const p = new Deno.Command(who[0]!, {
        args: [...who.slice(1), "ip", "-batch", "-"],
        stdin: "piped",
        stdout: "null",
        stderr: "piped",
      }).spawn();
      const w = p.stdin.getWriter();
      await w.write(new TextEncoder().encode(batch));
      await w.close();
      const out = await p.output();
      if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
    }
    times.ipBatch.push(performance.now() - t);
    linkDel("vipb", { netns });
    await c.kill();

    // 3. denobox's ip-like functions, one call per step.
    c = await new Holder().ready();
    t = performance.now();
    vethPair("vapi", "eth0", {
      netns,
      peerNetns: { pid: c.pid },
      master: "br0",
      up: true,
    });
    addrAdd("eth0", addr(3), { netns: c.path });
    linkSetUp("eth0", { netns: c.path });
    linkSetUp("lo", { netns: c.path });
    routeAdd({ via: gw }, { netns: c.path });
    times.api.push(performance.now() - t);
    linkDel("vapi", { netns });
    await c.kill();

    // 4. networkSetup: the spawn hook, with its lease (lock + state file) and rollback.
    c = await new Holder().ready();
    const setup = networkSetup({
      bridge: "br0",
      subnet: `${SUBNET_PREFIX}.0.0/16`,
      hostNetns: netns,
      stateDir,
      nat: false,
    });
    t = performance.now();
    const att = await setup({ pid: c.pid, pidfd: -1 });
    times.setup.push(performance.now() - t);
    await att[Symbol.asyncDispose]();
    await c.kill();
  }
} finally {
  await host.kill();
  await Deno.remove(stateDir, { recursive: true });
}

const ip = median(times.ip);
const row = (name: string, xs: number[]) =>
  console.log(
    `${name.padEnd(44)} ${median(xs).toFixed(2).padStart(8)} ms   ${
      (median(xs) / ip).toFixed(3)
    } x ip`,
  );
console.log(
  `bench/net: configured veth for one sandbox, median of ${N} (lower is better)`,
);
row("ip commands (6 processes)", times.ip);
row("ip -batch (2 processes)", times.ipBatch);
row("denobox ip-like functions (5 calls)", times.api);
row("denobox networkSetup (lease + veth + config)", times.setup);
const ratio = median(times.setup) / ip;
console.log(
  `target: networkSetup <= 0.25 x ip commands: ${
    ratio <= 0.25 ? "met" : "MISSED"
  } (${ratio.toFixed(3)})`,
);
