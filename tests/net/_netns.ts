import { runCommand, type ScriptResult } from "../_helpers.ts";

/**
 * Test network namespaces: each is held by a `sleep` process started under `unshare -n`
 * (killed by pid on dispose), so it vanishes with everything inside it.
 */
export class TestNetns implements AsyncDisposable {
  readonly #child: Deno.ChildProcess;
  /** The holder's pid. */
  readonly pid: number;
  /** `/proc/PID/ns/net`. */
  readonly path: string;

  private constructor(child: Deno.ChildProcess) {
    this.#child = child;
    this.pid = child.pid;
    this.path = `/proc/${child.pid}/ns/net`;
  }

  /** Starts a holder and waits until it runs in its new namespace (after exec of sleep). */
  static async create(): Promise<TestNetns> {
    const child = new Deno.Command("unshare", {
      args: ["--net", "sleep", "3600"],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    const ns = new TestNetns(child);
    for (let i = 0; i < 500; i++) {
      const comm = await Deno.readTextFile(`/proc/${child.pid}/comm`).catch(
        () => "",
      );
      if (comm.trim() === "sleep") return ns;
      await new Promise((r) => setTimeout(r, 5));
    }
    await ns[Symbol.asyncDispose]();
    throw new Error(
      "Cannot create a test network namespace: unshare did not start",
    );
  }

  /** Runs a command inside the namespace (nsenter); returns its output. */
  async run(
    args: string[],
    options: { stdin?: string } = {},
  ): Promise<ScriptResult> {
    return await runIn(this.path, args, options);
  }

  /** Kills the holder and reaps it; the namespace goes with it. */
  async [Symbol.asyncDispose](): Promise<void> {
    try {
      this.#child.kill("SIGKILL");
    } catch { /* already gone */ }
    await this.#child.status;
  }

  /** Kills the holder now (the namespace dies; its veth ends go with it). */
  async kill(): Promise<void> {
    await this[Symbol.asyncDispose]();
  }
}

/** Runs a command inside the namespace at `path`. */
export async function runIn(
  path: string,
  args: string[],
  options: { stdin?: string } = {},
): Promise<ScriptResult> {
  return await runCommand("nsenter", [`--net=${path}`, ...args], options);
}
