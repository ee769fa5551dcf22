// Run by tests/cli/rootless_test.ts as uid 65534 (runAsNobody): runs the `denobox` launcher
// once per command given as JSON in argv[0] (a list of argument lists, each after `--root`),
// and prints a JSON list of {args, code, stdout, stderr}. Environment variables for the CLI
// come as JSON in argv[1].
const [commandsJson, envJson] = Deno.args as [string, string];
const commands = JSON.parse(commandsJson) as string[][];
const env = JSON.parse(envJson) as Record<string, string>;
const launcher = new URL("../../denobox", import.meta.url).pathname;
const dec = new TextDecoder();
const results = [];
for (const args of commands) {
  const out = await new Deno.Command(launcher, {
    args,
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  results.push({
    args,
    code: out.code,
    stdout: dec.decode(out.stdout),
    stderr: dec.decode(out.stderr),
  });
}
console.log(JSON.stringify(results));
