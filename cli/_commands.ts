/**
 * The command table: names, help texts and options of every `denobox` command, and a lazy
 * loader for each implementation, so `denobox ps` never loads the image or network code and
 * `--help` loads nothing at all.
 * @module
 */
import type { Options, OptionSpec } from "./_args.ts";
import type { StorePaths } from "./_paths.ts";
import { HELP, RUN_OPTIONS, RUN_SPEC } from "./_run_spec.ts";

/** What a command implementation receives. */
export interface Context {
  /** `"run"`, `"ps"`, ... */
  command: string;
  /** Parsed options. */
  options: Options;
  /** Positional arguments. */
  args: string[];
  /** How many positionals came before `--` (null: none). */
  dashDashAt: number | null;
  /** Where state lives. */
  paths: StorePaths;
}

/** A command implementation: returns the process exit status. */
export type Handler = (ctx: Context) => Promise<number>;

/** One command. */
export interface CommandSpec {
  /** The name (`"run"`). */
  name: string;
  /** What it does, one line. */
  summary: string;
  /** The usage line after `denobox ` (`"run [OPTIONS] IMAGE [COMMAND] [ARG...]"`). */
  usage: string;
  /** More text after the usage line. */
  details?: string;
  /** Its options. */
  options: readonly OptionSpec[];
  /** Stop option parsing after this many positionals (run: 1, exec: 1). */
  stopAt?: number;
  /** Fewest positional arguments. */
  minArgs?: number;
  /** Most positional arguments. */
  maxArgs?: number;
  /** The group it is listed under in `denobox --help`. */
  group: "Containers" | "Images" | "System";
  /** Loads the implementation. */
  load: () => Promise<Handler>;
  /** Takes its raw arguments (no parsing, own --help): `grade`. */
  raw?: boolean;
}

const load = <M>(p: Promise<M>, pick: (m: M) => Handler) => p.then(pick);

