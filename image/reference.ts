/** A parsed image reference: `[registry/]repository[:tag][@digest]`. */
export interface ImageReference {
  /** `host[:port]`, when the first component names one (has a `.` or `:`, or is localhost). */
  registry?: string;
  /** Repository path (`library/busybox`). */
  repository: string;
  /** Tag, when given. */
  tag?: string;
  /** `sha256:<hex>`, when given. */
  digest?: string;
}

const REPO_PART = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^sha256:[a-f0-9]{64}$/;

/**
 * Parses an image reference. Unlike Docker there is no default registry: a reference without
 * one names a local image (`busybox:latest`); pull and push need `host[:port]/repo`.
 *
 * @example Parse a registry reference
 * ```ts
 * import { parseReference } from "denobox/image";
 * console.log(parseReference("127.0.0.1:5000/tools/busybox:1.36"));
 * // { registry: "127.0.0.1:5000", repository: "tools/busybox", tag: "1.36" }
 * ```
 */
export function parseReference(ref: string): ImageReference {
  let rest = ref;
  const out: ImageReference = { repository: "" };
  const at = rest.indexOf("@");
  if (at >= 0) {
    const digest = rest.slice(at + 1);
    if (!DIGEST.test(digest)) {
      throw new TypeError(`Invalid image reference: bad digest in ${ref}`);
    }
    out.digest = digest;
    rest = rest.slice(0, at);
  }
  const slash = rest.indexOf("/");
  if (slash > 0) {
    const first = rest.slice(0, slash);
    if (first.includes(".") || first.includes(":") || first === "localhost") {
      out.registry = first;
      rest = rest.slice(slash + 1);
    }
  }
  const colon = rest.lastIndexOf(":");
  if (colon >= 0) {
    const tag = rest.slice(colon + 1);
    if (!TAG.test(tag)) {
      throw new TypeError(`Invalid image reference: bad tag in ${ref}`);
    }
    out.tag = tag;
    rest = rest.slice(0, colon);
  }
  if (rest === "" || !rest.split("/").every((p) => REPO_PART.test(p))) {
    throw new TypeError(
      `Invalid image reference: bad repository name in ${ref}`,
    );
  }
  out.repository = rest;
  const result: ImageReference = {
    ...(out.registry !== undefined ? { registry: out.registry } : {}),
    repository: out.repository,
    ...(out.tag !== undefined ? { tag: out.tag } : {}),
    ...(out.digest !== undefined ? { digest: out.digest } : {}),
  };
  return result;
}

/**
 * The canonical `name:tag` string of a reference (tag `latest` when neither tag nor digest
 * is given; `name@digest` for a digest-only reference).
 *
 * @example Canonical name
 * ```ts
 * import { formatReference, parseReference } from "denobox/image";
 * console.log(formatReference(parseReference("busybox"))); // busybox:latest
 * ```
 */
export function formatReference(ref: ImageReference): string {
  const name = ref.registry
    ? `${ref.registry}/${ref.repository}`
    : ref.repository;
  if (ref.tag === undefined && ref.digest !== undefined) {
    return `${name}@${ref.digest}`;
  }
  return `${name}:${ref.tag ?? "latest"}`;
}
