/**
 * Address allocation for a bridge subnet. The leases live in a small JSON file
 * (`<stateDir>/<name>.json`), changed only under an exclusive flock(2) on `<name>.lock` and,
 * inside one process, one change at a time, so concurrent processes never hand out one
 * address twice. Each lease names its owner by pid and start time (from /proc/PID/stat, so a
 * recycled pid is no owner); leases whose owner is gone are reclaimed by the next change.
 * @module
 */
import { join } from "node:path";
import {
  type Cidr,
  contains,
  formatCidr,
  formatIp,
  ipv4ToNumber,
  networkOf,
  numberToIpv4,
  parseCidr,
  parseIp,
} from "./cidr.ts";
import type { PortMapping } from "./ports.ts";

/** The default state directory. */
export const DEFAULT_STATE_DIR = "/run/denobox/net";

/** A process that owns a lease. */
export interface LeaseOwner {
  /** Its pid (in the caller's pid namespace). */
  pid: number;
  /** Its start time in clock ticks since boot (/proc/PID/stat field 22). */
  start: number;
}

/** One lease in the state file. */
export interface LeaseRecord {
  /** The leased address. */
  address: string;
  /** Who holds it. */
  owner: LeaseOwner;
  /** The host end of its veth pair, when `networkSetup` made one. */
  hostIf?: string;
  /** Published ports. */
  ports?: (string | PortMapping)[];
  /** Outbound NAT wanted. */
  nat?: boolean;
}

/** The state file's content. */
export interface PoolState {
  /** Format version, so a later format is refused instead of misread. */
  version: 1;
  /** The subnet, canonical (`10.88.0.0/16`). */
  subnet: string;
  /** The last address handed out, as a number (allocation continues after it). */
  last: number;
  /** Whether `networkSetup` created the bridge (and so removes it with the last lease). */
  createdBridge: boolean;
  /** The nft script last applied for this bridge ("" when none). */
  applied: string;
  /** Live leases. */
  leases: LeaseRecord[];
}

/** Options of `AddressPool.open()`. */
export interface PoolOptions {
  /** The subnet to allocate from (IPv4, /8 to /30). The first host address is the gateway. */
  subnet: string;
  /** Pool name, usually the bridge name: names the state and lock files. */
  name: string;
  /** Where the state lives (default `/run/denobox/net`). */
  stateDir?: string;
}

/** The start time of a live process, or null when it is gone (or a zombie). */
export function processStart(pid: number): number | null {
  let stat: string;
  try {
    stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  } catch {
    return null;
  }
  // The command name (field 2) is in parentheses and may hold spaces or parentheses itself.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  if (fields[0] === "Z" || fields[0] === "X") return null;
  const start = Number(fields[19]);
  return Number.isFinite(start) ? start : null;
}

/** Describes a live process as a lease owner. */
export function ownerOf(pid: number): LeaseOwner {
  if (!Number.isInteger(pid) || pid <= 0) {
    throw new RangeError(`Invalid owner pid: ${pid}`);
  }
  const start = processStart(pid);
  if (start === null) {
    throw new Error(`Cannot lease an address: process ${pid} is not running`);
  }
  return { pid, start };
}

/** Whether the owner is still the same live process. */
export function ownerAlive(owner: LeaseOwner): boolean {
  return processStart(owner.pid) === owner.start;
}

// One change at a time per state file inside this process; flock orders processes.
const queues = new Map<string, Promise<unknown>>();

/** A leased address, released by `release()` or disposal. */
export interface Lease extends AsyncDisposable {
  /** The address (`10.88.0.2`). */
  readonly address: string;
  /** `address/prefix` (`10.88.0.2/16`). */
  readonly cidr: string;
  /** The gateway (the subnet's first host address). */
  readonly gateway: string;
  /** Gives the address back. Idempotent. */
  release(): Promise<void>;
}

