/**
 * Seccomp and capabilities, end to end:
 * 1. compile denobox's default profile and a small custom filter, and look at their size;
 * 2. run busybox in a sandbox with the default hardening and watch a forbidden call fail;
 * 3. run it again with a custom filter that turns `mkdir` into EACCES and kills on `sync`.
 *
 *   tools/deno run -A examples/seccomp.ts   (as root, or rootless: spawn uses a user namespace)
 */
import { spawn, type SpawnOptions } from "denobox/sandbox";
import { defaultHardening } from "../sandbox/hardening.ts";
import {
  compileProfile,
  compileSeccomp,
  DEFAULT_SECCOMP_PROFILE,
} from "../sandbox/seccomp/mod.ts";
import { ensureRootfs } from "../tests/_helpers.ts";

const rootfs = await ensureRootfs();

// 1. Filters are plain bytes: 8 per BPF instruction.
const profile = compileProfile(DEFAULT_SECCOMP_PROFILE, { caps: [] });
console.log(`default profile: ${profile.length / 8} BPF instructions`);
const custom = compileSeccomp({
  defaultAction: "allow",
  rules: [
    { syscall: ["mkdir", "mkdirat"], action: { errno: "EACCES" } },
    { syscall: "sync", action: "kill-process" },
  ],
});
console.log(`custom filter: ${custom.length / 8} BPF instructions`);

async function run(
  title: string,
  script: string,
  extra: Partial<SpawnOptions>,
): Promise<void> {
  await using box = await spawn({
    argv: ["/bin/sh", "-c", script],
    rootfs,
    readOnly: true,
    mounts: [{ type: "tmpfs", target: "/tmp" }],
    stdout: "pipe",
    stderr: "pipe",
    ...extra,
  } as SpawnOptions);
  const out = await box.output();
  const text = new TextDecoder().decode(out.stdout) +
    new TextDecoder().decode(out.stderr);
  console.log(`\n--- ${title} (exit ${out.status.code ?? out.status.signal})`);
  console.log(text.trimEnd());
}

// 2. The default bundle: filter, capabilities, masked /proc paths, no_new_privs.
await run(
  "default hardening",
  "grep -E 'CapEff|NoNewPrivs|Seccomp:' /proc/self/status; " +
    "hostname evil || echo 'hostname: refused'; echo \"/proc/interrupts: $(wc -c < /proc/interrupts) bytes\"",
  defaultHardening(),
);

// 3. A custom filter, with the default capabilities and masks.
await run(
  "custom filter",
  "mkdir /tmp/x || echo 'mkdir refused'; /bin/sync; echo \"sync ended with status $?\"",
  { ...defaultHardening(), seccomp: custom },
);
