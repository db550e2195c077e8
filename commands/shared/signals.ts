/**
 * How get and put stop on a signal: SIGINT, SIGTERM and SIGHUP all close
 * the connection, the transfer in progress fails, its staging file is
 * removed on the way out, and the command ends with one `fsd:` line and
 * exit status 128 + the signal's number (130, 143, 129), as shells report.
 */

import { CommandError } from "./cli.ts";

const SIGNALS: Record<string, number> = { SIGINT: 2, SIGTERM: 15, SIGHUP: 1 };

/**
 * Whether `error` ends the whole job rather than one file: a signal (exit
 * 128 + N), a closed stdout (141), or a failure reported already (an empty
 * message).
 */
export function endsJob(error: unknown): error is CommandError {
  return error instanceof CommandError && (error.exitCode !== 1 || error.message === "");
}

/** Listens for the stop signals while a transfer command runs. */
export class Interruption implements Disposable {
  /** The signal that arrived, if one did. */
  signal: string | undefined;
  #onStop = new Set<() => void>();
  #listeners: [Deno.Signal, () => void][] = [];

  constructor() {
    for (const name of Object.keys(SIGNALS)) {
      const listener = () => this.#stop(name);
      Deno.addSignalListener(name as Deno.Signal, listener);
      this.#listeners.push([name as Deno.Signal, listener]);
    }
  }

  /** Runs `stop` on a signal (at once if one came already); returns a function that unregisters it. */
  onStop(stop: () => void): () => void {
    if (this.signal) stop();
    this.#onStop.add(stop);
    return () => this.#onStop.delete(stop);
  }

  /** If a signal came, the error to end with instead of `error`; else `error`. */
  explain(error: unknown): unknown {
    if (!this.signal) return error;
    return new CommandError(`interrupted by ${this.signal}`, {
      exitCode: 128 + SIGNALS[this.signal],
    });
  }

  /** Throws the interruption if a signal came (between files of a job). */
  check(): void {
    if (this.signal) throw this.explain(undefined);
  }

  #stop(name: string): void {
    this.signal ??= name;
    for (const stop of this.#onStop) stop();
  }

  [Symbol.dispose](): void {
    for (const [name, listener] of this.#listeners) Deno.removeSignalListener(name, listener);
    this.#listeners = [];
  }
}
