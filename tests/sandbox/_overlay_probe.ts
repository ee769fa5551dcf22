/**
 * Runs two sandboxes on an overlay root (a writable one with upper/work, a read-only one
 * without) and prints what they saw as JSON. Used by overlay_test.ts as root and as nobody.
 *   deno run -A tests/sandbox/_overlay_probe.ts ROOTFS TOP UPPER WORK
 */
import { type OverlayRootfs, spawn } from "../../sandbox/mod.ts";

/** What the sandboxes printed. */
export interface OverlayProbe {
  rw: { code: number | null; out: string; err: string };
  ro: { code: number | null; out: string; err: string };
}

async function run(rootfs: OverlayRootfs, script: string) {
  await using box = await spawn({
    argv: ["/bin/sh", "-c", script],
    rootfs,
    env: { PATH: "/bin" },
    stdout: "pipe",
    stderr: "pipe",
  });
  const o = await box.output();
  const dec = new TextDecoder();
  return {
    code: o.status.code,
    out: dec.decode(o.stdout),
    err: dec.decode(o.stderr),
  };
}

/** The probe: `top` above the busybox `rootfs`, changes into `upper`. */
export async function overlayProbe(
  rootfs: string,
  top: string,
  upper: string,
  work: string,
): Promise<OverlayProbe> {
  const lower = [top, rootfs];
  const rw = await run(
    { overlay: { lower, upper, work } },
    "cat /etc/who; cat /etc/group; echo hi > /new; rm /etc/who; " +
      "test -e /etc/who || echo gone; echo pid=$$",
  );
  const ro = await run(
    { overlay: { lower } },
    "cat /etc/who; echo x > /y 2>/dev/null || echo refused",
  );
  return { rw, ro };
}

if (import.meta.main) {
  const [rootfs, top, upper, work] = Deno.args as [
    string,
    string,
    string,
    string,
  ];
  console.log(JSON.stringify(await overlayProbe(rootfs, top, upper, work)));
}
