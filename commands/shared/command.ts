/**
 * defineCommand: each flag of a command declared once, with its value type
 * and range, its default, its help line and the permission it adds; the
 * usage, `--help`, validation and permission list all come from that one
 * declaration. Parsing is argv.ts's (node:util's parseArgs rules).
 */

import { errorMessage } from "../../lib/bytes/source_sink.ts";
import { UsageError } from "./cli.ts";
import { type ArgOption, parseArgv } from "./argv.ts";
import { text, type ValueParser } from "./values.ts";

/** One flag: a switch (`type: "boolean"`) or a flag with a value read by `value` (default: text). */
export interface FlagSpec<T = unknown> {
  type?: "boolean";
  /** One letter: `-o` for `--output`. */
  short?: string;
  /** The placeholder in help: `--timeout SECONDS`. */
  arg?: string;
  /** What the flag does, for `--help` (may run over several lines). */
  help: string;
  /** How the text after the flag becomes its value (ranges, units); text as it is by default. */
  value?: ValueParser<T>;
  /** The value when the flag is not given, as it would be typed; shown as "(default ...)". */
  default?: string;
  /** May be given more than once; the values come as a list. */
  multiple?: true;
  /** The Deno permission the flag adds, e.g. `--allow-read=FILE`. */
  permission?: string;
  /** The sides of the command (see CommandSpec.side) the flag belongs to; every side when absent. */
  side?: string | readonly string[];
  /** A heading the flag is listed under, after the main options (a key of CommandSpec.groups). */
  group?: string;
  /**
   * An optional value: the flag takes the next argument only when it is one
   * of `words` (`--integrity sha256`); alone, its value is `value`.
   */
  bare?: { value: string; words: readonly string[] };
}

export type Flags = Record<string, FlagSpec>;

type ValueOf<F> = F extends { type: "boolean" } ? boolean
  : F extends { value: ValueParser<infer T> } ? (F extends { multiple: true } ? T[] : T)
  : F extends { multiple: true } ? string[]
  : string;

/** What a command's `run` receives for its flags: each value typed as declared. */
export type FlagValues<F extends Flags> = {
  [K in keyof F]: F[K] extends { type: "boolean" } ? boolean
    : F[K] extends { default: string } ? ValueOf<F[K]>
    : ValueOf<F[K]> | undefined;
};

export interface Parsed<F extends Flags> {
  values: FlagValues<F>;
  positionals: string[];
  /** The flags given on the command line (not those at their default). */
  given: string[];
  /** The side of the command this command line is on (CommandSpec.side), if it has sides. */
  side?: string;
}

export interface CommandSpec<F extends Flags> {
  name: string;
  /** The first line of `fsd NAME --help` (the one-line summary is main.ts's). */
  title: string;
  /** The usage line(s), each starting with `fsd NAME`. */
  usage: string | string[];
  /** What the command does, between the usage and the options. */
  about?: string;
  flags: F;
  /** Headings for flags with a `group`, listed after the main options in this order. */
  groups?: Record<string, string>;
  /** Text after the options (exit status, formats). */
  notes?: string;
  /** The permissions the command always needs ("none" when it needs none). */
  permissions: string;
  /** Said after the permission list: narrower forms, special cases. */
  permissionNotes?: string;
  examples: string[];
  /**
   * For a command with sides (echo's server and client, proxy's TCP and UDP
   * relays): which side a command line is on, and each side's name for the
   * message that refuses a flag of the other side.
   */
  side?: {
    of(positionals: string[], values: Record<string, unknown>): string;
    names: Record<string, string>;
  };
  run(parsed: Parsed<F>): Promise<void>;
}

/** A command as main.ts dispatches it. */
export interface Command {
  name: string;
  /** The full `fsd NAME --help` text. */
  help: string;
  /** The declarations the help came from (for the tests and the README's permission table). */
  spec: CommandSpec<Flags>;
  run(args: string[]): Promise<void>;
}

