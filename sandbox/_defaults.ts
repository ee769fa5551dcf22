/**
 * The safe defaults spawn() and exec() apply when the caller says nothing: the default seccomp
 * profile (resolved against the capabilities the command keeps), `DEFAULT_CAPABILITIES`, and
 * the masked and read-only paths. Every relaxation is an explicit option value.
 */
import {
  CAPABILITIES,
  type CapabilityMasks,
  capabilityMasks,
  type CapabilityName,
  lastCapability,
} from "./capabilities.ts";

/**
 * The `seccomp` option of spawn/exec: a compiled BPF program, `"default"` (denobox's profile,
 * resolved against the capabilities kept), or `"unconfined"` / `false` for no filter.
 */
export type SeccompSetting = Uint8Array | "default" | "unconfined" | false;

/**
 * The `capabilities` option of spawn/exec: explicit masks (see `capabilityMasks`), or `"all"`
 * to keep every capability the sandbox's user has.
 */
export type CapabilitySetting = CapabilityMasks | "all";

/** What the command's process gets: null means "leave as is". */
export interface ResolvedHardening {
  capabilities: CapabilityMasks | null;
  seccomp: Uint8Array | null;
}

let defaultCaps: CapabilityMasks | null = null;
const filters = new Map<bigint, Uint8Array>();

function capsOf(
  setting: CapabilitySetting | undefined,
): CapabilityMasks | null {
  if (setting === undefined) return defaultCaps ??= capabilityMasks();
  if (setting === "all") return null;
  if (
    typeof setting !== "object" || setting === null ||
    (["bounding", "effective", "permitted", "inheritable"] as const).some((k) =>
      typeof setting[k] !== "bigint"
    )
  ) {
    throw new TypeError(
      'Invalid capabilities: expected "all" or { bounding, effective, permitted, inheritable } bigint masks',
    );
  }
  return setting;
}

/**
 * The default profile compiled for the capabilities in `bounding` (null: all of them). The
 * compiler and the profile (~35 KB of code) are loaded on first use only: a caller passing a
 * compiled filter (the CLI's on-disk cache) or "unconfined" never loads them.
 */
async function defaultFilter(
  caps: CapabilityMasks | null,
): Promise<Uint8Array> {
  const last = lastCapability();
  const all = (1n << BigInt(last + 1)) - 1n;
  const mask = caps === null ? all : caps.bounding & all;
  let f = filters.get(mask);
  if (!f) {
    const names = (Object.entries(CAPABILITIES) as [CapabilityName, number][])
      .filter(([, n]) => n <= last && (mask & (1n << BigInt(n))) !== 0n)
      .map(([name]) => name);
    const { defaultHardening } = await import("./hardening.ts");
    f = defaultHardening({ capDrop: ["ALL"], capAdd: names })
      .seccomp as Uint8Array;
    filters.set(mask, f);
  }
  return f;
}

/**
 * Resolves the seccomp and capability options: absent means the defaults; `false` or
 * `"unconfined"` means no filter; `"all"` keeps every capability. TypeError on bad values.
 */
export async function resolveHardening(
  o: { seccomp?: SeccompSetting; capabilities?: CapabilitySetting },
): Promise<ResolvedHardening> {
  const capabilities = capsOf(o.capabilities);
  const s = o.seccomp;
  let seccomp: Uint8Array | null;
  if (s === false || s === "unconfined") seccomp = null;
  else if (s === undefined || s === "default") {
    seccomp = await defaultFilter(capabilities);
  } else if (s instanceof Uint8Array) seccomp = s;
  else {
    throw new TypeError(
      `Invalid seccomp: expected a BPF program, "default", "unconfined" or false: ${
        JSON.stringify(s)
      }`,
    );
  }
  return { capabilities, seccomp };
}
