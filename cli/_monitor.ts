/**
 * The per-container monitor: `denobox __monitor ID LIB RUN`, started detached by `run -d` and
 * `start`. It owns the sandbox (through `runAsOwner`), keeps its logs and exit status, and
 * reports one JSON line on its stdout to the launcher once the container runs (or why it
 * could not start), then closes it. If the monitor dies, the kernel releases its monitor lock
 * and the container (its child, with a parent-death signal) dies with it: the next `ps`
 * records it as exited with an unknown status.
 * @module
 */
import type { StorePaths } from "./_paths.ts";
import { Store } from "./_store.ts";
import { CliError, Exit } from "./_errors.ts";
import { runAsOwner } from "./_runtime.ts";

interface Report {
  ok: boolean;
  pid?: number;
  message?: string;
  code?: number;
}

const enc = new TextEncoder();

function report(r: Report): void {
  try {
    Deno.stdout.writeSync(enc.encode(JSON.stringify(r) + "\n"));
    Deno.stdout.close();
  } catch { /* the launcher is gone */ }
}

/** The hidden `__monitor` mode. */
export async function monitorMain(
  _paths: StorePaths,
  args: readonly string[],
): Promise<number> {
  const [id, lib, run] = args;
  if (!id || !lib || !run) {
    console.error("Error: __monitor is internal: denobox __monitor ID LIB RUN");
    return Exit.FAILED;
  }
  // No terminal, no hangup: only the container's end (or a kill) ends the monitor.
  for (const sig of ["SIGHUP", "SIGINT"] as const) {
    Deno.addSignalListener(sig, () => {});
  }
  const store = new Store({ lib, run, rootless: Deno.uid() !== 0 });
  let reported = false;
  try {
    const { status } = await runAsOwner(store, id, {
      foreground: false,
      stdin: false,
      onStarted: (pid) => {
        reported = true;
        report({ ok: true, pid });
      },
    });
    return status;
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    const code = e instanceof CliError ? e.exitCode : Exit.FAILED;
    if (!reported) report({ ok: false, message, code });
    return code;
  }
}

/** The command line that runs this CLI again (script or compiled binary). */
function selfCommand(): string[] {
  if (import.meta.url.includes("/deno-compile-")) return [];
  // the launcher's flags: V8 keeps a code cache only for the flags that made it, so a
  // monitor run with other flags would throw away the cache of every CLI command after it
  const flags = [
    "run",
    "-A",
    "--no-check",
    "--quiet",
    "--no-lock",
    "--v8-flags=--no-lazy",
  ];
  // the launcher's bundle: run the same entry file again
  if (Deno.mainModule.endsWith(".js")) {
    // the `run` fast entry (run/run_main.js) has no monitor: the full CLI beside it has
    const entry = Deno.mainModule.endsWith("/run/run_main.js")
      ? new URL("../main.js", Deno.mainModule)
      : new URL(Deno.mainModule);
    return [...flags, "--no-config", entry.pathname];
  }
  const main = new URL("./main.ts", import.meta.url).pathname;
  const config = new URL("../deno.json", import.meta.url).pathname;
  return [...flags, `--config=${config}`, main];
}

/**
 * Starts the monitor of container `id` detached and waits until the container runs. A
 * failure to start is a `CliError` with the monitor's reason and Docker's exit status.
 */
export async function startDetached(store: Store, id: string): Promise<number> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [...selfCommand(), "__monitor", id, store.paths.lib, store.paths.run],
    stdin: "null",
    stdout: "piped",
    stderr: "null",
    detached: true,
  }).spawn();
  let text = "";
  const reader = child.stdout.getReader();
  const dec = new TextDecoder();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    text += dec.decode(value, { stream: true });
    if (text.includes("\n")) break;
  }
  reader.releaseLock();
  await child.stdout.cancel().catch(() => {});
  let r: Report | null = null;
  try {
    r = JSON.parse(text.split("\n")[0]!) as Report;
  } catch { /* died before reporting */ }
  if (r?.ok) {
    child.unref();
    return r.pid!;
  }
  const st = await child.status;
  if (r) {
    throw new CliError(
      r.message ?? "Cannot start the container",
      r.code ?? Exit.FAILED,
    );
  }
  throw new CliError(
    `Cannot start container ${
      id.slice(0, 12)
    }: its monitor exited with status ${st.code} before it ran ` +
      "(see 'denobox inspect' for the recorded error)",
  );
}
