/**
 * `logs [-f] [--tail N] [-t]`.
 * @module
 */
import { join } from "./_path.ts";
import type { Context } from "./_commands.ts";
import { Store } from "./_store.ts";
import { type LogEntry, parseLog } from "./_log.ts";
import { CliError } from "./_errors.ts";

const enc = new TextEncoder();

async function emit(
  entries: readonly LogEntry[],
  timestamps: boolean,
): Promise<void> {
  for (const e of entries) {
    const text = timestamps ? `${e.time} ${e.log}` : e.log;
    const out = e.stream === "stderr" ? Deno.stderr : Deno.stdout;
    const data = enc.encode(text);
    let off = 0;
    while (off < data.length) off += await out.write(data.subarray(off));
  }
}

/** `denobox logs`. */
export async function logsCommand(ctx: Context): Promise<number> {
  const store = new Store(ctx.paths);
  const c = store.resolve(ctx.args[0]!);
  const path = join(c.dir, "ctr.log");
  const tailFlag = ctx.options.str("tail");
  let tail = Infinity;
  if (tailFlag !== undefined && tailFlag !== "all") {
    tail = Number(tailFlag);
    if (!Number.isInteger(tail) || tail < 0) {
      throw new CliError(
        `Invalid --tail ${tailFlag}: a number of lines or "all"`,
      );
    }
  }
  const ts = ctx.options.bool("timestamps");
  // no file: nothing printed yet (the owner makes it with the first output)
  let file: Deno.FsFile | null = await openLog(path);
  if (!file && !ctx.options.bool("follow")) return 0;
  using _f = {
    [Symbol.dispose]: () => file?.close(),
  };
  const dec = new TextDecoder();
  let pending = "";
  const readNew = async (): Promise<LogEntry[]> => {
    file ??= await openLog(path);
    if (!file) return [];
    const buf = new Uint8Array(65536);
    let text = pending;
    for (;;) {
      const n = await file.read(buf);
      if (n === null || n === 0) break;
      text += dec.decode(buf.subarray(0, n), { stream: true });
    }
    const cut = text.lastIndexOf("\n");
    pending = text.slice(cut + 1);
    return parseLog(text.slice(0, cut + 1));
  };
  const first = await readNew();
  await emit(
    tail === Infinity ? first : first.slice(Math.max(0, first.length - tail)),
    ts,
  );
  if (!ctx.options.bool("follow")) return 0;
  for (;;) {
    const alive = store.ownerAlive(c.config.id);
    await emit(await readNew(), ts);
    if (!alive) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return 0;
}

async function openLog(path: string): Promise<Deno.FsFile | null> {
  try {
    return await Deno.open(path);
  } catch {
    return null;
  }
}
