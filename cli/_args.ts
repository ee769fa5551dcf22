/**
 * Command-line parsing as Docker users expect it: `-d`, `-it` (grouped short flags),
 * `-e KEY=VAL`, `-eKEY=VAL`, `--name x`, `--name=x`, repeatable options, `--` ends the options,
 * and commands such as `run` and `exec` stop at their first positional argument so that the
 * container's own command keeps its flags.
 * @module
 */

/** How an option takes its value. */
export type OptionKind = "bool" | "string" | "list";

/** One option of a command. */
export interface OptionSpec {
  /** Long name without dashes (`"detach"`). */
  long: string;
  /** One-letter short name (`"d"`). */
  short?: string;
  /** `bool` (no value), `string` (last one wins) or `list` (repeatable). Default `bool`. */
  kind?: OptionKind;
  /** The value's placeholder in the help text (`"KEY=VAL"`). */
  arg?: string;
  /** One line of help. */
  help: string;
}

/** A usage error: the message, and the command whose help to point at. */
export class UsageError extends Error {
  override name = "UsageError";
  /** The command line so far (`"denobox run"`), for "See 'denobox run --help'". */
  command: string;
  constructor(message: string, command: string) {
    super(message);
    this.command = command;
  }
}

/** The parsed options of one command. */
export class Options {
  readonly #values = new Map<string, string | boolean | string[]>();
  /** Sets a value (used by the parser). */
  set(name: string, value: string | boolean | string[]): void {
    this.#values.set(name, value);
  }
  /** Whether a flag was given. */
  bool(name: string): boolean {
    return this.#values.get(name) === true;
  }
  /** A string option's value, or `undefined`. */
  str(name: string): string | undefined {
    const v = this.#values.get(name);
    return typeof v === "string" ? v : undefined;
  }
  /** A repeatable option's values (empty when not given). */
  list(name: string): string[] {
    const v = this.#values.get(name);
    return Array.isArray(v) ? v : [];
  }
  /** Whether the option was given at all. */
  has(name: string): boolean {
    return this.#values.has(name);
  }
}

/** The result of `parseArgs`. */
export interface Parsed {
  /** The options. */
  options: Options;
  /** The positional arguments, in order. */
  args: string[];
  /** How many positionals came before a `--` that ended the options (null: no `--`). */
  dashDashAt: number | null;
}

/**
 * Parses `argv` against `specs`. With `stopAtPositional`, the first `stopAtPositional`
 * positional arguments end the options: everything after them is positional, flags included.
 */
export function parseArgs(
  argv: readonly string[],
  specs: readonly OptionSpec[],
  command: string,
  stopAtPositional = 0,
): Parsed {
  const byLong = new Map(specs.map((s) => [s.long, s]));
  const byShort = new Map(
    specs.filter((s) => s.short).map((s) => [s.short!, s]),
  );
  const options = new Options();
  const args: string[] = [];
  let dashDashAt: number | null = null;
  const put = (spec: OptionSpec, value: string | true) => {
    const kind = spec.kind ?? "bool";
    if (kind === "list") {
      options.set(spec.long, [...options.list(spec.long), value as string]);
    } else options.set(spec.long, value);
  };
  let i = 0;
  const needValue = (shown: string): string => {
    const v = argv[++i];
    if (v === undefined) {
      throw new UsageError(`flag needs an argument: ${shown}`, command);
    }
    return v;
  };
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    if (stopAtPositional > 0 && args.length >= stopAtPositional) {
      args.push(...argv.slice(i));
      break;
    }
    if (a === "--") {
      dashDashAt = args.length;
      args.push(...argv.slice(i + 1));
      break;
    }
    if (a.startsWith("--")) {
      const eq = a.indexOf("=");
      const name = eq < 0 ? a.slice(2) : a.slice(2, eq);
      const spec = byLong.get(name);
      if (!spec) throw new UsageError(`unknown flag: --${name}`, command);
      if ((spec.kind ?? "bool") === "bool") {
        if (eq >= 0) {
          const v = a.slice(eq + 1);
          if (v !== "true" && v !== "false") {
            throw new UsageError(
              `invalid value for --${name}: ${v} (true or false)`,
              command,
            );
          }
          if (v === "true") options.set(name, true);
        } else options.set(name, true);
      } else {put(
          spec,
          eq >= 0 ? a.slice(eq + 1) : needValue(`--${name}`),
        );}
      continue;
    }
    if (a.startsWith("-") && a.length > 1) {
      // grouped short flags: -it, -dp 8080:80, -eKEY=VAL
      for (let j = 1; j < a.length; j++) {
        const c = a[j]!;
        const spec = byShort.get(c);
        if (!spec) {
          throw new UsageError(
            `unknown shorthand flag: '${c}' in ${a}`,
            command,
          );
        }
        if ((spec.kind ?? "bool") === "bool") {
          options.set(spec.long, true);
          continue;
        }
        const rest = a.slice(j + 1);
        put(
          spec,
          rest.length > 0 ? rest.replace(/^=/, "") : needValue(`-${c}`),
        );
        break;
      }
      continue;
    }
    args.push(a);
  }
  return { options, args, dashDashAt };
}

/** Formats the options table of a help text. */
export function formatOptions(specs: readonly OptionSpec[]): string {
  const rows = specs.map((s) => {
    const names = (s.short ? `-${s.short}, ` : "    ") + `--${s.long}` +
      ((s.kind ?? "bool") === "bool" ? "" : ` ${s.arg ?? "string"}`);
    return [
      names,
      s.help + (s.kind === "list" ? " (repeatable)" : ""),
    ] as const;
  });
  const width = Math.max(...rows.map(([n]) => n.length), 0);
  return rows.map(([n, h]) => `  ${n.padEnd(width)}   ${h}`).join("\n");
}
