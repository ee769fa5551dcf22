/**
 * The `denobox` command's entry point: global options, then one command, whose code is only
 * imported when it runs. Use the `denobox` launcher at the repository root, or
 * `deno run -A cli/main.ts COMMAND ...`.
 * @module
 */
import { COMMANDS, type CommandSpec } from "./_commands.ts";
import { dispatch } from "./_dispatch.ts";

function mainHelp(): string {
  const groups = new Map<string, CommandSpec[]>();
  for (const c of COMMANDS) {
    groups.set(c.group, [...(groups.get(c.group) ?? []), c]);
  }
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  let out = "Usage:  denobox [OPTIONS] COMMAND\n\n" +
    "Linux containers and sandboxes from Deno, daemonless: state lives on disk, so every\n" +
    "invocation sees every container.\n\n" +
    "Options:\n" +
    "      --root DIR   Keep state under DIR (also DENOBOX_ROOT; default /var/lib/denobox,\n" +
    "                   rootless ~/.local/share/denobox)\n" +
    "  -h, --help       Show this help\n" +
    "  -v, --version    Print the version\n";
  for (const [g, cmds] of groups) {
    out += `\n${g}:\n` +
      cmds.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join("\n") +
      "\n";
  }
  return out + "\nRun 'denobox COMMAND --help' for more about a command.";
}

/**
 * Runs the `denobox` command line `argv` (without the program name) and returns its exit
 * status; errors are printed, not thrown.
 */
export function main(argv: readonly string[]): Promise<number> {
  return dispatch(argv, {
    find: (name) => COMMANDS.find((c) => c.name === name),
    help: mainHelp,
    monitor: async (paths, args) =>
      (await import("./_monitor.ts")).monitorMain(paths, args),
  });
}

if (import.meta.main) {
  const code = await main(Deno.args);
  Deno.exit(code);
}
