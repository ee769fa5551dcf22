const UNITS: Readonly<Record<string, number>> = {
  "": 1,
  b: 1,
  k: 1024,
  kb: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1024 ** 3,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tb: 1024 ** 4,
  tib: 1024 ** 4,
};

/**
 * A size in bytes from a number or a string such as `"64m"`, `"1.5G"`, `"512KiB"`, `"4096"`.
 * Units are binary (k = 1024) and case-insensitive, as Docker and the kernel's own memparse
 * read them; a fractional size is rounded down to whole bytes. Anything else (negative,
 * non-integer numbers, unknown units, empty strings) is a `RangeError` naming the value.
 *
 * @example Parse sizes
 * ```ts
 * import { parseSize } from "denobox/cgroup";
 * console.log(parseSize("64m"), parseSize("1.5G"), parseSize(4096));
 * // 67108864 1610612736 4096
 * ```
 */
export function parseSize(s: number | string): number {
  if (typeof s === "number") {
    if (!Number.isSafeInteger(s) || s < 0) {
      throw new RangeError(
        `Invalid size: ${s} (expected a whole number of bytes >= 0)`,
      );
    }
    return s;
  }
  if (typeof s !== "string") {
    throw new RangeError(
      `Invalid size: ${String(s)} (expected a number or a string like "64m")`,
    );
  }
  const m = /^(\d+(?:\.\d+)?)([a-z]*)$/i.exec(s);
  const unit = m ? UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) {
    throw new RangeError(
      `Invalid size: ${
        JSON.stringify(s)
      } (expected bytes or a number with k, m, g or t)`,
    );
  }
  const bytes = Math.floor(Number(m[1]) * unit);
  if (!Number.isSafeInteger(bytes)) {
    throw new RangeError(`Invalid size: ${JSON.stringify(s)} (too large)`);
  }
  return bytes;
}

/** A size or `"max"`/`Infinity` (no limit); `what` names the setting in the error. */
export function parseLimit(s: number | string, what: string): number {
  if (s === "max" || s === Infinity) return Infinity;
  try {
    return parseSize(s);
  } catch (e) {
    if (e instanceof RangeError) {
      throw new RangeError(
        `Invalid ${what}: ${
          typeof s === "string" ? JSON.stringify(s) : s
        } (expected bytes, a size like "64m", or "max")`,
      );
    }
    throw e;
  }
}
