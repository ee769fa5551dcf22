/**
 * Fixtures for the image tests: OCI layouts built with umoci from busybox-static, a private
 * docker-registry (distribution) on 127.0.0.1 with its own config, skopeo pushes. Everything
 * stays on this machine; every process started here is stopped by its PID.
 */
import { join } from "node:path";
import { CACHE } from "../_helpers.ts";

async function run(
  cmd: string,
  args: string[],
  options: { cwd?: string } = {},
): Promise<string> {
  const out = await new Deno.Command(cmd, {
    args,
    stdout: "piped",
    stderr: "piped",
    ...(options.cwd ? { cwd: options.cwd } : {}),
  }).output();
  const dec = new TextDecoder();
  if (!out.success) {
    throw new Error(
      `${cmd} ${args.join(" ")} failed (${out.code}): ${
        dec.decode(out.stderr)
      }`,
    );
  }
  return dec.decode(out.stdout);
}

/** Makes a busybox rootfs (bin/busybox + applet symlinks, etc/passwd) in `dir`. */
export async function busyboxTree(dir: string): Promise<void> {
  for (const d of ["bin", "etc", "proc", "sys", "dev", "tmp", "root"]) {
    await Deno.mkdir(join(dir, d), { recursive: true });
  }
  await Deno.chmod(join(dir, "tmp"), 0o1777);
  await Deno.copyFile("/bin/busybox", join(dir, "bin", "busybox"));
  await Deno.chmod(join(dir, "bin", "busybox"), 0o755);
  for (
    const a of (await run("/bin/busybox", ["--list"])).split("\n").filter(
      Boolean,
    )
  ) {
    if (a !== "busybox") await Deno.symlink("busybox", join(dir, "bin", a));
  }
  await Deno.writeTextFile(
    join(dir, "etc", "passwd"),
    "root:x:0:0:root:/root:/bin/sh\n",
  );
  await Deno.writeTextFile(join(dir, "etc", "group"), "root:x:0:\n");
}

/**
 * An OCI image layout with tag `latest` (one gzip layer: busybox) and tag `v2` (one more
 * layer that deletes /bin/vi and /root and adds /etc/hello), built with umoci, cached under
 * .cache/image/ (rebuilt when missing).
 */
export async function busyboxLayout(): Promise<string> {
  const out = join(CACHE, "image", "busybox-oci");
  try {
    await Deno.stat(join(out, ".complete"));
    return out;
  } catch { /* build */ }
  const work = await Deno.makeTempDir({ prefix: "denobox-umoci-" });
  const tmpOut = `${out}.tmp-${Deno.pid}`;
  try {
    await Deno.mkdir(join(CACHE, "image"), { recursive: true });
    await Deno.remove(tmpOut, { recursive: true }).catch(() => {});
    await run("umoci", ["init", "--layout", tmpOut]);
    await run("umoci", ["new", "--image", `${tmpOut}:latest`]);
    await run("umoci", [
      "unpack",
      "--image",
      `${tmpOut}:latest`,
      join(work, "b1"),
    ]);
    await busyboxTree(join(work, "b1", "rootfs"));
    await run("umoci", [
      "repack",
      "--image",
      `${tmpOut}:latest`,
      join(work, "b1"),
    ]);
    await run("umoci", [
      "config",
      "--image",
      `${tmpOut}:latest`,
      "--architecture",
      "amd64",
      "--os",
      "linux",
      "--config.env",
      "PATH=/bin",
      "--config.workingdir",
      "/",
      "--config.cmd",
      "/bin/sh",
    ]);
    await run("umoci", [
      "unpack",
      "--image",
      `${tmpOut}:latest`,
      join(work, "b2"),
    ]);
    await Deno.remove(join(work, "b2", "rootfs", "bin", "vi"));
    await Deno.remove(join(work, "b2", "rootfs", "root"), { recursive: true });
    await Deno.writeTextFile(
      join(work, "b2", "rootfs", "etc", "hello"),
      "hello\n",
    );
    await run("umoci", ["repack", "--image", `${tmpOut}:v2`, join(work, "b2")]);
    await run("umoci", ["gc", "--layout", tmpOut]);
    // umoci writes 0600 files; rootless tests read the layout too.
    await run("chmod", ["-R", "a+rX", tmpOut]);
    await Deno.writeTextFile(join(tmpOut, ".complete"), "");
    await Deno.rename(tmpOut, out).catch(async (e) => {
      await Deno.remove(tmpOut, { recursive: true });
      await Deno.stat(join(out, ".complete")).catch(() => {
        throw e;
      });
    });
    return out;
  } finally {
    await Deno.remove(work, { recursive: true });
  }
}

