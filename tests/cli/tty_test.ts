// An interactive `run -it` session driven through tmux, as a person at a terminal would:
// a prompt, typed commands, a window resize seen by `stty size`, Ctrl-C reaching the program,
// and Ctrl-D ending the shell with the right exit status.
import {
  assertEquals,
  assertMatch,
  ensureRootfs,
  hasCommand,
  IS_ROOT,
} from "../_helpers.ts";
import { join } from "node:path";
import { DENOBOX } from "./_cli.ts";

async function tmux(...args: string[]): Promise<string> {
  const out = await new Deno.Command("tmux", {
    args,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(
      `tmux ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`,
    );
  }
  return new TextDecoder().decode(out.stdout);
}

async function screenUntil(
  session: string,
  re: RegExp,
  what: string,
): Promise<string> {
  let text = "";
  for (let i = 0; i < 400; i++) {
    text = await tmux("capture-pane", "-p", "-t", session);
    if (re.test(text)) return text;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`Timed out waiting for ${what}; screen:\n${text}`);
}

Deno.test({
  name:
    "cli tty [root]: run -it in tmux: prompt, commands, resize, Ctrl-C, Ctrl-D status",
  ignore: !IS_ROOT || !hasCommand("tmux"),
  fn: async () => {
    const rootfs = await ensureRootfs();
    const root = await Deno.makeTempDir({ prefix: "denobox-tty-" });
    const session = `denobox-tty-${Deno.pid}`;
    const status = join(root, "status");
    // the exit status is written where the test can read it after the session ends
    const cmd =
      `${DENOBOX} --root ${root} run -it --rm --rootfs ${rootfs} -e PS1='box\\$ ' /bin/sh; ` +
      `echo $? > ${status}`;
    await tmux("new-session", "-d", "-s", session, "-x", "80", "-y", "24", cmd);
    try {
      await screenUntil(session, /^box#\s*$/m, "the prompt");
      await tmux("send-keys", "-t", session, "echo $((6 * 7))", "Enter");
      await screenUntil(session, /^42$/m, "a typed command's output");

      await tmux("send-keys", "-t", session, "stty size", "Enter");
      await screenUntil(session, /^24 80$/m, "the first size");
      await tmux("resize-window", "-t", session, "-x", "100", "-y", "30");
      await screenUntil(session, /./, "redraw");
      await tmux("send-keys", "-t", session, "clear; stty size", "Enter");
      await screenUntil(session, /^30 100$/m, "the new size after SIGWINCH");

      // Ctrl-C reaches the program in the container (sleep dies), not denobox: the shell stays
      await tmux("send-keys", "-t", session, "clear; sleep 1000", "Enter");
      await new Promise((r) => setTimeout(r, 200));
      await tmux("send-keys", "-t", session, "C-c");
      await screenUntil(session, /^box#\s*$/m, "the prompt after Ctrl-C");
      await tmux("send-keys", "-t", session, "echo rc=$?", "Enter");
      await screenUntil(session, /^rc=130$/m, "sleep interrupted by Ctrl-C");

      // Ctrl-D on an empty line: the shell exits with its last command's status
      await tmux("send-keys", "-t", session, "(exit 5)", "Enter");
      // the command line, then a fresh prompt below it
      await screenUntil(
        session,
        /^box# \(exit 5\)\nbox#\s*$/m,
        "the prompt again",
      );
      await tmux("send-keys", "-t", session, "C-d");
      for (let i = 0; i < 400; i++) {
        try {
          const s = (await Deno.readTextFile(status)).trim();
          if (s) {
            assertEquals(s, "5");
            break;
          }
        } catch { /* not yet */ }
        await new Promise((r) => setTimeout(r, 25));
      }
      assertEquals((await Deno.readTextFile(status)).trim(), "5");
      const ps = await new Deno.Command(DENOBOX, {
        args: ["--root", root, "ps", "-aq"],
        stdout: "piped",
      }).output();
      assertMatch(new TextDecoder().decode(ps.stdout), /^$/);
    } finally {
      await tmux("kill-session", "-t", session).catch(() => "");
      await Deno.remove(root, { recursive: true });
    }
  },
});
