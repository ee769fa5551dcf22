/**
 * Container IDs (64 hex digits, like Docker's) and generated names (`brave_otter`).
 * @module
 */

/** A fresh random 64-hex-digit ID. */
export function newId(): string {
  const b = crypto.getRandomValues(new Uint8Array(32));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
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
  const r = crypto.getRandomValues(new Uint32Array(2));
  return `${ADJECTIVES[r[0]! % ADJECTIVES.length]}_${
    NOUNS[r[1]! % NOUNS.length]
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
