/**
 * `stats` (cgroup figures) and `top` (the container's processes).
 * @module
 */
import type { Context } from "./_commands.ts";
import { type ContainerInfo, Store } from "./_store.ts";
import { humanSize, table } from "./_format.ts";
import { shortId } from "./_names.ts";
import { CliError } from "./_errors.ts";
import { containerPids, openCgroup } from "./_ops.ts";

interface Sample {
  c: ContainerInfo;
  stats: import("denobox/cgroup").CgroupStats | null;
  at: number;
}

function hostMemory(): number {
  const m = /MemTotal:\s+(\d+) kB/.exec(Deno.readTextFileSync("/proc/meminfo"));
  return m ? Number(m[1]) * 1024 : 0;
}

async function sample(list: readonly ContainerInfo[]): Promise<Sample[]> {
  const { stats } = await import("denobox/cgroup");
  const out: Sample[] = [];
  for (const c of list) {
    const cg = (c.status === "running" || c.status === "paused") &&
        c.config.cgroup !== false
      ? await openCgroup(c)
      : null;
    let s = null;
    try {
      s = cg ? stats(cg) : null;
    } catch { /* gone meanwhile */ }
    out.push({ c, stats: s, at: performance.now() });
  }
  return out;
}

function rows(a: Sample[], b: Sample[]) {
  const total = hostMemory();
  return b.map((s, i) => {
    const prev = a[i]!;
    const st = s.stats;
    const cpu = st && prev.stats
      ? ((st.cpu.usage - prev.stats.cpu.usage) / ((s.at - prev.at) * 1000)) *
        100
      : 0;
    const limit = s.c.config.memory ?? total;
    const mem = st?.memory.current ?? 0;
    return {
      id: s.c.config.id,
      name: s.c.config.name,
      cpuPercent: Math.max(0, cpu),
      memoryUsage: mem,
      memoryLimit: limit,
      memoryPercent: limit ? (mem / limit) * 100 : 0,
      memoryPeak: st?.memory.peak ?? 0,
      blockRead: st?.io.readBytes ?? 0,
      blockWrite: st?.io.writeBytes ?? 0,
      pids: st?.pids.current ?? 0,
    };
  });
}

/** `denobox stats`. */
export async function statsCommand(ctx: Context): Promise<number> {
  const store = new Store(ctx.paths);
  const pick = () =>
    ctx.args.length
      ? ctx.args.map((r) => store.resolve(r))
      : store.list().filter((c) =>
        ctx.options.bool("all") || c.status === "running" ||
        c.status === "paused"
      );
  const json = ctx.options.str("format") === "json";
  const once = ctx.options.bool("no-stream");
  const tty = Deno.stdout.isTerminal();
  for (;;) {
    const list = pick();
    const a = await sample(list);
    await new Promise((r) => setTimeout(r, once ? 200 : 1000));
    const b = await sample(list);
    const rs = rows(a, b);
    if (json) { for (const r of rs) console.log(JSON.stringify(r)); }
    else {
      if (!once && tty) {
        await Deno.stdout.write(new TextEncoder().encode("\x1b[2J\x1b[H"));
      }
      console.log(table(
        [
          "CONTAINER ID",
          "NAME",
          "CPU %",
          "MEM USAGE / LIMIT",
          "MEM %",
          "BLOCK I/O",
          "PIDS",
        ],
        rs.map((r, i) =>
          list[i]!.config.cgroup === false
            // no cgroup (foreground --rm without limits): no figures to show
            ? [shortId(r.id), r.name, "--", "-- / --", "--", "-- / --", "--"]
            : [
              shortId(r.id),
              r.name,
              `${r.cpuPercent.toFixed(2)}%`,
              `${humanSize(r.memoryUsage)} / ${humanSize(r.memoryLimit)}`,
              `${r.memoryPercent.toFixed(2)}%`,
              `${humanSize(r.blockRead)} / ${humanSize(r.blockWrite)}`,
              String(r.pids),
            ]
        ),
      ));
    }
    if (once) return 0;
  }
}

function procInfo(pid: number): string[] | null {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const close = stat.lastIndexOf(")");
    const f = stat.slice(close + 2).split(" ");
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    const uid = /^Uid:\s+(\d+)/m.exec(status)?.[1] ?? "?";
    const ticks = 100;
    const cpu = (Number(f[11]) + Number(f[12])) / ticks;
    const cmd =
      Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0").filter(Boolean)
        .join(" ") ||
      `[${stat.slice(stat.indexOf("(") + 1, close)}]`;
    const t = `${String(Math.floor(cpu / 3600)).padStart(2, "0")}:${
      String(Math.floor(cpu / 60) % 60).padStart(2, "0")
    }:${String(Math.floor(cpu) % 60).padStart(2, "0")}`;
    return [uid, String(pid), f[1] ?? "?", f[0] ?? "?", t, cmd];
  } catch {
    return null;
  }
}

/** `denobox top`. */
export async function topCommand(ctx: Context): Promise<number> {
  const store = new Store(ctx.paths);
  const c = store.resolve(ctx.args[0]!);
  if (c.status !== "running" && c.status !== "paused") {
    throw new CliError(`Container ${ctx.args[0]} is not running`);
  }
  const pids = (await containerPids(c)).sort((a, b) => a - b);
  if (pids.length === 0) {
    throw new CliError(`Container ${ctx.args[0]} is not running`);
  }
  console.log(table(
    ["UID", "PID", "PPID", "STAT", "TIME", "CMD"],
    pids.map(procInfo).filter((r): r is string[] => r !== null),
  ));
  return 0;
}
