import type { Descriptor } from "./types.ts";

/** A wanted platform; missing fields default to this machine's (os linux). */
export interface PlatformWanted {
  /** Default `"linux"`. */
  os?: string;
  /** Default this machine's (`"amd64"` or `"arm64"`). */
  architecture?: string;
  /** `"v8"`...; default any. */
  variant?: string;
}

/**
 * This machine's architecture, as OCI names it.
 *
 * @example Check the architecture
 * ```ts
 * import { hostArchitecture } from "denobox/image";
 * console.log(["amd64", "arm64"].includes(hostArchitecture())); // true
 * ```
 */
export function hostArchitecture(): string {
  return Deno.build.arch === "aarch64" ? "arm64" : "amd64";
}

/**
 * Picks the manifest for a platform from an image index / manifest list.
 *
 * @example Pick arm64 from an index
 * ```ts
 * import { selectPlatform } from "denobox/image";
 * const d = selectPlatform([
 *   { mediaType: "m", digest: "sha256:a", size: 1, platform: { os: "linux", architecture: "arm64" } },
 *   { mediaType: "m", digest: "sha256:b", size: 1, platform: { os: "linux", architecture: "amd64" } },
 * ], { architecture: "arm64" });
 * console.log(d.digest); // sha256:a
 * ```
 */
export function selectPlatform(
  manifests: readonly Descriptor[],
  wanted: PlatformWanted = {},
): Descriptor {
  const os = wanted.os ?? "linux";
  const arch = wanted.architecture ?? hostArchitecture();
  const hits = manifests.filter((m) =>
    m.platform?.os === os && m.platform.architecture === arch &&
    (wanted.variant === undefined || m.platform.variant === wanted.variant)
  );
  const hit = hits[0];
  if (hit === undefined) {
    const have = manifests.map((m) =>
      m.platform
        ? `${m.platform.os}/${m.platform.architecture}${
          m.platform.variant ? `/${m.platform.variant}` : ""
        }`
        : "unknown"
    );
    throw new Error(
      `Cannot find an image for ${os}/${arch}: the index has ${
        have.join(", ") || "no manifests"
      }`,
    );
  }
  return hit;
}
