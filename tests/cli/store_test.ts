// The daemonless store: name races, unique prefixes, crash repair. Driven through the CLI
// (the launcher as a subprocess) with a temp --root, plus the store module for crafting the
// states a crash leaves behind.
import { assert, assertEquals, assertMatch, IS_ROOT } from "../_helpers.ts";
import { join } from "node:path";
import { Store } from "../../cli/_store.ts";
import { cli, until } from "./_cli.ts";

async function withRoot(fn: (root: string) => Promise<void>): Promise<void> {
  const root = await Deno.makeTempDir({ prefix: "denobox-cli-" });
  try {
    await fn(root);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

Deno.test("cli store: two creates racing on one name get one success and one clear error", async () => {
  await withRoot(async (root) => {
    for (let round = 0; round < 3; round++) {
      const name = `race${round}`;
      const results = await Promise.all(
        Array.from(
          { length: 4 },
          () => cli(root, ["create", "--name", name, "/bin/true"]),
        ),
      );
      const ok = results.filter((r) => r.code === 0);
      const failed = results.filter((r) => r.code !== 0);
      assertEquals(ok.length, 1, JSON.stringify(results));
      for (const f of failed) {
        assertEquals(f.code, 125);
        assertMatch(
          f.stderr,
          new RegExp(`name is already in use by container [0-9a-f]{64}`),
        );
      }
      const id = ok[0]!.stdout.trim();
      assertMatch(id, /^[0-9a-f]{64}$/);
      const ps = await cli(root, ["ps", "-a", "--format", "json"]);
      const rows = ps.stdout.trim().split("\n").map((l) => JSON.parse(l));
      assertEquals(rows.filter((r) => r.Names === name).map((r) => r.ID), [id]);
      // the losers left nothing behind
      assertEquals(
        new Store({ lib: root, run: join(root, "run"), rootless: false }).ids()
          .length,
        round + 1,
      );
    }
  });
});

Deno.test("cli store: IDs by unique prefix, names, generated names, rename, rm of several", async () => {
  await withRoot(async (root) => {
    const a = (await cli(root, ["create", "/bin/true"])).stdout.trim();
    const b = (await cli(root, ["create", "--name", "bee", "/bin/true"])).stdout
      .trim();
    const psA =
      JSON.parse((await cli(root, ["inspect", a.slice(0, 12)])).stdout)[0];
    assertEquals(psA.Id, a);
    assertMatch(psA.Name, /^[a-z]+_[a-z]+(_\d+)?$/);
    assertEquals(
      JSON.parse((await cli(root, ["inspect", "bee"])).stdout)[0].Id,
      b,
    );
    // a prefix shared by both is refused with both named
    let common = 0;
    while (a[common] === b[common]) common++;
    if (common > 0) {
      const amb = await cli(root, [
        "inspect",
        "--type",
        "container",
        a.slice(0, common),
      ]);
      assertMatch(amb.stderr, /ambiguous/);
    }
    const missing = await cli(root, ["rm", "nosuch"]);
    assertEquals(missing.code, 1);
    assertMatch(missing.stderr, /No such container: nosuch/);
    assertEquals((await cli(root, ["rm", "-f", "nosuch"])).code, 0);
    assertEquals((await cli(root, ["rename", "bee", "wasp"])).code, 0);
    assertEquals(
      (await cli(root, ["inspect", "-f", "{{.Name}}", b.slice(0, 8)])).stdout
        .trim(),
      "wasp",
    );
    const taken = await cli(root, ["create", "--name", "wasp", "/bin/true"]);
    assertMatch(taken.stderr, /already in use/);
    // the old name is free again
    assertEquals(
      (await cli(root, ["create", "--name", "bee", "/bin/true"])).code,
      0,
    );
    const ids = (await cli(root, ["ps", "-aq"])).stdout.trim().split("\n");
    assertEquals(ids.length, 3);
    const rm = await cli(root, ["rm", ...ids]);
    assertEquals(rm.code, 0, rm.stderr);
    assertEquals((await cli(root, ["ps", "-aq"])).stdout.trim(), "");
    assertEquals(
      (await Array.fromAsync(Deno.readDir(join(root, "names")))).length,
      0,
    );
  });
});

Deno.test("cli store: a container whose owner died shows as exited (unknown); half-made ones vanish", async () => {
  await withRoot(async (root) => {
    const store = new Store({
      lib: root,
      run: join(root, "run"),
      rootless: false,
    });
    const id = (await cli(root, ["create", "--name", "orphan", "/bin/true"]))
      .stdout.trim();
    // what a monitor killed with SIGKILL leaves: "running", its lock released by the kernel
    store.updateState(id, {
      status: "running",
      pid: 999999,
      monitorPid: 999998,
      startedAt: new Date().toISOString(),
    });
    const ps = await cli(root, ["ps", "-a", "--format", "json"]);
    const row = JSON.parse(ps.stdout.trim());
    assertEquals([row.State, row.ExitCode], ["exited", null]);
    assertMatch(row.Status, /^Exited \(unknown\)/);
    assertEquals((await cli(root, ["ps", "-q"])).stdout.trim(), "");
    const st = store.readState(id);
    assertEquals(st.status, "exited");
    assertMatch(st.error ?? "", /monitor \(pid 999998\) died/);
    // a creator that died between mkdir and config.json: the next ps removes the leftover
    const half = join(root, "containers", "ab".repeat(32));
    await Deno.mkdir(half);
    await Deno.writeTextFile(join(root, "names", "ghost"), "ab".repeat(32));
    await cli(root, ["ps", "-a"]);
    let gone = false;
    try {
      await Deno.stat(half);
    } catch {
      gone = true;
    }
    assert(gone, "half-created container directory was not repaired");
    // its stale name can be claimed again
    assertEquals(
      (await cli(root, ["create", "--name", "ghost", "/bin/true"])).code,
      0,
    );
    assertEquals((await cli(root, ["rm", "orphan", "ghost"])).code, 0);
  });
});

Deno.test({
  name:
    "[root] cli store: an --rm container's directory is kept as a spare and reused, emptied; a name is a second link to the ID",
  ignore: !IS_ROOT,
  async fn() {
    await withRoot(async (root) => {
      const spares = join(root, "spares");
      const list = (dir: string) => {
        try {
          return [...Deno.readDirSync(dir)].map((e) => e.name).sort();
        } catch {
          return [];
        }
      };
      const r1 = await cli(root, ["run", "--rm", "/bin/sh", "-c", "echo one"]);
      assertEquals([r1.code, r1.stdout], [0, "one\n"], r1.stderr);
      const [spare] = list(spares);
      assert(spare !== undefined, "no spare kept");
      // emptied: no log, config and state that no reader takes for JSON
      assertEquals(list(join(spares, spare)), [
        "config.json",
        "monitor.lock",
        "state.json",
      ]);
      for (const f of ["config.json", "state.json"]) {
        assertEquals((await Deno.stat(join(spares, spare, f))).size, 1);
      }
      assertEquals(list(join(root, "containers")), []);
      assertEquals(list(join(root, "names")), []);

      // the next container takes it: its own config, state and log, its name linked to its ID
      const id = (await cli(root, [
        "run",
        "-d",
        "--name",
        "again",
        "/bin/sh",
        "-c",
        "echo two; sleep 30",
      ])).stdout.trim();
      assertEquals(list(spares), []);
      assertEquals(list(join(root, "containers")), [id]);
      assertEquals(await Deno.readTextFile(join(root, "names", "again")), id);
      const names = await Deno.stat(join(root, "names", "again"));
      const lock = await Deno.stat(
        join(root, "containers", id, "monitor.lock"),
      );
      assertEquals([names.ino, names.nlink], [lock.ino, 2]);
      const inspect = JSON.parse(
        (await cli(root, ["inspect", "again"])).stdout,
      );
      assertEquals([inspect[0].Id, inspect[0].State.Status], [id, "running"]);
      await until("the output in the log", async () => {
        const l = await cli(root, ["logs", "again"]);
        return l.stdout === "two\n" ? l : null;
      });
      assertEquals((await cli(root, ["rm", "-f", "again"])).code, 0);

      // many ending together leave no container behind, and a spare or more
      await Promise.all(
        Array.from(
          { length: 10 },
          () => cli(root, ["run", "--rm", "/bin/sleep", "0.3"]),
        ),
      );
      assert(list(spares).length >= 1, "no spare kept");
      assertEquals(list(join(root, "containers")), []);
      // with MAX_SPARES (8) there already, one more is not kept (nor are those taken that
      // hold no lock file)
      await Deno.remove(spares, { recursive: true });
      const full = Array.from({ length: 8 }, (_, i) => `full${i}`);
      for (const n of full) {
        await Deno.mkdir(join(spares, n), { recursive: true });
      }
      const r3 = await cli(root, ["run", "--rm", "/bin/true"]);
      assertEquals(r3.code, 0, r3.stderr);
      assertEquals(list(spares), full);
      assertEquals(list(join(root, "containers")), []);
      assertEquals((await cli(root, ["ps", "-aq"])).stdout, "");
    });
  },
});

Deno.test({
  name:
    "[root] cli logs -f: follows a container that has printed nothing yet (its log is made with the first output)",
  ignore: !IS_ROOT,
  async fn() {
    await withRoot(async (root) => {
      const id = (await cli(root, [
        "run",
        "-d",
        "/bin/sh",
        "-c",
        "sleep 0.5; echo late",
      ])).stdout.trim();
      assertEquals(
        (await cli(root, ["logs", id])).stdout,
        "",
        "output before any",
      );
      const f = await cli(root, ["logs", "-f", id]);
      assertEquals([f.code, f.stdout], [0, "late\n"], f.stderr);
      assertEquals((await cli(root, ["rm", id])).code, 0);
    });
  },
});
