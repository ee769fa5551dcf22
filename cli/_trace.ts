/**
 * `DENOBOX_TRACE=1`: prints the milliseconds since process start at named points (start-up
 * cost work), on stderr.
 * @module
 */
const on = Deno.env.get("DENOBOX_TRACE") === "1";

/** Marks a point. */
export function trace(label: string): void {
  if (on) console.error(`[trace] ${performance.now().toFixed(1)} ms ${label}`);
}
