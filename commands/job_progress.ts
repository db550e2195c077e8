/** One progress line for a whole job of files: bytes so far over the job, the current file's name. */

import { Progress } from "./progress.ts";

export class JobProgress {
  #progress: Progress;
  #done = 0;
  #files = 0;
  #count: number;

  constructor(verb: string, count: number, total?: number) {
    this.#count = count;
    this.#progress = new Progress(verb);
    if (total !== undefined) this.#progress.setTotal(total);
  }

  begin(name: string): void {
    this.#files++;
    const of = this.#count > 1 ? ` (${this.#files} of ${this.#count})` : "";
    this.#progress.setLabel(`${name}${of}`);
  }

  /** The current file's size, when the server tells it (only a one-file job shows it). */
  size = (bytes: number): void => {
    if (this.#count === 1) this.#progress.setTotal(bytes);
  };

  update = (bytes: number): void => {
    this.#progress.update(this.#done + bytes);
  };

  end(bytes: number): void {
    this.#done += bytes;
    this.#progress.update(this.#done);
  }

  summary(bytes: number): string {
    return this.#progress.summary(bytes);
  }

  stop(): void {
    this.#progress.stop();
  }
}