/**
 * A subnet's addresses, shared through a state directory.
 *
 * @example Lease an address for a process
 * ```ts
 * import { AddressPool } from "denobox/net";
 * const dir = Deno.makeTempDirSync();
 * const pool = AddressPool.open({ subnet: "10.99.0.0/24", name: "doc", stateDir: dir });
 * {
 *   await using lease = await pool.lease(Deno.pid);
 *   console.log(lease.cidr, lease.gateway); // 10.99.0.2/24 10.99.0.1
 * }
 * Deno.removeSync(dir, { recursive: true });
 * ```
 */
export class AddressPool {
  /** The subnet (network address). */
  readonly subnet: Cidr;
  /** The gateway address: the subnet's first host address. */
  readonly gateway: string;
  /** The state file. */
  readonly statePath: string;
  /** The lock file. */
  readonly lockPath: string;
  readonly #dir: string;
  readonly #first: number;
  readonly #lastHost: number;

  private constructor(subnet: Cidr, dir: string, name: string) {
    this.subnet = subnet;
    this.#dir = dir;
    this.statePath = join(dir, `${name}.json`);
    this.lockPath = join(dir, `${name}.lock`);
    const base = ipv4ToNumber(subnet);
    const size = 2 ** (32 - subnet.prefixLength);
    this.gateway = formatIp(numberToIpv4(base + 1));
    this.#first = base + 2;
    this.#lastHost = base + size - 2;
  }

  /**
   * Checks the options (`RangeError` for a bad subnet or name) and returns the pool; touches
   * nothing on disk until the first change.
   */
  static open(options: PoolOptions): AddressPool {
    const c = parseCidr(options.subnet, { requirePrefix: true });
    if (c.family !== 4 || c.prefixLength < 8 || c.prefixLength > 30) {
      throw new RangeError(
        `Invalid subnet: ${options.subnet} (an IPv4 prefix from /8 to /30, like 10.88.0.0/16)`,
      );
    }
    if (
      typeof options.name !== "string" ||
      !/^[A-Za-z0-9_.-]{1,64}$/.test(options.name)
    ) {
      throw new RangeError(
        `Invalid pool name: ${JSON.stringify(options.name)}`,
      );
    }
    const dir = options.stateDir ?? DEFAULT_STATE_DIR;
    if (typeof dir !== "string" || dir === "") {
      throw new TypeError("Invalid state directory: expected a path");
    }
    return new AddressPool(networkOf(c), dir, options.name);
  }

  /** The subnet as text (`10.88.0.0/16`). */
  get subnetText(): string {
    return formatCidr(this.subnet);
  }

