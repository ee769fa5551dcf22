/**
 * Many short sandboxes on one root: a `RootTemplate` builds the root once (here the built-in
 * host view, with an empty /work for each sandbox's own tmpfs) in a mount namespace of its
 * own; each `spawn({ rootfs: template })` copies it instead of assembling and tearing down
 * dozens of mounts. Each sandbox still gets its own /proc, /tmp and /dev/shm: what one writes,
 * the next never sees. Root only.
 * Run: `tools/deno run -A examples/template.ts [count]`
 */
import { RootTemplate, spawn } from "denobox/sandbox";

const count = Number(Deno.args[0] ?? 20);
const script = "ls /tmp | wc -l; touch /tmp/mine; echo $(hostname) $$";

async function one(rootfs?: RootTemplate): Promise<string> {
  await using box = await spawn({
    argv: ["/bin/sh", "-c", script],
    ...(rootfs ? { rootfs } : {}),
    hostname: "worker",
    stdout: "pipe",
    mounts: [{ type: "tmpfs", target: "/work", size: "16m" }],
  });
  const { status, stdout } = await box.output();
  if (status.code !== 0) throw new Error(`exit ${status.code}`);
  return new TextDecoder().decode(stdout);
}

using template = await RootTemplate.create({ mountPoints: ["/work"] });
console.log("first run:", (await one(template)).trim().replace("\n", " | "));

for (
  const [name, rootfs] of [["host view", undefined], [
    "template",
    template,
  ]] as const
) {
  const t0 = performance.now();
  for (let i = 0; i < count; i++) await one(rootfs);
  console.log(
    `${name.padEnd(9)}: ${
      ((performance.now() - t0) / count).toFixed(2)
    } ms a sandbox`,
  );
}
