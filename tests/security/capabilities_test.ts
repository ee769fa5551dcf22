/** Capability names, sets and masks (pure), and the hardening bundle built from them. */
import {
  CAPABILITIES,
  capabilityMasks,
  capabilityName,
  capabilityNumber,
  DEFAULT_CAPABILITIES,
  DOCKER_DEFAULT_CAPABILITIES,
  lastCapability,
  resolveCapabilities,
} from "../../sandbox/capabilities.ts";
import {
  DEFAULT_MASKED_PATHS,
  DEFAULT_READONLY_PATHS,
  defaultHardening,
} from "../../sandbox/hardening.ts";
import {
  compileProfile,
  DEFAULT_SECCOMP_PROFILE,
} from "../../sandbox/seccomp/mod.ts";
import { SYSCALL_TABLES } from "denobox/libc";
import { assert, assertEquals, assertThrows, exists } from "../_helpers.ts";
import { decode, validate } from "../seccomp/_bpf_interp.ts";
import { decide } from "../seccomp/_reference.ts";

Deno.test("capabilities: names and numbers agree with the kernel headers", async () => {
  // linux/capability.h on this machine is the reference
  const header = await Deno.readTextFile("/usr/include/linux/capability.h");
  const defs = [...header.matchAll(/^#define (CAP_[A-Z_]+)\s+(\d+)\s*$/gm)]
    .filter(([, name]) =>
      name !== "CAP_LAST_CAP" && !name!.startsWith("CAP_TO")
    );
  assert(defs.length >= 38, "capability.h parsed");
  for (const [, name, value] of defs) {
    assertEquals(
      CAPABILITIES[name as keyof typeof CAPABILITIES],
      Number(value),
      name,
    );
  }
  assertEquals(Object.keys(CAPABILITIES).length, 41);
  assertEquals(capabilityNumber("sys_admin"), 21);
  assertEquals(capabilityNumber("CAP_CHECKPOINT_RESTORE"), 40);
  assertEquals(capabilityName(13), "CAP_NET_RAW");
  assertEquals(capabilityName(" Net_Admin "), "CAP_NET_ADMIN");
  assertThrows(() => capabilityName("CAP_FLY"), TypeError, "CAP_FLY");
  assertThrows(() => capabilityName(41), RangeError, "41");
});

Deno.test("capabilities: cap_last_cap is read from the kernel", async () => {
  const text = (await Deno.readTextFile("/proc/sys/kernel/cap_last_cap"))
    .trim();
  assertEquals(lastCapability(), Number(text));
});

Deno.test("capabilities: capAdd and capDrop follow Docker's rules", () => {
  assertEquals(resolveCapabilities().length, DEFAULT_CAPABILITIES.length);
  assertEquals(
    resolveCapabilities({ base: DOCKER_DEFAULT_CAPABILITIES }).length,
    14,
  );
  assert(!resolveCapabilities().includes("CAP_NET_RAW"));
  assert(resolveCapabilities({ capAdd: ["NET_RAW"] }).includes("CAP_NET_RAW"));
  assertEquals(
    resolveCapabilities({ capDrop: ["ALL"], capAdd: ["kill", "CAP_CHOWN"] }),
    [
      "CAP_CHOWN",
      "CAP_KILL",
    ],
  );
  assertEquals(
    resolveCapabilities({ capAdd: ["ALL"], capDrop: ["SYS_ADMIN"] }).length,
    40,
  );
  assertEquals(resolveCapabilities({ capDrop: ["ALL"] }), []);
  // an add beats a drop of the same name
  assert(
    resolveCapabilities({ capAdd: ["CHOWN"], capDrop: ["CHOWN"] }).includes(
      "CAP_CHOWN",
    ),
  );
  assert(!resolveCapabilities({ capDrop: ["chown"] }).includes("CAP_CHOWN"));
  assertThrows(
    () => resolveCapabilities({ capAdd: ["CAP_NOPE"] }),
    TypeError,
    "CAP_NOPE",
  );
  assertThrows(
    () => resolveCapabilities({ capDrop: "ALL" as unknown as string[] }),
    TypeError,
    "capDrop",
  );
});

Deno.test("capabilities: masks", () => {
  const docker = capabilityMasks({ base: DOCKER_DEFAULT_CAPABILITIES });
  assertEquals(docker, {
    bounding: 0xa80425fbn,
    effective: 0xa80425fbn,
    permitted: 0xa80425fbn,
    inheritable: 0n,
  });
  assertEquals(
    capabilityMasks().effective,
    0xa80425fbn & ~(1n << 13n) & ~(1n << 27n),
  );
  // every capability, limited to what the kernel knows
  assertEquals(
    capabilityMasks({ capAdd: ["ALL"], lastCap: 40 }).bounding,
    (1n << 41n) - 1n,
  );
  assertEquals(
    capabilityMasks({ capAdd: ["ALL"], lastCap: 37 }).bounding,
    (1n << 38n) - 1n,
  );
});

Deno.test("hardening: the default bundle", () => {
  const h = defaultHardening();
  assertEquals(h.noNewPrivs, true);
  assertEquals(h.capabilities, capabilityMasks());
  assertEquals(h.maskedPaths, DEFAULT_MASKED_PATHS);
  assertEquals(
    h.readonlyPaths,
    DEFAULT_READONLY_PATHS.filter((p) => exists(p)),
  );
  for (
    const p of [
      "/proc/kcore",
      "/proc/keys",
      "/proc/timer_list",
      "/proc/sched_debug",
      "/sys/firmware",
    ]
  ) {
    assert(h.maskedPaths.includes(p), p);
  }
  for (
    const p of [
      "/proc/sys",
      "/proc/sysrq-trigger",
      "/proc/irq",
      "/proc/bus",
      "/proc/fs",
    ]
  ) {
    assert(DEFAULT_READONLY_PATHS.includes(p), p);
    assertEquals(h.readonlyPaths.includes(p), exists(p), p);
  }
  const prog = decode(h.seccomp as Uint8Array);
  validate(prog);
  assert(prog.length <= 300);
  assertEquals(defaultHardening({ seccomp: "unconfined" }).seccomp, false);
  assertThrows(
    () => defaultHardening({ seccomp: "strict" as "default" }),
    TypeError,
    "strict",
  );
  assertThrows(
    () => defaultHardening({ capAdd: ["CAP_X"] }),
    TypeError,
    "CAP_X",
  );
});

Deno.test("hardening: the filter follows the final capabilities", () => {
  const t = SYSCALL_TABLES.x86_64;
  const mount = (caps: { capAdd?: string[] }) =>
    decide(
      decode(
        defaultHardening({ ...caps, arch: "x86_64" }).seccomp as Uint8Array,
      ),
      "x86_64",
      {
        nr: t["mount"]!,
      },
    );
  assertEquals(mount({}), 0x50001);
  assertEquals(mount({ capAdd: ["SYS_ADMIN"] }), 0x7fff0000);
  // Dropping CAP_SYS_CHROOT also closes chroot in the filter.
  const chroot = decode(
    defaultHardening({ capDrop: ["SYS_CHROOT"], arch: "x86_64" })
      .seccomp as Uint8Array,
  );
  assertEquals(decide(chroot, "x86_64", { nr: t["chroot"]! }), 0x50001);
  // a Docker-format profile and a raw filter are accepted too
  const custom = defaultHardening({
    seccomp: {
      defaultAction: "SCMP_ACT_ALLOW",
      syscalls: [{ names: ["getpid"], action: "SCMP_ACT_KILL_PROCESS" }],
    },
    arch: "x86_64",
  });
  assertEquals(
    decide(decode(custom.seccomp as Uint8Array), "x86_64", {
      nr: t["getpid"]!,
    }),
    0x80000000,
  );
  const raw = defaultHardening({
    seccomp: { defaultAction: "allow", rules: [] },
    arch: "aarch64",
  });
  assertEquals(decode(raw.seccomp as Uint8Array).length, 4);
  // the default bundle is the default profile resolved with the default caps, plus ENOSYS above
  assertEquals(
    defaultHardening({ arch: "aarch64" }).seccomp,
    compileProfile(DEFAULT_SECCOMP_PROFILE, {
      arch: "aarch64",
      caps: DEFAULT_CAPABILITIES,
      newerSyscallAction: { errno: "ENOSYS" },
    }),
  );
});
