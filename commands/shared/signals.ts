/**
 * How get and put stop on a signal: SIGINT, SIGTERM and SIGHUP all close
 * the connection, the transfer in progress fails, its staging file is
 * removed on the way out, and the command ends with one `fsd:` line and
 * exit status 128 + the signal's number (130, 143, 129), as shells report.
 */

const SIGNALS: Record<string, number> = { SIGINT: 2, SIGTERM: 15, SIGHUP: 1 };

/** An end with a chosen exit status; an empty message prints nothing. */
export class ExitError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode: number) {
    super(message);
    this.name = "ExitError";
    this.exitCode = exitCode;
  }
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
    return new ExitError(`interrupted by ${this.signal}`, 128 + SIGNALS[this.signal]);
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
