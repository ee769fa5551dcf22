/** Address leases: allocation, release, reclaim of dead owners, and races between processes. */
import {
  assert,
  assertEquals,
  assertRejects,
  assertThrows,
  REPO,
} from "../_helpers.ts";
import { AddressPool } from "denobox/net";

async function tempDir(): Promise<string> {
  return await Deno.makeTempDir({ prefix: "denobox-ipam-" });
}

Deno.test("leases go in order after the gateway and come back on release", async () => {
  const dir = await tempDir();
  try {
    const pool = AddressPool.open({
      subnet: "10.66.0.9/29",
      name: "t",
      stateDir: dir,
    });
    assertEquals([pool.subnetText, pool.gateway], [
      "10.66.0.8/29",
      "10.66.0.9",
    ]);
    const leases = [];
    for (let i = 0; i < 5; i++) leases.push(await pool.lease());
    assertEquals(leases.map((l) => l.cidr), [
      "10.66.0.10/29",
      "10.66.0.11/29",
      "10.66.0.12/29",
      "10.66.0.13/29",
      "10.66.0.14/29",
    ]);
    await assertRejects(
      () => pool.lease(),
      Error,
      "subnet 10.66.0.8/29 is full",
    );
    await leases[1]!.release();
    await leases[1]!.release();
    assertEquals((await pool.lease()).address, "10.66.0.11");
    for (const l of leases) await l.release();
    assertEquals((await pool.leases()).map((l) => l.address), ["10.66.0.11"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a requested address must be a free host address of the subnet", async () => {
  const dir = await tempDir();
  try {
    const pool = AddressPool.open({
      subnet: "10.66.1.0/24",
      name: "t",
      stateDir: dir,
    });
    await using a = await pool.lease(Deno.pid, { ip: "10.66.1.50" });
    assertEquals(a.address, "10.66.1.50");
    await assertRejects(
      () => pool.lease(Deno.pid, { ip: "10.66.1.50" }),
      Error,
      "leased to process",
    );
    for (
      const bad of [
        "10.66.1.1",
        "10.66.1.0",
        "10.66.1.255",
        "10.66.2.5",
        "fd00::5",
      ]
    ) {
      await assertRejects(
        () => pool.lease(Deno.pid, { ip: bad }),
        RangeError,
        "Invalid address",
      );
    }
    assertThrows(
      () => AddressPool.open({ subnet: "10.0.0.0/31", name: "t" }),
      RangeError,
    );
    assertThrows(
      () => AddressPool.open({ subnet: "fd00::/64", name: "t" }),
      RangeError,
    );
    assertThrows(
      () => AddressPool.open({ subnet: "10.0.0.0/8", name: "../x" }),
      RangeError,
    );
    assertThrows(
      () => AddressPool.open({ subnet: "10.0.0.0/33", name: "t" }),
      RangeError,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("leases of processes that are gone are reclaimed", async () => {
  const dir = await tempDir();
  try {
    const pool = AddressPool.open({
      subnet: "10.66.2.0/30",
      name: "t",
      stateDir: dir,
    });
    const child = new Deno.Command("sleep", { args: ["60"], stdin: "null" })
      .spawn();
    const lease = await pool.lease(child.pid);
    assertEquals(lease.address, "10.66.2.2");
    await assertRejects(() => pool.lease(), Error, "is full");
    child.kill("SIGKILL");
    await child.status;
    // The only address is free again: its owner is gone.
    assertEquals((await pool.lease()).address, "10.66.2.2");
    await assertRejects(() => pool.lease(999_999_999), Error, "is not running");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("concurrent processes never get the same address", async () => {
  const dir = await tempDir();
  const workers = 4, each = 12;
  const procs = Array.from(
    { length: workers },
    () =>
      new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          "--quiet",
          `--config=${REPO}/deno.json`,
          `${REPO}/tests/net/_ipam_worker.ts`,
          dir,
          String(each),
        ],
        stdin: "piped",
        stdout: "piped",
        stderr: "inherit",
      }).spawn(),
  );
  try {
    const all: string[] = [];
    for (const p of procs) {
      const reader = p.stdout.pipeThrough(new TextDecoderStream()).getReader();
      let text = "";
      while (!text.includes("\n")) {
        const { value, done } = await reader.read();
        if (done) break;
        text += value;
      }
      reader.releaseLock();
      all.push(...JSON.parse(text) as string[]);
    }
    assertEquals(all.length, workers * each);
    assertEquals(new Set(all).size, all.length, "no address handed out twice");
    const pool = AddressPool.open({
      subnet: "10.77.0.0/24",
      name: "race",
      stateDir: dir,
    });
    assertEquals((await pool.leases()).length, workers * each);
  } finally {
    for (const p of procs) {
      await p.stdin.close().catch(() => {});
      await p.stdout.cancel().catch(() => {});
      await p.status;
    }
  }
  // Every owner has exited: the next change reclaims their leases and drops the state file.
  const pool = AddressPool.open({
    subnet: "10.77.0.0/24",
    name: "race",
    stateDir: dir,
  });
  assertEquals(await pool.leases(), []);
  assert.ok(
    !(await Array.fromAsync(Deno.readDir(dir))).some((e) =>
      e.name.endsWith(".json")
    ),
  );
  await Deno.remove(dir, { recursive: true });
});
