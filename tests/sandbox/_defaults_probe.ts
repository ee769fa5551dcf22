/**
 * What a sandbox gets with no hardening option, with each explicit opt-out, through exec(),
 * and how its memory and terminal look: run in-process as root and as uid 65534
 * (tests/sandbox/defaults_test.ts). Prints one JSON object when run as a script.
 */
import { exec, spawn, type SpawnOptions } from "../../sandbox/mod.ts";
import { ensureRootfs } from "../_helpers.ts";

const dec = new TextDecoder();

// the fields of /proc/self/status the defaults change, the masked and read-only paths
const SCRIPT = [
  "grep -E '^(Seccomp|NoNewPrivs|CapBnd|CapEff):' /proc/self/status",
  "echo interrupts=$(wc -c < /proc/interrupts)",
  "grep -c ' /proc/sys ro,' /proc/self/mountinfo | sed 's/^/procsys_ro=/'",
  "grep -c ' /proc/interrupts ' /proc/self/mountinfo | sed 's/^/interrupts_masked=/'",
].join("; ");

function parse(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const m = line.match(/^(\w+)[:=]\s*(\S*)/);
    if (m) out[m[1]!] = m[2]!;
  }
  return out;
}

async function run(
  rootfs: string,
  extra: Partial<SpawnOptions> = {},
): Promise<Record<string, string>> {
  await using box = await spawn({
    argv: ["/bin/sh", "-c", SCRIPT],
    rootfs,
    env: { PATH: "/bin" },
    stdout: "pipe",
    stderr: "null",
    ...extra,
  });
  return parse(dec.decode((await box.output()).stdout));
}

/** Runs every probe; the result is plain JSON. */
export async function defaultsProbe(): Promise<Record<string, unknown>> {
  const rootfs = await ensureRootfs();
  const defaults = await run(rootfs);
  const optOut = await run(rootfs, {
    seccomp: false,
    capabilities: "all",
    maskedPaths: [],
    readonlyPaths: [],
  });
  const unconfined = await run(rootfs, { seccomp: "unconfined" });
  // exec into a default sandbox inherits its hardening
  await using box = await spawn({ argv: ["/bin/sleep", "60"], rootfs });
  await using e = await exec(box, {
    argv: ["/bin/sh", "-c", SCRIPT],
    env: { PATH: "/bin" },
    stdout: "pipe",
    stderr: "null",
  });
  const execed = parse(dec.decode((await e.output()).stdout));
  // maxrss: a tiny static program, and one that touches 64 MiB (dd's buffer)
  const small = await spawn({ argv: ["/bin/true"], rootfs });
  const smallRss = (await small.status).rusage.maxRss;
  const big = await spawn({
    argv: ["/bin/dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"],
    rootfs,
    stderr: "null",
  });
  const bigStatus = await big.status;
  // a pty opened in the sandbox's devpts: tty names it, the shell is in the foreground
  await using t = await spawn({
    argv: [
      "/bin/sh",
      "-c",
      "tty; set -- $(cat /proc/$$/stat); echo pgrp=$5 tpgid=$8",
    ],
    rootfs,
    env: { PATH: "/bin" },
    pty: { rows: 20, cols: 70 },
  });
  const ttyOut = await new Response(t.pty!.readable).text();
  await t.status;
  // "all" keeps what the command would have without a drop: ours as root, the full set in
  // a new user namespace
  const ourBounding = (await Deno.readTextFile("/proc/self/status")).match(
    /^CapBnd:\s*(\S+)/m,
  )![1];
  return {
    allCaps: Deno.uid() === 0 ? ourBounding : null,
    defaults,
    optOut,
    unconfined,
    execed,
    smallRss,
    bigRss: bigStatus.rusage.maxRss,
    bigCode: bigStatus.code,
    denoRss: Math.round(Deno.memoryUsage().rss / 1024),
    tty: ttyOut,
  };
}

if (import.meta.main) {
  console.log(JSON.stringify(await defaultsProbe()));
}
