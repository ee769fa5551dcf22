/**
 * `deno task bench [NAME...]`: runs the benchmarks in bench/ (all, or those named), each side
 * by side with its peer, printing medians and ratios.
 */
const dir = new URL(".", import.meta.url).pathname;
const all = [...Deno.readDirSync(dir)]
  .map((e) => e.name)
  .filter((n) => n.endsWith(".ts") && n !== "main.ts" && !n.startsWith("_"))
  .map((n) => n.slice(0, -3))
  .sort();
const wanted = Deno.args.length > 0 ? Deno.args : all;
let failed = 0;
for (const name of wanted) {
  if (!all.includes(name)) {
    console.error(
      `bench: no benchmark named ${name} (have: ${all.join(", ")})`,
    );
    Deno.exit(2);
  }
  console.log(`\n== bench/${name} ==`);
  const st = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${dir}${name}.ts`],
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (!st.success) failed++;
}
Deno.exit(failed ? 1 : 0);