/** A command from its declaration. */
export function defineCommand<const F extends Flags>(spec: CommandSpec<F>): Command {
  for (const [name, flag] of Object.entries(spec.flags)) {
    if (flag.default !== undefined) parseValue(name, flag, flag.default); // a bad default fails at once
  }
  let help: string | undefined;
  const helpText = () => help ??= formatHelp(spec as unknown as CommandSpec<Flags>);
  return {
    name: spec.name,
    get help() {
      return helpText();
    },
    spec: spec as unknown as CommandSpec<Flags>,
    async run(args: string[]) {
      const parsed = parseFlags(args, spec.flags);
      if (!parsed) {
        console.log(helpText());
        return;
      }
      const side = spec.side?.of(parsed.positionals, parsed.values);
      if (spec.side && side !== undefined) refuseOtherSide(spec, parsed.given, side);
      await spec.run({ ...parsed, side });
    },
  };
}

/**
 * Parses `args` against `flags` (plus --help): unknown flags, missing values
 * and values out of range are UsageErrors. Undefined when --help was asked for.
 */
export function parseFlags<const F extends Flags>(
  args: string[],
  flags: F,
): Omit<Parsed<F>, "side"> | undefined {
  const options: Record<string, ArgOption> = { help: { type: "boolean", short: "h" } };
  for (const [name, flag] of Object.entries(flags)) {
    options[name] = {
      type: flag.type ?? "string",
      ...(flag.short && { short: flag.short }),
      ...(flag.multiple && { multiple: true }),
    };
  }
  let parsed;
  try {
    parsed = parseArgv(joinNegativeValues(args, flags), options);
  } catch (error) {
    throw new UsageError(cleanParseError(error));
  }
  const raw = parsed.values as Record<string, string | string[] | boolean | undefined>;
  if (raw.help) return undefined;
  const values: Record<string, unknown> = {};
  for (const [name, flag] of Object.entries(flags)) {
    const given = raw[name];
    if (flag.type === "boolean") values[name] = given === true;
    else if (Array.isArray(given)) values[name] = given.map((t) => parseValue(name, flag, t));
    else if (typeof given === "string") values[name] = parseValue(name, flag, given);
    else if (flag.default !== undefined) values[name] = parseValue(name, flag, flag.default);
  }
  const given = Object.keys(flags).filter((name) => raw[name] !== undefined);
  return { values: values as FlagValues<F>, positionals: parsed.positionals, given };
}

function parseValue(name: string, flag: FlagSpec, typed: string): unknown {
  return (flag.value ?? text).parse(typed, `--${name}`);
}

/** A flag that belongs to another side of the command is a usage error, not silently ignored. */
function refuseOtherSide<F extends Flags>(
  spec: CommandSpec<F>,
  given: string[],
  side: string,
): void {
  for (const name of given) {
    const sides = spec.flags[name].side;
    if (sides === undefined || [sides].flat().includes(side)) continue;
    const owners = [sides].flat().map((owner) => spec.side!.names[owner]).join(" and ");
    throw new UsageError(`--${name} is an option of ${owners}, not ${spec.side!.names[side]}`);
  }
}

/**
 * `--latency -5` as `--latency=-5`, so that a negative number reaches the
 * flag's own parser and its range error, instead of "ambiguous";
 * a flag with a `bare` value as `--flag=VALUE`.
 */
function joinNegativeValues(args: string[], flags: Flags): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--") return [...out, ...args.slice(i)];
    const name = arg.startsWith("--") ? arg.slice(2) : undefined;
    const spec = name === undefined ? undefined : flags[name];
    if (spec?.bare) {
      const next = args[i + 1];
      out.push(`${arg}=${spec.bare.words.includes(next) ? args[++i] : spec.bare.value}`);
    } else if (spec && spec.type !== "boolean" && /^-\d/.test(args[i + 1] ?? "")) {
      out.push(`${arg}=${args[++i]}`);
    } else {
      out.push(arg);
    }
  }
  return out;
}

