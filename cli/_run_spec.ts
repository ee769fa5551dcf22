/**
 * The `run` command's help and options, apart from the command table so that the `run` fast
 * entry (cli/run_main.ts) can parse a `run` command line without loading the table.
 * @module
 */
import type { OptionSpec } from "./_args.ts";
import type { CommandSpec } from "./_commands.ts";

/** `-h, --help`, which every command takes. */
export const HELP: OptionSpec = {
  long: "help",
  short: "h",
  help: "Show this help",
};

/** The options of `run` (and, without -d and --rm, of `create`). */
export const RUN_OPTIONS: readonly OptionSpec[] = [
  { long: "name", kind: "string", help: "Assign a name to the container" },
  {
    long: "detach",
    short: "d",
    help: "Run in the background and print the container ID",
  },
  {
    long: "interactive",
    short: "i",
    help: "Keep STDIN open (connected to this terminal)",
  },
  {
    long: "tty",
    short: "t",
    help: "Allocate a pseudo-TTY (raw mode, resize, Ctrl-C to the program)",
  },
  { long: "rm", help: "Remove the container when it exits" },
  {
    long: "rootfs",
    kind: "string",
    arg: "DIR",
    help: "Use DIR as the root filesystem instead of an image",
  },
  {
    long: "env",
    short: "e",
    kind: "list",
    arg: "KEY=VAL",
    help: "Set an environment variable (KEY alone: take it from here)",
  },
  {
    long: "env-file",
    kind: "list",
    arg: "FILE",
    help: "Read environment variables from FILE (KEY=VAL lines)",
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
    help: "User (and group) to run as, numeric",
  },
  {
    long: "volume",
    short: "v",
    kind: "list",
    arg: "SRC:DST[:ro]",
    help: "Bind mount a host path",
  },
  {
    long: "tmpfs",
    kind: "list",
    arg: "DST[:size=..]",
    help: "Mount a tmpfs at DST",
  },
  {
    long: "memory",
    short: "m",
    kind: "string",
    arg: "BYTES",
    help: "Memory limit (64m, 1g)",
  },
  { long: "cpus", kind: "string", arg: "N", help: "CPU limit in CPUs (1.5)" },
  {
    long: "pids-limit",
    kind: "string",
    arg: "N",
    help: "Maximum number of processes",
  },
  {
    long: "cgroups",
    kind: "string",
    arg: "MODE",
    help:
      "enabled or disabled (default: enabled; disabled for --rm in the foreground without limits)",
  },
  {
    long: "network",
    kind: "string",
    arg: "MODE",
    help: "none (default), host or bridge",
  },
  {
    long: "publish",
    short: "p",
    kind: "list",
    arg: "HOST:CTR[/tcp]",
    help: "Publish a container port (needs --network bridge)",
  },
  {
    long: "hostname",
    kind: "string",
    help: "Container host name (default: the short ID)",
  },
  { long: "read-only", help: "Mount the root filesystem read-only" },
  {
    long: "cap-add",
    kind: "list",
    arg: "CAP",
    help: "Add a capability (CAP_NET_ADMIN or NET_ADMIN, ALL)",
  },
  {
    long: "cap-drop",
    kind: "list",
    arg: "CAP",
    help: "Drop a capability (ALL drops every one)",
  },
  {
    long: "security-opt",
    kind: "list",
    arg: "OPT",
    help: "seccomp=FILE (Docker's JSON profile) or seccomp=unconfined",
  },
  {
    long: "ulimit",
    kind: "list",
    arg: "NAME=SOFT[:HARD]",
    help: "Resource limit (nofile=1024:2048)",
  },
  {
    long: "stop-timeout",
    kind: "string",
    arg: "SECS",
    help: "Seconds `stop` waits before SIGKILL (default 10)",
  },
  HELP,
];

/** `run` as listed in the command table, without its loader. */
export const RUN_SPEC: Omit<CommandSpec, "load"> = {
  name: "run",
  group: "Containers",
  summary: "Create and run a container",
  usage: "run [OPTIONS] [IMAGE | --rootfs DIR] [--] [COMMAND] [ARG...]",
  details:
    "With neither IMAGE nor --rootfs, the container sees a read-only view of the host's own\n" +
    "filesystem. A COMMAND that starts with '/' or has no image before it is taken as the\n" +
    "command. Exit status: the command's own; 125 when denobox fails, 126 when the command\n" +
    "cannot be executed, 127 when it is not found.\n\n" +
    "A container started with --rm in the foreground and no -m, --cpus or --pids-limit gets\n" +
    "no cgroup (joining one costs a kernel RCU grace period, about 15 ms on cgroup v1). Its\n" +
    "processes still all end with it (its PID namespace dies with its first process), and\n" +
    "stop, kill, exec, top and logs work as usual; pause, unpause and stats need a cgroup:\n" +
    "add --cgroups enabled to get one.",
  options: RUN_OPTIONS,
  stopAt: 1,
};
