/**
 * Where denobox keeps its state, daemonless like Podman: persistent storage (containers'
 * configs, logs, exit status, images) and a runtime directory (mount points, which vanish
 * with a reboot).
 *
 * - root: `/var/lib/denobox` and `/run/denobox`
 * - rootless: `~/.local/share/denobox` and `$XDG_RUNTIME_DIR/denobox` (or `/tmp/denobox-UID`)
 * - `--root DIR` or `DENOBOX_ROOT=DIR`: `DIR` and `DIR/run` (tests, several stores side by side)
 * @module
 */
import { join } from "./_path.ts";

/** The directories of one store. */
export interface StorePaths {
  /** Persistent state: `containers/`, `names/`, `images/`. */
  lib: string;
  /** Runtime state: mount points. */
  run: string;
  /** Whether this process is unprivileged. */
  rootless: boolean;
}

/** The store for `--root` (or `DENOBOX_ROOT`, or the defaults for this user). */
export function storePaths(root?: string): StorePaths {
  const rootless = Deno.uid() !== 0;
  const explicit = root ?? Deno.env.get("DENOBOX_ROOT");
  if (explicit) {
    const lib = explicit.startsWith("/")
      ? explicit
      : join(Deno.cwd(), explicit);
    return { lib, run: join(lib, "run"), rootless };
  }
  if (!rootless) {
    return { lib: "/var/lib/denobox", run: "/run/denobox", rootless };
  }
  const home = Deno.env.get("HOME") ?? "/tmp";
  const data = Deno.env.get("XDG_DATA_HOME") ?? join(home, ".local", "share");
  const runtime = Deno.env.get("XDG_RUNTIME_DIR") ??
    `/tmp/denobox-${Deno.uid()}`;
  return {
    lib: join(data, "denobox"),
    run: join(runtime, "denobox"),
    rootless,
  };
}
