/**
 * The link from a public `Cgroup` handle to its driver, shared by the functions of this folder
 * (and by unit tests, which wrap a driver over a temp dir in a handle).
 * @module
 */
import type { Driver } from "./_driver.ts";

const DRIVERS = new WeakMap<object, Driver>();

/** Records the driver behind a handle (called by the `Cgroup` constructor). */
export function register(handle: object, driver: Driver): void {
  DRIVERS.set(handle, driver);
}

/** The driver behind a handle; a `TypeError` for anything that is not a `Cgroup`. */
export function driverOf(handle: unknown): Driver {
  const d = typeof handle === "object" && handle !== null
    ? DRIVERS.get(handle)
    : undefined;
  if (d === undefined) {
    throw new TypeError(
      "Invalid cgroup: expected a Cgroup from Cgroup.create() or Cgroup.open()",
    );
  }
  return d;
}
