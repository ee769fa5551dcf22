/**
 * `DENOBOX_TRACE=1` (with env permission): named start-up spans of the spawn engine on stderr,
 * as milliseconds since process start and since the previous mark (the process's performance
 * marks, so the CLI's own marks count too). Off, a mark costs one branch.
 * @module
 */
let on = false;
try {
  on = Deno.permissions.querySync({ name: "env", variable: "DENOBOX_TRACE" })
        .state === "granted" && Deno.env.get("DENOBOX_TRACE") === "1";
} catch { /* no permission API: off */ }

/** Whether tracing is on. */
export const TRACING: boolean = on;

/** Marks the end of a span named `label`. */
export function mark(label: string): void {
  if (on) traceLine(label);
}

function traceLine(label: string): void {
  const marks = performance.getEntriesByType("mark");
  const prev = marks[marks.length - 1]?.startTime ?? 0;
  const now = performance.mark(`denobox:${label}`).startTime;
  const line = `[trace] ${now.toFixed(1).padStart(6)} ms  +${
    (now - prev).toFixed(2).padStart(5)
  }  ${label}\n`;
  try {
    Deno.stderr.writeSync(new TextEncoder().encode(line));
  } catch { /* stderr closed */ }
}