  #empty(): PoolState {
    return {
      version: 1,
      subnet: this.subnetText,
      last: this.#first - 1,
      createdBridge: false,
      applied: "",
      leases: [],
    };
  }

  async #read(): Promise<PoolState> {
    let text: string;
    try {
      text = await Deno.readTextFile(this.statePath);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return this.#empty();
      throw e;
    }
    const s = JSON.parse(text) as PoolState;
    if (s.version !== 1 || !Array.isArray(s.leases)) {
      throw new Error(
        `Cannot read address pool ${this.statePath}: unknown format`,
      );
    }
    if (s.subnet !== this.subnetText) {
      throw new RangeError(
        `Cannot use subnet ${this.subnetText}: the pool ${this.statePath} is for ${s.subnet}`,
      );
    }
    return s;
  }

  #write(s: PoolState): void {
    const tmp = `${this.statePath}.tmp-${Deno.pid}`;
    Deno.writeTextFileSync(tmp, JSON.stringify(s, null, 1) + "\n", {
      mode: 0o600,
    });
    Deno.renameSync(tmp, this.statePath);
  }

  /**
   * Runs `fn` on the current state under the lock, with leases of dead owners removed first
   * (they are passed as `reclaimed`). What `fn` leaves in the state is written back, unless it
   * throws. A state with no leases and nothing else to remember removes the file.
   */
  async transaction<T>(
    fn: (state: PoolState, reclaimed: LeaseRecord[]) => T | Promise<T>,
  ): Promise<T> {
    const prev = queues.get(this.statePath) ?? Promise.resolve();
    const run = prev.catch(() => {}).then(async () => {
      await Deno.mkdir(this.#dir, { recursive: true, mode: 0o700 });
      const lock = await Deno.open(this.lockPath, {
        read: true,
        write: true,
        create: true,
        mode: 0o600,
      });
      try {
        await lock.lock(true);
        const state = await this.#read();
        const reclaimed = state.leases.filter((l) => !ownerAlive(l.owner));
        state.leases = state.leases.filter((l) => !reclaimed.includes(l));
        const result = await fn(state, reclaimed);
        if (
          state.leases.length === 0 && !state.createdBridge &&
          state.applied === ""
        ) {
          await Deno.remove(this.statePath).catch((e) => {
            if (!(e instanceof Deno.errors.NotFound)) throw e;
          });
        } else {
          await this.#write(state);
        }
        return result;
      } finally {
        lock.close();
      }
    });
    queues.set(this.statePath, run);
    try {
      return await run;
    } finally {
      if (queues.get(this.statePath) === run) queues.delete(this.statePath);
    }
  }

  /**
   * Picks a free address in `state` for `owner` and records the lease (call inside
   * `transaction`). A requested `ip` must be a free host address of the subnet.
   */
  allocate(
    state: PoolState,
    owner: LeaseOwner,
    options: { ip?: string; extra?: Omit<LeaseRecord, "address" | "owner"> } =
      {},
  ): LeaseRecord {
    const taken = new Set(state.leases.map((l) => l.address));
    let address: string | undefined;
    if (options.ip !== undefined) {
      const want = parseIp(options.ip);
      const n = want.family === 4 ? ipv4ToNumber(want) : -1;
      if (
        !contains(this.subnet, want) || n < this.#first || n > this.#lastHost
      ) {
        throw new RangeError(
          `Invalid address ${options.ip}: not a host address of ${this.subnetText} other than the gateway ${this.gateway}`,
        );
      }
      address = formatIp(want);
      const holder = state.leases.find((l) => l.address === address);
      if (holder) {
        throw new Error(
          `Cannot allocate ${address}: it is leased to process ${holder.owner.pid}`,
        );
      }
    } else {
      const span = this.#lastHost - this.#first + 1;
      for (let i = 1; i <= span; i++) {
        const n = this.#first +
          ((state.last - this.#first + i) % span + span) % span;
        const text = formatIp(numberToIpv4(n));
        if (!taken.has(text)) {
          address = text;
          state.last = n;
          break;
        }
      }
      if (address === undefined) {
        throw new Error(
          `Cannot allocate an address: subnet ${this.subnetText} is full`,
        );
      }
    }
    const rec: LeaseRecord = { ...options.extra, address, owner };
    state.leases.push(rec);
    return rec;
  }

  /**
   * Leases an address to process `pid` (default: this process) until `release()`, disposal,
   * or the process's end.
   */
  async lease(
    pid: number = Deno.pid,
    options: { ip?: string } = {},
  ): Promise<Lease> {
    const owner = ownerOf(pid);
    const rec = await this.transaction((s) =>
      this.allocate(
        s,
        owner,
        options.ip === undefined ? {} : { ip: options.ip },
      )
    );
    let released = false;
    const release = async () => {
      if (released) return;
      released = true;
      await this.release(rec.address, owner);
    };
    return {
      address: rec.address,
      cidr: `${rec.address}/${this.subnet.prefixLength}`,
      gateway: this.gateway,
      release,
      [Symbol.asyncDispose]: release,
    };
  }

  /** Removes the lease of `address` held by `owner` (no-op when it is not held by it). */
  async release(address: string, owner: LeaseOwner): Promise<void> {
    await this.transaction((s) => {
      s.leases = s.leases.filter((l) =>
        !(l.address === address && l.owner.pid === owner.pid &&
          l.owner.start === owner.start)
      );
    });
  }

  /** The live leases. */
  async leases(): Promise<LeaseRecord[]> {
    return await this.transaction((s) => s.leases.map((l) => ({ ...l })));
  }
}
