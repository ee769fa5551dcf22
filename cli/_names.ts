/**
 * Container IDs (64 hex digits, like Docker's) and generated names (`brave_otter`).
 * @module
 */

/**
 * `n` random bytes from the kernel. /dev/urandom is read directly: the first use of Web
 * Crypto in a process costs about 0.1 ms more (it sets up its whole object), on the start path
 * of every `run`. Web Crypto where there is no /dev/urandom (a bare chroot).
 */
function randomBytes(n: number): Uint8Array {
  const b = new Uint8Array(n);
  try {
    const f = Deno.openSync("/dev/urandom");
    try {
      let off = 0;
      while (off < n) {
        const got = f.readSync(b.subarray(off));
        if (!got) throw new Error("short read");
        off += got;
      }
      return b;
    } finally {
      f.close();
    }
  } catch {
    return crypto.getRandomValues(b);
  }
}

/** A fresh random 64-hex-digit ID. */
export function newId(): string {
  return Array.from(randomBytes(32), (x) => x.toString(16).padStart(2, "0"))
    .join("");
}

const ADJECTIVES = [
  "amber",
  "bold",
  "brave",
  "brisk",
  "calm",
  "clever",
  "cosmic",
  "crisp",
  "daring",
  "eager",
  "fancy",
  "gentle",
  "glad",
  "golden",
  "happy",
  "hardy",
  "jolly",
  "keen",
  "kind",
  "lively",
  "lucid",
  "merry",
  "mighty",
  "nimble",
  "noble",
  "plucky",
  "proud",
  "quick",
  "quiet",
  "rapid",
  "shiny",
  "silent",
  "snug",
  "sober",
  "steady",
  "sunny",
  "swift",
  "tidy",
  "vivid",
  "witty",
] as const;

const NOUNS = [
  "badger",
  "beaver",
  "bison",
  "condor",
  "cougar",
  "crane",
  "dingo",
  "dolphin",
  "falcon",
  "ferret",
  "gecko",
  "heron",
  "ibex",
  "jackal",
  "koala",
  "lemur",
  "lynx",
  "marmot",
  "mole",
  "narwhal",
  "ocelot",
  "orca",
  "otter",
  "panda",
  "puffin",
  "quokka",
  "raven",
  "salmon",
  "seal",
  "stoat",
  "tapir",
  "toucan",
  "urchin",
  "vole",
  "walrus",
  "weasel",
  "wombat",
  "yak",
  "zebra",
] as const;

/** A random `adjective_noun` name; after a collision, callers add a number. */
export function generateName(): string {
  const r = new DataView(randomBytes(4).buffer);
  return `${ADJECTIVES[r.getUint16(0) % ADJECTIVES.length]}_${
    NOUNS[r.getUint16(2) % NOUNS.length]
  }`;
}

/** Docker's rule for container names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`. */
export const NAME_RE: RegExp = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/** Throws a `RangeError` naming the rule when `name` is not a valid container name. */
export function checkName(name: string): void {
  if (!NAME_RE.test(name) || name.length > 128) {
    throw new RangeError(
      `Invalid container name ${
        JSON.stringify(name)
      }: use letters, digits, '_', '.', '-' ` +
        "(starting with a letter or digit), at most 128 characters",
    );
  }
}

/** The short (12-digit) form of an ID. */
export const shortId = (id: string): string => id.slice(0, 12);
