// Run by tests/cli/rootless_test.ts as uid 65534 (runAsNobody): runs the `denobox` launcher
// once per command given as JSON in argv[0] (a list of argument lists, each after `--root`),
// and prints a JSON list of {args, code, stdout, stderr}. Environment variables for the CLI
// come as JSON in argv[1].
import { runCommand } from "../_helpers.ts";
import { DENOBOX } from "./_cli.ts";

const [commandsJson, envJson] = Deno.args as [string, string];
const commands = JSON.parse(commandsJson) as string[][];
const env = JSON.parse(envJson) as Record<string, string>;
const results = [];
for (const args of commands) {
  results.push({ args, ...await runCommand(DENOBOX, args, { env }) });
}
console.log(JSON.stringify(results));
