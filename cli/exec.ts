/**
 * `exec`: runs a command inside a running container (its namespaces, root, cgroup), attached
 * to this terminal; the exit status is the command's.
 * @module
 */
import type { Context } from "./_commands.ts";
import { Store } from "./_store.ts";
import { CliError, Exit } from "./_errors.ts";
import { parseUser } from "./_config.ts";
import { openCgroup, pidBelongs } from "./_ops.ts";
import { signalNo } from "./_format.ts";
import { followTerminalSize, terminalSize } from "./_tty.ts";

/** `denobox exec`. */
export async function execCommand(ctx: Context): Promise<number> {
  const store = new Store(ctx.paths);
  const [ref, ...argv] = ctx.args as [string, ...string[]];
  const c = store.resolve(ref);
  if (c.status === "paused") {
    throw new CliError(`Container ${ref} is paused: unpause it first`);
  }
  if (c.status !== "running" || !c.state.pid) {
    throw new CliError(
      `Container ${ref} is not running: start it first ('denobox start ${ref}')`,
    );
  }
  const pid = c.state.pid;
  if (!pidBelongs(pid, c)) {
    throw new CliError(`Container ${ref} is not running (its process is gone)`);
  }
  const env: Record<string, string> = { ...c.config.env };
  for (const e of ctx.options.list("env")) {
    const eq = e.indexOf("=");
    if (eq < 0) {
      const v = Deno.env.get(e);
      if (v !== undefined) env[e] = v;
    } else env[e.slice(0, eq)] = e.slice(eq + 1);
  }
  const tty = ctx.options.bool("tty");
  if (tty && !("TERM" in env)) env.TERM = "xterm";
  const userSpec = ctx.options.str("user");
  const user = userSpec
    ? parseUser(userSpec, `/proc/${pid}/root`)
    : c.config.user;
  const cg = await openCgroup(c);
  const { exec, SandboxSetupError } = await import("denobox/sandbox");
  // as confined as the container's own command: same capabilities and seccomp filter
  const { containerHardening } = await import("./_runtime.ts");
  const hardening = await containerHardening(c.config, ctx.paths.run);
  const size = tty ? terminalSize() : null;
  let sb;
  try {
    sb = await exec({ pid }, {
      argv,
      env,
      cwd: ctx.options.str("workdir") ?? c.config.workdir,
      ...(user ? { user: { uid: user.uid, gid: user.gid } } : {}),
      ...(cg ? { cgroup: cg } : {}),
      capabilities: hardening.capabilities,
      ...(hardening.seccomp ? { seccomp: hardening.seccomp } : {}),
      noNewPrivs: true,
      ...(tty ? { pty: size! } : {
        stdin: ctx.options.bool("interactive")
          ? "pipe" as const
          : "null" as const,
        stdout: ctx.options.bool("detach")
          ? "null" as const
          : "inherit" as const,
        stderr: ctx.options.bool("detach")
          ? "null" as const
          : "inherit" as const,
      }),
    });
  } catch (e) {
    if (e instanceof SandboxSetupError) {
      const isExec = /^execve?\b/.test(e.step);
      if (isExec && e.code === "ENOENT") {
        throw new CliError(
          `Cannot exec ${
            JSON.stringify(argv[0])
          } in container ${ref}: executable file not found`,
          Exit.NOT_FOUND,
        );
      }
      if (isExec) {
        throw new CliError(
          `Cannot exec ${
            JSON.stringify(argv[0])
          } in container ${ref}: ${e.message}`,
          Exit.CANNOT_EXECUTE,
        );
      }
      throw new CliError(`Cannot exec in container ${ref}: ${e.message}`);
    }
    throw e;
  }
  await using sandbox = sb;
  if (ctx.options.bool("detach")) {
    return 0;
  }
  let restore: (() => void) | null = null;
  const pumps: Promise<unknown>[] = [];
  if (sandbox.pty) {
    const pty = sandbox.pty;
    pumps.push(
      pty.readable.pipeTo(Deno.stdout.writable, { preventClose: true }).catch(
        () => {},
      ),
    );
    if (Deno.stdin.isTerminal()) {
      Deno.stdin.setRaw(true);
      const unfollow = followTerminalSize(pty);
      restore = () => {
        Deno.stdin.setRaw(false);
        unfollow();
      };
    }
    if (ctx.options.bool("interactive")) {
      Deno.stdin.readable.pipeTo(pty.writable).catch(() => {});
    }
  } else if (sandbox.stdin) {
    Deno.stdin.readable.pipeTo(sandbox.stdin).catch(() => {});
  }
  try {
    const st = await sandbox.status;
    await Promise.allSettled(pumps);
    return st.code ?? (st.signal ? 128 + signalNo(st.signal) : Exit.FAILED);
  } finally {
    restore?.();
  }
}
