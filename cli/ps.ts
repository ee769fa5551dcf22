/**
 * `ps` and `inspect`.
 * @module
 */
import type { Context } from "./_commands.ts";
import { type ContainerInfo, Store } from "./_store.ts";
import {
  commandText,
  exitStatusOf,
  humanDuration,
  statusText,
  table,
} from "./_format.ts";
import { shortId } from "./_names.ts";
import { CliError } from "./_errors.ts";
import { join } from "./_path.ts";

function portsText(c: ContainerInfo): string {
  return c.config.ports.map((p) =>
    `${p.hostIp ?? "0.0.0.0"}:${p.host}->${p.container}/${p.protocol}`
  ).join(", ");
}

/** `denobox ps`. */
export function psCommand(ctx: Context): Promise<number> {
  const store = new Store(ctx.paths);
  const all = ctx.options.bool("all");
  const list = store.list().filter((c) =>
    c.status !== "removing" &&
    (all || c.status === "running" || c.status === "paused")
  );
  const format = ctx.options.str("format");
  const noTrunc = ctx.options.bool("no-trunc");
  if (ctx.options.bool("quiet")) {
    for (const c of list) {
      console.log(noTrunc ? c.config.id : shortId(c.config.id));
    }
  } else if (format === "json" || format === "{{json .}}") {
    for (const c of list) {
      console.log(JSON.stringify({
        ID: c.config.id,
        Names: c.config.name,
        Image: c.config.image ?? c.config.rootfs ?? "",
        Command: commandText(c.config.argv),
        CreatedAt: c.config.created,
        State: c.status,
        Status: statusText(c),
        ExitCode: c.status === "exited" ? exitStatusOf(c.state) : null,
        Pid: c.status === "running" || c.status === "paused"
          ? c.state.pid
          : null,
        Ports: portsText(c),
      }));
    }
  } else if (format === undefined || format === "table") {
    const now = Date.now();
    const rows = list.map((c) => {
      const cmd = commandText(c.config.argv);
      return [
        noTrunc ? c.config.id : shortId(c.config.id),
        c.config.image ??
          (c.config.rootfs ? `(rootfs) ${c.config.rootfs}` : "(host)"),
        JSON.stringify(
          noTrunc || cmd.length <= 20 ? cmd : cmd.slice(0, 19) + "…",
        ),
        `${humanDuration(now - Date.parse(c.config.created))} ago`,
        statusText(c, now),
        portsText(c),
        c.config.name,
      ];
    });
    console.log(
      table([
        "CONTAINER ID",
        "IMAGE",
        "COMMAND",
        "CREATED",
        "STATUS",
        "PORTS",
        "NAMES",
      ], rows),
    );
  } else {
    throw new CliError(
      `Unknown --format ${JSON.stringify(format)}: use json or table`,
    );
  }
  return Promise.resolve(0);
}

