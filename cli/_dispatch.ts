/**
 * The command-line driver shared by the full CLI (cli/main.ts) and the `run` fast entry
 * (cli/run_main.ts): global options, then one command from a table, its options parsed, its
 * help shown, its errors turned into Docker's exit statuses.
 * @module
 */
import type { CommandSpec } from "./_commands.ts";
import { formatOptions, parseArgs, UsageError } from "./_args.ts";
import { type StorePaths, storePaths } from "./_paths.ts";
import { CliError } from "./_errors.ts";
import { trace } from "./_trace.ts";

/** The version `denobox --version` prints. */
export const VERSION = "0.1.0";

function commandHelp(c: CommandSpec): string {
  return `Usage:  denobox ${c.usage}\n\n${c.summary}\n` +
    (c.details ? `\n${c.details}\n` : "") +
    (c.options.length ? `\nOptions:\n${formatOptions(c.options)}\n` : "");
}

/** The commands a dispatcher knows. */
export interface CommandTable {
  /** The command named `name`, if known. */
  find(name: string): CommandSpec | undefined;
  /** The text of `denobox --help`. */
  help(): string;
  /** The hidden `__monitor` command (a detached container's owner), when it is offered. */
  monitor?: (paths: StorePaths, args: string[]) => Promise<number>;
}

/**
 * Runs the `denobox` command line `argv` (without the program name) with the commands of
 * `table` and returns its exit status; errors are printed, not thrown.
 */
export async function dispatch(
  argv: readonly string[],
  table: CommandTable,
): Promise<number> {
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
      console.log(table.help());
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
    console.log(table.help());
    return 0;
  }
  if (name === "__monitor" && table.monitor) {
    return await table.monitor(storePaths(root), rest);
  }
  const spec = table.find(name);
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
