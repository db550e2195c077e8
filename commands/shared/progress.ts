/**
 * Progress on stderr for long transfers, only when stderr is a terminal:
 * silent for the first second, then one self-overwriting line.
 */

import { formatBytes } from "./cli.ts";
import { every, type Timer } from "../../lib/timer.ts";

const encoder = new TextEncoder();

export class Progress {
  readonly started = performance.now();
  #label: string;
  #bytes = 0;
  #timer: Timer | undefined;
  #shown = false;
  #total: number | undefined;

  constructor(label: string, enabled = Deno.stderr.isTerminal()) {
    this.#label = label;
    if (enabled) this.#timer = every(250, () => this.#draw());
  }

  /** Records the bytes moved so far; cheap enough to call per block. */
  update = (bytes: number): void => {
    this.#bytes = bytes;
  };

  /** The size of the whole transfer, when known: progress then shows a percentage and an ETA. */
  setTotal = (bytes: number): void => {
    this.#total = bytes;
  };

  /** What the line says the transfer is (a job's current file). */
  setLabel(label: string): void {
    this.#label = label;
  }

  /** Stops drawing and clears the line. */
  stop(): void {
    this.#timer?.cancel();
    this.#timer = undefined;
    if (this.#shown) Deno.stderr.writeSync(encoder.encode("\r\x1b[K"));
  }

  /** "1.5 MiB in 0.3 s (5.0 MiB/s)". */
  summary(bytes: number): string {
    const seconds = (performance.now() - this.started) / 1000;
    const rate = seconds > 0 ? ` (${formatBytes(bytes / seconds)}/s)` : "";
    return `${formatBytes(bytes)} in ${seconds.toFixed(1)} s${rate}`;
  }

  #draw(): void {
    if (performance.now() - this.started < 1000) return;
    this.#shown = true;
    let line = `${this.#label}: ${this.summary(this.#bytes)}`;
    if (this.#total && this.#bytes > 0) {
      const seconds = (performance.now() - this.started) / 1000;
      const eta = (this.#total - this.#bytes) / (this.#bytes / seconds);
      const percent = Math.floor((this.#bytes / this.#total) * 100);
      line += `, ${percent}% of ${formatBytes(this.#total)}, ${Math.ceil(eta)} s left`;
    }
    Deno.stderr.writeSync(encoder.encode(`\r\x1b[K${line}`));
  }
}