/** A running registry; `await using` stops it (by PID) and removes its storage. */
export interface TestRegistry extends AsyncDisposable {
  /** `127.0.0.1:PORT`. */
  addr: string;
  /** The registry process's PID. */
  pid: number;
  /** Its directory (config.yml, storage/, log). */
  dir: string;
}

function freePort(): number {
  // Ask the kernel for a free port, then release it for the registry.
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/**
 * Starts Debian's docker-registry (distribution 2.8) on 127.0.0.1 at a free port, with its own
 * config (no auth, filesystem storage in a temp dir, deletes enabled). Never the packaged
 * config, which listens on all interfaces.
 */
export async function startRegistry(): Promise<TestRegistry> {
  const dir = await Deno.makeTempDir({ prefix: "denobox-registry-" });
  for (let attempt = 0;; attempt++) {
    const port = freePort();
    const addr = `127.0.0.1:${port}`;
    await Deno.writeTextFile(
      join(dir, "config.yml"),
      [
        "version: 0.1",
        "log:",
        "  level: warn",
        "  accesslog:",
        "    disabled: true",
        "storage:",
        "  filesystem:",
        `    rootdirectory: ${join(dir, "storage")}`,
        "  delete:",
        "    enabled: true",
        "http:",
        `  addr: ${addr}`,
        "",
      ].join("\n"),
    );
    const log = await Deno.open(join(dir, "registry.log"), {
      write: true,
      create: true,
      append: true,
    });
    const child = new Deno.Command("docker-registry", {
      args: ["serve", join(dir, "config.yml")],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const logging = child.stderr.pipeTo(log.writable).catch(() => {});
    const stop = async () => {
      try {
        child.kill("SIGTERM");
      } catch { /* already gone */ }
      await child.status;
      await logging;
    };
    let up = false;
    for (let i = 0; i < 100 && !up; i++) {
      try {
        const r = await fetch(`http://${addr}/v2/`);
        await r.body?.cancel();
        up = r.status === 200;
      } catch {
        await new Promise((r) => setTimeout(r, 50));
      }
      const exited = await Promise.race([
        child.status.then(() => true),
        Promise.resolve(false),
      ]);
      if (exited) break;
    }
    if (up) {
      return {
        addr,
        pid: child.pid,
        dir,
        async [Symbol.asyncDispose]() {
          await stop();
          await Deno.remove(dir, { recursive: true });
        },
      };
    }
    await stop();
    if (attempt >= 3) {
      const text = await Deno.readTextFile(join(dir, "registry.log")).catch(
        () => "",
      );
      await Deno.remove(dir, { recursive: true });
      throw new Error(`docker-registry did not start on ${addr}: ${text}`);
    }
  }
}

/** skopeo copy from an OCI layout tag to the test registry (plain http). */
export async function skopeoPush(
  layout: string,
  tag: string,
  dest: string,
  extra: string[] = [],
): Promise<void> {
  await run("skopeo", [
    "copy",
    "--quiet",
    "--dest-tls-verify=false",
    ...extra,
    `oci:${layout}:${tag}`,
    `docker://${dest}`,
  ]);
}

/** skopeo copy between two OCI layouts (e.g. to recompress with zstd). */
export async function skopeoCopy(
  src: string,
  dest: string,
  extra: string[] = [],
): Promise<void> {
  await run("skopeo", ["copy", "--quiet", ...extra, src, dest]);
}

export { run };