/** Every command, in help order. */
export const COMMANDS: readonly CommandSpec[] = [
  {
    ...RUN_SPEC,
    load: () => load(import("./run.ts"), (m) => m.runCommand),
  },
  {
    name: "create",
    group: "Containers",
    summary: "Create a container without starting it",
    usage: "create [OPTIONS] [IMAGE | --rootfs DIR] [--] [COMMAND] [ARG...]",
    options: RUN_OPTIONS.filter((o) => o.long !== "detach" && o.long !== "rm")
      .concat([]),
    stopAt: 1,
    load: () => load(import("./run.ts"), (m) => m.createCommand),
  },
  {
    name: "start",
    group: "Containers",
    summary: "Start created or stopped containers",
    usage: "start [OPTIONS] CONTAINER [CONTAINER...]",
    options: [
      {
        long: "attach",
        short: "a",
        help: "Run attached: this terminal's output, wait, its exit status",
      },
      { long: "interactive", short: "i", help: "Attach STDIN (with -a)" },
      HELP,
    ],
    minArgs: 1,
    load: () => load(import("./run.ts"), (m) => m.startCommand),
  },
  {
    name: "ps",
    group: "Containers",
    summary: "List containers",
    usage: "ps [OPTIONS]",
    options: [
      {
        long: "all",
        short: "a",
        help: "Show all containers (default: only running ones)",
      },
      { long: "quiet", short: "q", help: "Only print IDs" },
      { long: "no-trunc", help: "Do not truncate IDs and commands" },
      {
        long: "format",
        kind: "string",
        arg: "FORMAT",
        help: "json: one JSON object per line; table (default)",
      },
      HELP,
    ],
    maxArgs: 0,
    load: () => load(import("./ps.ts"), (m) => m.psCommand),
  },
  {
    name: "inspect",
    group: "Containers",
    summary: "Show containers (or images) as JSON",
    usage: "inspect [OPTIONS] NAME|ID [NAME|ID...]",
    options: [
      {
        long: "type",
        kind: "string",
        arg: "TYPE",
        help: "container or image (default: whichever matches)",
      },
      {
        long: "format",
        short: "f",
        kind: "string",
        arg: "PATH",
        help: "Print one field, as {{.State.Pid}} or State.Pid",
      },
      HELP,
    ],
    minArgs: 1,
    load: () => load(import("./ps.ts"), (m) => m.inspectCommand),
  },
  {
    name: "logs",
    group: "Containers",
    summary: "Show a container's output",
    usage: "logs [OPTIONS] CONTAINER",
    options: [
      {
        long: "follow",
        short: "f",
        help: "Follow the output until the container stops",
      },
      {
        long: "tail",
        short: "n",
        kind: "string",
        arg: "N",
        help: "Only the last N lines (all)",
      },
      {
        long: "timestamps",
        short: "t",
        help: "Prefix each line with its time",
      },
      HELP,
    ],
    minArgs: 1,
    maxArgs: 1,
    load: () => load(import("./logs.ts"), (m) => m.logsCommand),
  },
  {
    name: "exec",
    group: "Containers",
    summary: "Run a command in a running container",
    usage: "exec [OPTIONS] CONTAINER COMMAND [ARG...]",
    options: [
      { long: "interactive", short: "i", help: "Keep STDIN open" },
      { long: "tty", short: "t", help: "Allocate a pseudo-TTY" },
      { long: "detach", short: "d", help: "Run the command in the background" },
      {
        long: "env",
        short: "e",
        kind: "list",
        arg: "KEY=VAL",
        help: "Set an environment variable",
      },
      {
        long: "workdir",
        short: "w",
        kind: "string",
        arg: "DIR",
        help: "Working directory inside the container",
      },
      {
        long: "user",
        short: "u",
        kind: "string",
        arg: "UID[:GID]",
        help: "User (and group) to run as",
      },
      HELP,
    ],
    stopAt: 1,
    minArgs: 2,
    load: () => load(import("./exec.ts"), (m) => m.execCommand),
  },
  {
    name: "stop",
    group: "Containers",
    summary:
      "Stop running containers (SIGTERM, then SIGKILL after a grace period)",
    usage: "stop [OPTIONS] CONTAINER [CONTAINER...]",
    options: [
      {
        long: "time",
        short: "t",
        kind: "string",
        arg: "SECS",
        help:
          "Seconds to wait before SIGKILL (default: the container's --stop-timeout, 10)",
      },
      HELP,
    ],
    minArgs: 1,
    load: () => load(import("./signal.ts"), (m) => m.stopCommand),
  },
  {
    name: "kill",
    group: "Containers",
    summary: "Send a signal to running containers",
    usage: "kill [OPTIONS] CONTAINER [CONTAINER...]",
    options: [
      {
        long: "signal",
        short: "s",
        kind: "string",
        arg: "SIG",
        help: "Signal to send: name or number (default KILL)",
      },
      HELP,
    ],
    minArgs: 1,
    load: () => load(import("./signal.ts"), (m) => m.killCommand),
  },
  {
    name: "rm",
    group: "Containers",
    summary: "Remove containers",
    usage: "rm [OPTIONS] CONTAINER [CONTAINER...]",
    options: [
      {
        long: "force",
        short: "f",
        help: "Kill running containers first; no error for missing ones",
      },
      HELP,
    ],
    minArgs: 1,
    load: () => load(import("./rm.ts"), (m) => m.rmCommand),
  },
  {
    name: "cp",
    group: "Containers",
    summary: "Copy files between a container and the host",
    usage:
      "cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH\n       denobox cp [OPTIONS] SRC_PATH CONTAINER:DEST_PATH",
    details:
      "Paths inside the container are resolved inside its root: a symlink never leads out of it.",
    options: [HELP],
    minArgs: 2,
    maxArgs: 2,
    load: () => load(import("./cp.ts"), (m) => m.cpCommand),
  },
  {
    name: "pause",
    group: "Containers",
    summary: "Freeze every process of containers (cgroup freezer)",
    usage: "pause CONTAINER [CONTAINER...]",
    options: [HELP],
    minArgs: 1,
    load: () => load(import("./signal.ts"), (m) => m.pauseCommand),
  },
  {
    name: "unpause",
    group: "Containers",
    summary: "Thaw paused containers",
    usage: "unpause CONTAINER [CONTAINER...]",
    options: [HELP],
    minArgs: 1,
    load: () => load(import("./signal.ts"), (m) => m.unpauseCommand),
  },
  {
    name: "stats",
    group: "Containers",
    summary: "Show resource usage (cgroup figures)",
    usage: "stats [OPTIONS] [CONTAINER...]",
    options: [
      { long: "no-stream", help: "Print one sample and exit" },
      {
        long: "all",
        short: "a",
        help: "Show all containers (default: running)",
      },
      {
        long: "format",
        kind: "string",
        arg: "FORMAT",
        help: "json or table (default)",
      },
      HELP,
    ],
    load: () => load(import("./stats.ts"), (m) => m.statsCommand),
  },
  {
    name: "top",
    group: "Containers",
    summary: "Show the processes of a container",
    usage: "top CONTAINER",
    options: [HELP],
    minArgs: 1,
    maxArgs: 1,
    load: () => load(import("./stats.ts"), (m) => m.topCommand),
  },
  {
    name: "wait",
    group: "Containers",
    summary: "Wait for containers to stop, print their exit codes",
    usage: "wait CONTAINER [CONTAINER...]",
    options: [HELP],
    minArgs: 1,
    load: () => load(import("./signal.ts"), (m) => m.waitCommand),
  },
  {
    name: "rename",
    group: "Containers",
    summary: "Rename a container",
    usage: "rename CONTAINER NEW_NAME",
    options: [HELP],
    minArgs: 2,
    maxArgs: 2,
    load: () => load(import("./rm.ts"), (m) => m.renameCommand),
  },
  {
    name: "images",
    group: "Images",
    summary: "List images",
    usage: "images [OPTIONS]",
    options: [
      { long: "quiet", short: "q", help: "Only print IDs" },
      {
        long: "format",
        kind: "string",
        arg: "FORMAT",
        help: "json or table (default)",
      },
      HELP,
    ],
    maxArgs: 0,
    load: () => load(import("./image_cmds.ts"), (m) => m.imagesCommand),
  },
  {
    name: "pull",
    group: "Images",
    summary: "Pull an image from a registry",
    usage: "pull [OPTIONS] NAME[:TAG|@DIGEST]",
    options: [
      { long: "quiet", short: "q", help: "Only print the image ID" },
      {
        long: "tls-verify",
        kind: "string",
        arg: "BOOL",
        help: "false: allow plain HTTP / unverified TLS (default true)",
      },
      HELP,
    ],
    minArgs: 1,
    maxArgs: 1,
    load: () => load(import("./image_cmds.ts"), (m) => m.pullCommand),
  },
  {
    name: "push",
    group: "Images",
    summary: "Push an image to a registry",
    usage: "push [OPTIONS] NAME[:TAG]",
    options: [
      {
        long: "tls-verify",
        kind: "string",
        arg: "BOOL",
        help: "false: allow plain HTTP / unverified TLS (default true)",
      },
      HELP,
    ],
    minArgs: 1,
    maxArgs: 1,
    load: () => load(import("./image_cmds.ts"), (m) => m.pushCommand),
  },
  {
    name: "import",
    group: "Images",
    summary: "Create an image from a filesystem tarball",
    usage: "import [OPTIONS] FILE [REPOSITORY[:TAG]]",
    options: [HELP],
    minArgs: 1,
    maxArgs: 2,
    load: () => load(import("./image_cmds.ts"), (m) => m.importCommand),
  },
  {
    name: "load",
    group: "Images",
    summary: "Load images from a docker-save tar archive",
    usage: "load [OPTIONS]",
    options: [
      {
        long: "input",
        short: "i",
        kind: "string",
        arg: "FILE",
        help: "Read from FILE (default: standard input)",
      },
      HELP,
    ],
    maxArgs: 0,
    load: () => load(import("./image_cmds.ts"), (m) => m.loadCommand),
  },
  {
    name: "save",
    group: "Images",
    summary: "Save images to a docker-save tar archive",
    usage: "save [OPTIONS] IMAGE [IMAGE...]",
    options: [
      {
        long: "output",
        short: "o",
        kind: "string",
        arg: "FILE",
        help: "Write to FILE (default: standard output)",
      },
      HELP,
    ],
    minArgs: 1,
    load: () => load(import("./image_cmds.ts"), (m) => m.saveCommand),
  },
  {
    name: "export",
    group: "Images",
    summary: "Export a container's filesystem as a tar archive",
    usage: "export [OPTIONS] CONTAINER",
    options: [
      {
        long: "output",
        short: "o",
        kind: "string",
        arg: "FILE",
        help: "Write to FILE (default: standard output)",
      },
      HELP,
    ],
    minArgs: 1,
    maxArgs: 1,
    load: () => load(import("./image_cmds.ts"), (m) => m.exportCommand),
  },
  {
    name: "commit",
    group: "Images",
    summary: "Create an image from a container's changes",
    usage: "commit [OPTIONS] CONTAINER [REPOSITORY[:TAG]]",
    options: [
      { long: "message", short: "m", kind: "string", help: "Commit message" },
      { long: "author", short: "a", kind: "string", help: "Author" },
      HELP,
    ],
    minArgs: 1,
    maxArgs: 2,
    load: () => load(import("./image_cmds.ts"), (m) => m.commitCommand),
  },
  {
    name: "build",
    group: "Images",
    summary: "Build an image from a Dockerfile",
    usage: "build [OPTIONS] -t NAME [-f FILE] DIR",
    options: [
      {
        long: "tag",
        short: "t",
        kind: "list",
        arg: "NAME[:TAG]",
        help: "Name of the image",
      },
      {
        long: "file",
        short: "f",
        kind: "string",
        arg: "FILE",
        help: "The recipe (default: DIR/Dockerfile)",
      },
      {
        long: "build-arg",
        kind: "list",
        arg: "KEY=VAL",
        help: "Set a build-time variable",
      },
      { long: "quiet", short: "q", help: "Only print the image ID" },
      HELP,
    ],
    minArgs: 1,
    maxArgs: 1,
    load: () => load(import("./image_cmds.ts"), (m) => m.buildCommand),
  },
  {
    name: "tag",
    group: "Images",
    summary: "Give an image another name",
    usage: "tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]",
    options: [HELP],
    minArgs: 2,
    maxArgs: 2,
    load: () => load(import("./image_cmds.ts"), (m) => m.tagCommand),
  },
  {
    name: "rmi",
    group: "Images",
    summary: "Remove images",
    usage: "rmi [OPTIONS] IMAGE [IMAGE...]",
    options: [
      { long: "force", short: "f", help: "Remove even if containers use it" },
      HELP,
    ],
    minArgs: 1,
    load: () => load(import("./image_cmds.ts"), (m) => m.rmiCommand),
  },
  {
    name: "system",
    group: "System",
    summary:
      "Manage denobox (system prune: remove stopped containers and unused images)",
    usage: "system prune [OPTIONS]",
    options: [
      {
        long: "all",
        short: "a",
        help: "Remove every unused image, not only dangling ones",
      },
      { long: "force", short: "f", help: "Do not ask for confirmation" },
      HELP,
    ],
    minArgs: 1,
    maxArgs: 1,
    load: () => load(import("./rm.ts"), (m) => m.systemCommand),
  },
  {
    name: "doctor",
    group: "System",
    summary:
      "Check what this machine offers and what to do about missing pieces",
    usage: "doctor [OPTIONS]",
    options: [
      {
        long: "format",
        kind: "string",
        arg: "FORMAT",
        help: "json or text (default)",
      },
      HELP,
    ],
    maxArgs: 0,
    load: () => load(import("./doctor.ts"), (m) => m.doctorCommand),
  },
  {
    name: "grade",
    group: "System",
    summary:
      "Run submissions under limits and report verdicts (denobox grade --help)",
    usage: "grade ...",
    options: [],
    raw: true,
    load: () =>
      load(
        import("./grade.ts"),
        (m) => (ctx: Context) => m.gradeMain(ctx.args),
      ),
  },
];
