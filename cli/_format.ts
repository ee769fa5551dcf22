/**
 * Output helpers: Docker-style tables, human durations and sizes, the status column.
 * @module
 */
import type { ContainerInfo } from "./_store.ts";
import { Signal } from "denobox/libc/constants";

/** Left-aligned columns separated by three spaces, as `docker ps` prints them. */
export function table(
  header: readonly string[],
  rows: readonly (readonly string[])[],
): string {
  const widths = header.map((h, i) =>
    Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length))
  );
  const line = (r: readonly string[]) =>
    r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join("   ")
      .trimEnd();
  return [line(header), ...rows.map(line)].join("\n");
}

/** "3 seconds", "About a minute", "2 hours": Docker's human duration. */
export function humanDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 1) return "Less than a second";
  if (s === 1) return "1 second";
  if (s < 60) return `${s} seconds`;
  const m = Math.round(s / 60);
  if (m === 1) return "About a minute";
  if (m < 60) return `${m} minutes`;
  const h = Math.round(s / 3600);
  if (h === 1) return "About an hour";
  if (h < 48) return `${h} hours`;
  const d = Math.round(s / 86400);
  if (d < 14) return `${d} days`;
  if (d < 60) return `${Math.round(d / 7)} weeks`;
  if (d < 730) return `${Math.round(d / 30)} months`;
  return `${Math.round(d / 365)} years`;
}

/** Bytes as "1.5MiB", "512B". */
export function humanSize(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? n : n.toFixed(n < 10 ? 2 : 1)}${units[i]}`;
}

/** The STATUS column: "Up 5 seconds", "Exited (0) 2 minutes ago", "Created". */
export function statusText(c: ContainerInfo, now = Date.now()): string {
  const s = c.state;
  switch (c.status) {
    case "created":
      return "Created";
    case "running":
    case "paused":
      return `Up ${
        humanDuration(now - Date.parse(s.startedAt ?? c.config.created))
      }` +
        (c.status === "paused" ? " (Paused)" : "");
    case "removing":
      return "Removal In Progress";
    case "exited": {
      const code = s.exitCode ?? (s.signal ? 128 + signalNo(s.signal) : null);
      const ago = s.finishedAt
        ? ` ${humanDuration(now - Date.parse(s.finishedAt))} ago`
        : "";
      return `Exited (${code === null ? "unknown" : code})${ago}`;
    }
  }
}

// The kernel's table, from the pure constants file (no FFI is loaded for `ps`, `logs`...).
const SIGNALS: Readonly<Record<string, number>> = Signal;

/** A signal's number from its name (`"SIGTERM"` or `"TERM"`) or number text; null when unknown. */
export function signalNo(sig: string): number {
  if (/^\d+$/.test(sig)) return Number(sig);
  const name = sig.toUpperCase().startsWith("SIG")
    ? sig.toUpperCase()
    : `SIG${sig.toUpperCase()}`;
  return SIGNALS[name] ?? NaN;
}

/** A signal's name from its number (`15` → `"SIGTERM"`). */
export function signalName(n: number): string | undefined {
  return Object.keys(SIGNALS).find((k) => SIGNALS[k] === n);
}

/** The exit status a shell would report for a container's end (code, or 128 + signal). */
export function exitStatusOf(
  s: { exitCode: number | null; signal: string | null },
): number | null {
  if (s.exitCode !== null) return s.exitCode;
  if (s.signal) return 128 + signalNo(s.signal);
  return null;
}

/** The command as one string, shell-quoted where needed. */
export function commandText(argv: readonly string[]): string {
  return argv.map((
    a,
  ) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`))
    .join(" ");
}
