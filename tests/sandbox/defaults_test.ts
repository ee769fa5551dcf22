/**
 * spawn() and exec() are hardened without any option (default seccomp filter, capability set,
 * masked and read-only /proc paths, no_new_privs), every relaxation is explicit; maxrss is the
 * command's own; a pty lives in the sandbox's devpts. As root and as uid 65534.
 */
import {
  assert,
  assertEquals,
  assertMatch,
  IS_ROOT,
  runAsNobody,
} from "../_helpers.ts";
import { capabilityMasks } from "../../sandbox/mod.ts";
import { defaultsProbe } from "./_defaults_probe.ts";

const hex = (n: bigint) => n.toString(16).padStart(16, "0");
const DEFAULT_CAPS = hex(capabilityMasks().bounding);
const ALL_CAPS = hex(capabilityMasks({ capAdd: ["ALL"] }).bounding);

function check(r: Record<string, unknown>): void {
  const d = r.defaults as Record<string, string>;
  assertEquals(d.Seccomp, "2", "a seccomp filter by default");
  assertEquals(d.NoNewPrivs, "1");
  assertEquals(d.CapBnd, DEFAULT_CAPS, "the default capability set");
  assertEquals(d.CapEff, DEFAULT_CAPS);
  assertEquals(d.interrupts, "0", "/proc/interrupts masked");
  assertEquals(d.interrupts_masked, "1");
  assertEquals(d.procsys_ro, "1", "/proc/sys read-only");

  const o = r.optOut as Record<string, string>;
  assertEquals(o.Seccomp, "0", "seccomp: false");
  assertEquals(o.CapBnd, r.allCaps ?? ALL_CAPS, 'capabilities: "all"');
  assertEquals(o.interrupts_masked, "0", "maskedPaths: []");
  assertEquals(o.procsys_ro, "0", "readonlyPaths: []");
  assertEquals((r.unconfined as Record<string, string>).Seccomp, "0");

  const e = r.execed as Record<string, string>;
  assertEquals(e.Seccomp, "2", "exec inherits the filter");
  assertEquals(e.CapBnd, DEFAULT_CAPS, "exec inherits the capabilities");
  assertEquals(e.NoNewPrivs, "1");

  // the command's maxrss is its own: far below the Deno parent's, and it still sees growth
  const small = r.smallRss as number, deno = r.denoRss as number;
  assert(small > 0 && small < 8192, `maxRss of /bin/true: ${small} KiB`);
  assert(small * 4 < deno, `maxRss ${small} KiB vs Deno's RSS ${deno} KiB`);
  assertEquals(r.bigCode, 0);
  assert(
    (r.bigRss as number) >= 65536,
    `maxRss after touching 64 MiB: ${r.bigRss} KiB`,
  );

  assertMatch(r.tty as string, /^\/dev\/pts\/0\r?$/m);
  const m = (r.tty as string).match(/pgrp=(\d+) tpgid=(\d+)/);
  assert(m && m[1] === m[2], `the shell is the pty's foreground job: ${r.tty}`);
}

Deno.test(
  "spawn [root]: safe defaults, explicit opt-outs, own maxrss, pty in devpts",
  {
    ignore: !IS_ROOT,
  },
  async () => {
    check(await defaultsProbe());
  },
);

Deno.test(
  "spawn [userns]: the same as uid 65534 (capabilities masked in the user namespace)",
  {
    ignore: !IS_ROOT,
  },
  async () => {
    const r = await runAsNobody(
      new URL("./_defaults_probe.ts", import.meta.url),
    );
    assertEquals(r.code, 0, r.stderr);
    check(JSON.parse(r.stdout.trim().split("\n").pop()!));
  },
);