/** The Docker-shaped JSON of a container (`denobox inspect`). */
export function inspectJson(c: ContainerInfo): Record<string, unknown> {
  const { config: k, state: s } = c;
  const running = c.status === "running" || c.status === "paused";
  return {
    Id: k.id,
    Created: k.created,
    Path: k.argv[0] ?? "",
    Args: k.argv.slice(1),
    State: {
      Status: c.status,
      Running: running,
      Paused: c.status === "paused",
      OOMKilled: s.oomKilled,
      Dead: false,
      Pid: running ? s.pid ?? 0 : 0,
      MonitorPid: running ? s.monitorPid ?? 0 : 0,
      ExitCode: c.status === "exited" ? exitStatusOf(s) : 0,
      ExitCodeKnown: c.status !== "exited" || exitStatusOf(s) !== null,
      Signal: s.signal,
      Error: s.error ?? "",
      StartedAt: s.startedAt ?? "0001-01-01T00:00:00Z",
      FinishedAt: s.finishedAt ?? "0001-01-01T00:00:00Z",
    },
    Image: k.imageId ?? "",
    ImageName: k.image ?? "",
    Rootfs: k.rootfs ?? (k.image ? null : "/ (read-only host view)"),
    Name: k.name,
    LogPath: join(c.dir, "ctr.log"),
    Config: {
      Hostname: k.hostname,
      User: k.user ? `${k.user.uid}:${k.user.gid}` : "",
      Env: Object.entries(k.env).map(([a, b]) => `${a}=${b}`),
      Cmd: k.argv,
      WorkingDir: k.workdir,
      Tty: k.tty,
      OpenStdin: k.interactive,
      StopTimeout: k.stopTimeout,
    },
    HostConfig: {
      AutoRemove: k.autoRemove,
      ReadonlyRootfs: k.readOnly,
      Memory: k.memory ?? 0,
      NanoCpus: k.cpus === null ? 0 : Math.round(k.cpus * 1e9),
      PidsLimit: k.pidsLimit,
      NetworkMode: k.network,
      CapAdd: k.capAdd,
      CapDrop: k.capDrop,
      SecurityOpt: k.seccomp ? [`seccomp=${k.seccomp}`] : [],
      Ulimits: Object.entries(k.ulimits).map(([Name, v]) => ({
        Name,
        Soft: v.soft,
        Hard: v.hard,
      })),
      Tmpfs: Object.fromEntries(
        k.mounts.filter((m) => m.type === "tmpfs").map((m) => [
          m.target,
          m.type === "tmpfs"
            ? [m.size ? `size=${m.size}` : "", m.mode ? `mode=${m.mode}` : ""]
              .filter(Boolean).join(",")
            : "",
        ]),
      ),
    },
    Mounts: k.mounts.filter((m) => m.type === "bind").map((m) => ({
      Type: "bind",
      Source: m.type === "bind" ? m.source : "",
      Destination: m.target,
      RW: m.type === "bind" ? !m.readOnly : true,
    })),
    NetworkSettings: {
      IPAddress: s.ip ?? "",
      Ports: Object.fromEntries(
        k.ports.map((p) => [`${p.container}/${p.protocol}`, [{
          HostIp: p.hostIp ?? "0.0.0.0",
          HostPort: String(p.host),
        }]]),
      ),
    },
    Cgroup: s.cgroup ?? [],
    RootfsMount: s.rootfsMount,
  };
}

/** Picks `{{.State.Pid}}` / `State.Pid` out of `obj`. */
export function formatField(obj: unknown, format: string): string {
  const m = /^\s*\{\{\s*(json\s+)?\.?([\w.]*)\s*\}\}\s*$/.exec(format) ??
    /^()\.?([\w.]*)$/.exec(format);
  if (!m) {
    throw new CliError(
      `Unsupported --format ${JSON.stringify(format)}: use {{.Field.Sub}}`,
    );
  }
  let v: unknown = obj;
  for (const part of (m[2] ?? "").split(".").filter(Boolean)) {
    if (v === null || typeof v !== "object" || !(part in v)) {
      throw new CliError(
        `Cannot format: no field ${JSON.stringify(part)} in ${format}`,
      );
    }
    v = (v as Record<string, unknown>)[part];
  }
  if (m[1] || (typeof v === "object" && v !== null)) return JSON.stringify(v);
  return String(v);
}

/** `denobox inspect`. */
export async function inspectCommand(ctx: Context): Promise<number> {
  const store = new Store(ctx.paths);
  const type = ctx.options.str("type");
  const out: unknown[] = [];
  let failed = false;
  for (const ref of ctx.args) {
    try {
      if (type !== "image") {
        try {
          out.push(inspectJson(store.resolve(ref)));
          continue;
        } catch (e) {
          if (type === "container") throw e;
        }
      }
      const { inspectImage } = await import("./image_cmds.ts");
      out.push(await inspectImage(ctx.paths, ref));
    } catch (e) {
      failed = true;
      console.error(`Error: ${e instanceof Error ? e.message : e}`);
    }
  }
  const format = ctx.options.str("format");
  if (format) { for (const o of out) console.log(formatField(o, format)); }
  else console.log(JSON.stringify(out, null, 4));
  return failed ? 1 : 0;
}
