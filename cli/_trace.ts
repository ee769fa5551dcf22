/**
 * `DENOBOX_TRACE=1`: prints the milliseconds since process start, and since the previous mark
 * (the spawn engine's included: both are performance marks), at named points on stderr
 * (start-up cost work).
 * @module
 */
const on = Deno.env.get("DENOBOX_TRACE") === "1";

/** Marks a point. */
export function trace(label: string): void {
  if (!on) return;
  const marks = performance.getEntriesByType("mark");
  const prev = marks[marks.length - 1]?.startTime ?? 0;
  const now = performance.mark(`denobox:${label}`).startTime;
  Deno.stderr.writeSync(
    new TextEncoder().encode(
      `[trace] ${now.toFixed(1).padStart(6)} ms  +${
        (now - prev).toFixed(2).padStart(5)
      }  ${label}\n`,
    ),
  );
}
