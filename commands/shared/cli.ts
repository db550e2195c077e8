/**
 * What every command shares: its two kinds of error, argument checks,
 * human-friendly numbers and stopping on a signal. Flags are declared with
 * defineCommand (command.ts), their values read by values.ts.
 */

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
 * refused, a port that is taken, a signal); the top level prints its message
 * on one line and exits with `exitCode` (default 1; 128 + N for signal N).
 * An empty message means it was reported already: the top level just exits.
 * `cause` keeps what went wrong underneath.
 */
export class CommandError extends Error {
  readonly exitCode: number;
  constructor(message: string, options?: { cause?: unknown; exitCode?: number }) {
    super(message, options);
    this.name = "CommandError";
    this.exitCode = options?.exitCode ?? 1;
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

/** 1536 -> "1.5 KiB"; 473.6 -> "474 bytes" (a rate). */
export function formatBytes(bytes: number): string {
  const units = ["bytes", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${Math.round(bytes)} bytes` : `${value.toFixed(1)} ${units[unit]}`;
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
