/**
 * What every subcommand shares: flag parsing, argument checks, the usage
 * error, and human-friendly numbers. Nothing here touches the network.
 */

import { parseArgs, type ParseArgsConfig } from "node:util";
import { errorMessage } from "../../lib/bytes/source_sink.ts";
import { ListenError } from "../../lib/net/listen.ts";

/** A command line that does not make sense; the top level prints it and exits with 2. */
export class UsageError extends Error {
  readonly exitCode = 2;
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/**
 * An expected failure of a command (a file that is not there, a server that
 * refused, a port that is taken); the top level prints its message on one
 * line and exits with 1. `cause` keeps what went wrong underneath.
 */
export class CommandError extends Error {
  readonly exitCode = 1;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "CommandError";
  }
}

/** Whether `error` is one of the runtime's own errors (Deno.errors: not found, refused, timed out, ...). */
export function isSystemError(error: unknown): error is Error {
  return Object.values(Deno.errors).some((type) => error instanceof type);
}

/**
 * Rethrows an expected failure (a port that cannot be had, a file or
 * directory that is not there, a refused connection) as a CommandError
 * with the original as its cause; anything else, a bug, as it is.
 */
export function expectedFailure(error: unknown): never {
  if (error instanceof ListenError || isSystemError(error)) {
    throw new CommandError(error.message, { cause: error });
  }
  throw error;
}

export interface Command {
  name: string;
  /** One line for `fsd --help`. */
  summary: string;
  /** The full `fsd NAME --help` text. */
  help: string;
  run(args: string[]): Promise<void>;
}

/** The flags a command takes, as node:util parseArgs describes them. */
export type FlagSpecs = NonNullable<ParseArgsConfig["options"]>;

/** What parseArgs makes of a command line with `T`'s flags: each flag's value typed as declared. */
export type ParsedCommandLine<T extends FlagSpecs> = ReturnType<
  typeof parseArgs<{ options: T; allowPositionals: true; strict: true }>
>;

/**
 * Parses `args` against `flags` (plus --help). Unknown flags and missing
 * values become UsageErrors. Returns undefined when --help was asked for,
 * after printing `help`.
 */
export function parseCommandLine<const T extends FlagSpecs>(
  args: string[],
  flags: T,
  help: string,
): ParsedCommandLine<T> | undefined {
  let parsed;
  try {
    parsed = parseArgs({
      args: joinNegativeValues(args, flags),
      options: { ...flags, help: { type: "boolean", short: "h" } as const },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    throw new UsageError(cleanParseError(error));
  }
  if ((parsed.values as { help?: boolean }).help) {
    console.log(help);
    return undefined;
  }
  return parsed as ParsedCommandLine<T>;
}

/**
 * `--latency -5` as `--latency=-5`, so that a negative number reaches the
 * flag's own parser and its range error, instead of node's "ambiguous".
 */
function joinNegativeValues(args: string[], flags: FlagSpecs): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--") return [...out, ...args.slice(i)];
    const name = arg.startsWith("--") ? arg.slice(2) : undefined;
    const spec = name === undefined ? undefined : (flags as Record<string, { type: string }>)[name];
    if (spec?.type === "string" && /^-\d/.test(args[i + 1] ?? "")) {
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
  // node's messages are long and end with advice about "--"; keep the first sentence.
  const first = message.split(/\.\s/)[0].replace(/\.$/, "");
  return first.charAt(0).toLowerCase() + first.slice(1);
}

/** Checks the number of positional arguments. */
export function expectPositionals(
  positionals: string[],
  min: number,
  max: number,
  usage: string,
): void {
  if (positionals.length < min) throw new UsageError(`missing arguments: usage: ${usage}`);
  if (positionals.length > max) {
    throw new UsageError(`unexpected argument: ${positionals[max]}: usage: ${usage}`);
  }
}

/** A port, `min`..65535, digits only: 0 (any free port) is for listening, a peer's port starts at 1. */
export function parsePort(text: string, min: 0 | 1 = 0): number {
  if (!/^\d{1,5}$/.test(text) || Number(text) > 65535 || Number(text) < min) {
    throw new UsageError(`invalid port: ${text}: expected a number from ${min} to 65535`);
  }
  return Number(text);
}

/** A duration in seconds (fractions allowed), returned in milliseconds; 0 is allowed when `zero` is. */
export function parseSeconds(text: string, flag: string, zero = false): number {
  if (/^-\d/.test(text)) {
    throw new UsageError(
      `invalid ${flag}: ${text}: out of range: expected ${
        zero ? "0 or more" : "more than 0"
      } seconds`,
    );
  }
  const seconds = /^\d+(\.\d+)?$/.test(text) ? Number(text) : NaN;
  if (!Number.isFinite(seconds) || (!zero && seconds === 0)) {
    throw new UsageError(`invalid ${flag}: ${text}: expected a number of seconds`);
  }
  return Math.round(seconds * 1000);
}

/** 1536 -> "1.5 KiB". */
export function formatBytes(bytes: number): string {
  const units = ["bytes", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} bytes` : `${value.toFixed(1)} ${units[unit]}`;
}

/** A count: digits only, `min` or more. */
export function parseCount(text: string, flag: string, min = 0): number {
  if (/^-\d/.test(text)) {
    throw new UsageError(`invalid ${flag}: ${text}: out of range: expected ${min} or more`);
  }
  if (!/^\d{1,9}$/.test(text) || Number(text) < min) {
    throw new UsageError(
      `invalid ${flag}: ${text}: expected a whole number${min > 0 ? ` from ${min}` : ""}`,
    );
  }
  return Number(text);
}

const SIZE_UNITS: Record<string, number> = {
  "": 1,
  K: 1024,
  M: 1024 ** 2,
  G: 1024 ** 3,
  T: 1024 ** 4,
};

/** A size in bytes: `1048576`, `512K`, `100M`, `8G`, `1T` (binary units; `MiB`, `MB` mean the same). */
export function parseSize(text: string, flag: string): number {
  const match = /^(\d+)(?:([KMGT])(?:i?B)?)?$/i.exec(text);
  if (!match) throw new UsageError(`invalid ${flag}: ${text}: expected a size such as 500M or 8G`);
  return Number(match[1]) * SIZE_UNITS[(match[2] ?? "").toUpperCase()];
}

/**
 * Listens for SIGINT and SIGTERM, calling `stop(n)` on the n-th signal, and
 * returns a promise that settles when the first such call finishes. The
 * listeners go in at once, so the caller can announce that it is running
 * only after this returns and still be stopped cleanly right away.
 */
export function stopOnSignal(stop: (signals: number) => Promise<void>): Promise<void> {
  let signals = 0;
  let first: Promise<void> | undefined;
  let resolve!: () => void;
  const done = new Promise<void>((r) => resolve = r);
  const onSignal = () => {
    signals++;
    const stopping = stop(signals);
    if (!first) first = stopping;
    stopping.then(() => {
      Deno.removeSignalListener("SIGINT", onSignal);
      Deno.removeSignalListener("SIGTERM", onSignal);
      resolve();
    });
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  return done;
}
