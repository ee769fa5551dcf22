/**
 * Reading the generated tables of `_tables.ts`: each is a JSON object in a string, one
 * `"name": number` a line. A string is cheap to load. An errno name or number (wanted only
 * when a call fails) is found by searching the text; a syscall table is built whole, by
 * `JSON.parse` (measured: about 0.1 ms for 360 names, a third of a loop's cost), the first
 * time its architecture is used.
 * @module
 */

/** A table's name → number object. */
export function parseTable(text: string): Record<string, number> {
  return JSON.parse(text);
}

/** The name whose number is `n` in the table `text`, or undefined. Builds nothing. */
export function nameOf(text: string, n: number): string | undefined {
  let at = text.indexOf(`": ${n},\n`);
  if (at < 0) at = text.indexOf(`": ${n}\n`);
  if (at < 0) return undefined;
  return text.slice(text.lastIndexOf('\n"', at) + 2, at);
}

/** The number of `name` in the table `text`, or undefined. Builds nothing. */
export function numberOf(text: string, name: string): number | undefined {
  // a quote or a newline in `name` could match across lines
  if (name.includes('"') || name.includes("\n")) return undefined;
  const key = `\n"${name}": `;
  const at = text.indexOf(key);
  if (at < 0) return undefined;
  return parseInt(text.slice(at + key.length, text.indexOf("\n", at + 1)), 10);
}
