/**
 * The `denobox` command's entry point: global options, then one command, whose code is only
 * imported when it runs. Use the `denobox` launcher at the repository root, or
 * `deno run -A cli/main.ts COMMAND ...`.
 * @module
 */
import { COMMANDS, type CommandSpec } from "./_commands.ts";
import { formatOptions, parseArgs, UsageError } from "./_args.ts";
import { storePaths } from "./_paths.ts";
import { CliError } from "./_errors.ts";
import { trace } from "./_trace.ts";

const VERSION = "0.1.0";

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

function commandHelp(c: CommandSpec): string {
  return `Usage:  denobox ${c.usage}\n\n${c.summary}\n` +
    (c.details ? `\n${c.details}\n` : "") +
    (c.options.length ? `\nOptions:\n${formatOptions(c.options)}\n` : "");
}

/**
 * Runs the `denobox` command line `argv` (without the program name) and returns its exit
 * status; errors are printed, not thrown.
 */
export async function main(argv: readonly string[]): Promise<number> {
  trace("main");
  let root: string | undefined;
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--root") {
      root = argv[++i];
      if (root === undefined) {
        return usage("flag needs an argument: --root", "denobox");
      }
    } else if (a.startsWith("--root=")) root = a.slice(7);
    else if (a === "-h" || a === "--help") {
      console.log(mainHelp());
      return 0;
    } else if (a === "-v" || a === "--version") {
      console.log(`denobox version ${VERSION}`);
      return 0;
    } else if (a.startsWith("-")) return usage(`unknown flag: ${a}`, "denobox");
    else break;
  }
  const name = argv[i];
  const rest = argv.slice(i + 1);
  if (name === undefined) {
    console.log(mainHelp());
    return 0;
  }
  if (name === "__monitor") {
    const { monitorMain } = await import("./_monitor.ts");
    return await monitorMain(storePaths(root), rest);
  }
  const spec = COMMANDS.find((c) => c.name === name);
  if (!spec) {
    return usage(`unknown command: ${JSON.stringify(name)}`, "denobox");
  }
  try {
    if (spec.raw) {
      const handler = await spec.load();
      return await handler({
        command: name,
        options: parseArgs([], [], name).options,
        args: rest,
        dashDashAt: null,
        paths: storePaths(root),
      });
    }
    const { options, args, dashDashAt } = parseArgs(
      rest,
      spec.options,
      `denobox ${name}`,
      spec.stopAt,
    );
    if (options.bool("help")) {
      console.log(commandHelp(spec));
      return 0;
    }
    if (spec.minArgs !== undefined && args.length < spec.minArgs) {
      throw new UsageError(
        `"denobox ${name}" requires at least ${spec.minArgs} argument${
          spec.minArgs > 1 ? "s" : ""
        }`,
        `denobox ${name}`,
      );
    }
    if (spec.maxArgs !== undefined && args.length > spec.maxArgs) {
      throw new UsageError(
        spec.maxArgs === 0
          ? `"denobox ${name}" accepts no arguments`
          : `"denobox ${name}" accepts at most ${spec.maxArgs} argument${
            spec.maxArgs > 1 ? "s" : ""
          }`,
        `denobox ${name}`,
      );
    }
    const handler = await spec.load();
    return await handler({
      command: name,
      options,
      args,
      dashDashAt,
      paths: storePaths(root),
    });
  } catch (e) {
    if (e instanceof UsageError) return usage(e.message, e.command, spec);
    if (e instanceof CliError) {
      if (e.message) console.error(`Error: ${e.message}`);
      return e.exitCode;
    }
    console.error(`Error: ${e instanceof Error ? e.message : String(e)}`);
    if (Deno.env.get("DENOBOX_DEBUG") && e instanceof Error) {
      console.error(e.stack);
    }
    return 125;
  }
}

function usage(message: string, command: string, spec?: CommandSpec): number {
  console.error(`Error: ${message}`);
  console.error(
    spec
      ? `Usage: denobox ${spec.usage}\nSee '${command} --help'.`
      : `See '${command} --help'.`,
  );
  return 125;
}

if (import.meta.main) {
  const code = await main(Deno.args);
  Deno.exit(code);
}
