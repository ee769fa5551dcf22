/**
 * The OCI image manifest for a stored config blob and stored layers.
 * @module
 */
import { type Descriptor, type Manifest, MediaType } from "./types.ts";

/**
 * An OCI manifest naming config blob `config` and `layers` (bottom first); each descriptor
 * keeps only its media type, digest and size.
 */
export function ociManifest(
  config: Descriptor,
  layers: readonly Descriptor[],
  annotations?: Record<string, string>,
): Manifest {
  return {
    schemaVersion: 2,
    mediaType: MediaType.OCI_MANIFEST,
    config: {
      mediaType: MediaType.OCI_CONFIG,
      digest: config.digest,
      size: config.size,
    },
    layers: layers.map((l) => ({
      mediaType: l.mediaType,
      digest: l.digest,
      size: l.size,
    })),
    ...(annotations ? { annotations } : {}),
  };
}
