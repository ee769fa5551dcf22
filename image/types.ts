/**
 * OCI image-spec shapes (with the Docker schema 2 equivalents) and their media types.
 * @module
 */

/**
 * Media types the image code reads and writes.
 *
 * @example Compare a media type
 * ```ts
 * import { MediaType } from "denobox/image";
 * console.log(MediaType.OCI_MANIFEST); // application/vnd.oci.image.manifest.v1+json
 * ```
 */
export const MediaType = {
  OCI_MANIFEST: "application/vnd.oci.image.manifest.v1+json",
  OCI_INDEX: "application/vnd.oci.image.index.v1+json",
  OCI_CONFIG: "application/vnd.oci.image.config.v1+json",
  OCI_LAYER: "application/vnd.oci.image.layer.v1.tar",
  OCI_LAYER_GZIP: "application/vnd.oci.image.layer.v1.tar+gzip",
  OCI_LAYER_ZSTD: "application/vnd.oci.image.layer.v1.tar+zstd",
  DOCKER_MANIFEST: "application/vnd.docker.distribution.manifest.v2+json",
  DOCKER_LIST: "application/vnd.docker.distribution.manifest.list.v2+json",
  DOCKER_CONFIG: "application/vnd.docker.container.image.v1+json",
  DOCKER_LAYER: "application/vnd.docker.image.rootfs.diff.tar",
  DOCKER_LAYER_GZIP: "application/vnd.docker.image.rootfs.diff.tar.gzip",
} as const;

/** A content descriptor. */
export interface Descriptor {
  /** Media type of the referenced content. */
  mediaType: string;
  /** `sha256:<hex>`. */
  digest: string;
  /** Size in bytes. */
  size: number;
  /** Platform of an index entry. */
  platform?: Platform;
  /** Annotations (`org.opencontainers.image.ref.name`...). */
  annotations?: Record<string, string>;
}

/** An image's platform. */
export interface Platform {
  /** `"amd64"`, `"arm64"`... */
  architecture: string;
  /** `"linux"`. */
  os: string;
  /** `"v8"`... */
  variant?: string;
}

/** An image manifest (OCI or Docker schema 2; same shape). */
export interface Manifest {
  /** Always 2. */
  schemaVersion: number;
  /** Present in Docker manifests, optional in OCI ones. */
  mediaType?: string;
  /** The config blob. */
  config: Descriptor;
  /** Layer blobs, bottom first. */
  layers: Descriptor[];
  /** Annotations. */
  annotations?: Record<string, string>;
}

/** An image index / manifest list. */
export interface ImageIndex {
  /** Always 2. */
  schemaVersion: number;
  /** Media type. */
  mediaType?: string;
  /** Per-platform manifests. */
  manifests: Descriptor[];
  /** Annotations. */
  annotations?: Record<string, string>;
}

/** The runtime part of an image config. */
export interface ContainerConfig {
  /** `USER`. */
  User?: string;
  /** `ENV`, as `KEY=value`. */
  Env?: string[];
  /** `ENTRYPOINT`. */
  Entrypoint?: string[] | null;
  /** `CMD`. */
  Cmd?: string[] | null;
  /** `WORKDIR`. */
  WorkingDir?: string;
  /** `LABEL`. */
  Labels?: Record<string, string>;
  /** `EXPOSE`. */
  ExposedPorts?: Record<string, Record<string, never>>;
  /** `STOPSIGNAL`. */
  StopSignal?: string;
}

/** One history record of an image config. */
export interface HistoryEntry {
  /** RFC 3339 time. */
  created?: string;
  /** The instruction that made it. */
  created_by?: string;
  /** A note. */
  comment?: string;
  /** True when the step made no layer. */
  empty_layer?: boolean;
}

/** An image config (OCI image-spec `config.json`). */
export interface ImageConfig {
  /** RFC 3339 time. */
  created?: string;
  /** CPU architecture. */
  architecture: string;
  /** Operating system. */
  os: string;
  /** Architecture variant. */
  variant?: string;
  /** What a container runs with. */
  config?: ContainerConfig;
  /** The layers' uncompressed digests, bottom first. */
  rootfs: { type: "layers"; diff_ids: string[] };
  /** One record per build step. */
  history?: HistoryEntry[];
}