function cleanParseError(error: unknown): string {
  const message = errorMessage(error);
  const negative = /^Unknown option '(-\d[^']*)'/.exec(message);
  if (negative) {
    return `unknown option '${
      negative[1]
    }': to pass a negative number as an argument, put it after --, as in: -- ${negative[1]}`;
  }
  // The messages are long and end with advice about "--"; keep the first sentence.
  const first = message.split(/\.\s/)[0].replace(/\.$/, "");
  return first.charAt(0).toLowerCase() + first.slice(1);
}

/** Labels longer than this put their help on the next line. */
const MAX_LABEL = 24;

/** `fsd NAME --help`, all of it from the declaration. */
export function formatHelp(spec: CommandSpec<Flags>): string {
  const usage = [spec.usage].flat();
  const entries = Object.entries(spec.flags);
  const label = (name: string, flag: FlagSpec) =>
    `${flag.short ? `-${flag.short}, ` : ""}--${name}${flag.arg ? ` ${flag.arg}` : ""}`;
  const width = Math.min(
    MAX_LABEL,
    Math.max(10, ...entries.map(([n, f]) => label(n, f).length).filter((l) => l <= MAX_LABEL)),
  );
  const line = (left: string, help: string) => {
    const indent = " ".repeat(width + 4);
    const lines = help.split("\n").map((l) => indent + l.trimStart());
    if (left.length <= width) lines[0] = `  ${left.padEnd(width)}  ${help.split("\n")[0]}`;
    else lines.unshift(`  ${left}`);
    return lines.join("\n");
  };
  const flagLine = ([name, flag]: [string, FlagSpec]) =>
    line(
      label(name, flag),
      flag.default === undefined ? flag.help : `${flag.help} (default ${flag.default})`,
    );
  const options = [
    ...entries.filter(([, f]) => f.group === undefined).map(flagLine),
    line("-h, --help", "show this help"),
  ];
  const groups = Object.entries(spec.groups ?? {}).map(([key, heading]) =>
    `\n\n${heading}\n${entries.filter(([, f]) => f.group === key).map(flagLine).join("\n")}`
  );
  const sections = [
    spec.title,
    `Usage: ${usage.join("\n       ")}`,
    ...(spec.about ? [spec.about] : []),
    `Options:\n${options.join("\n")}${groups.join("")}`,
    ...(spec.notes ? [spec.notes] : []),
    permissionSection(spec),
    `Examples:\n${spec.examples.map((e) => `  ${e}`).join("\n")}`,
  ];
  return sections.join("\n\n");
}

/**
 * The rows of a command's permissions, as README's table has them: first
 * [`fsd NAME`, what it always needs], then [`fsd NAME --flag ARG`, what the flag adds].
 */
export function permissionRows(spec: CommandSpec<Flags>): [string, string][] {
  const rows: [string, string][] = [[`fsd ${spec.name}`, spec.permissions]];
  for (const [name, flag] of Object.entries(spec.flags)) {
    if (flag.permission) {
      rows.push([`fsd ${spec.name} --${name}${flag.arg ? ` ${flag.arg}` : ""}`, flag.permission]);
    }
  }
  return rows;
}

function permissionSection(spec: CommandSpec<Flags>): string {
  const [[, own], ...added] = permissionRows(spec);
  const prefix = `fsd ${spec.name} `.length;
  const lines = [
    `Permissions: ${own}`,
    ...added.map(([flag, p]) => `  with ${flag.slice(prefix)}: ${p}`),
  ];
  if (spec.permissionNotes) lines.push(indentText(spec.permissionNotes, "  "));
  return lines.join("\n");
}

function indentText(text: string, indent: string): string {
  return text.split("\n").map((l) => indent + l).join("\n");
}
