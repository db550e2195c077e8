/** One progress line for a whole job of files: bytes so far over the job, the current file's name. */

import { Progress } from "../shared/progress.ts";

/** How one file's transfer tells its progress. */
export interface FileProgress {
  begin(name: string): void;
  /** The file's size, when the server tells it. */
  size(bytes: number): void;
  /** Bytes of this file moved so far. */
  update(bytes: number): void;
  /** The file is done: `bytes` moved. */
  end(bytes: number): void;
}

export class JobProgress implements FileProgress {
  #progress: Progress;
  #done = 0;
  /** Bytes of the files in flight on other lanes (--jobs). */
  #moving = 0;
  #files = 0;
  #count: number;

  #total: number | undefined;
  /** Files still being found (get -r lists while files move): never a one-file job. */
  #growing: boolean;

  constructor(verb: string, count: number, total?: number, enabled?: boolean, growing = false) {
    this.#count = count;
    this.#total = total;
    this.#growing = growing;
    this.#progress = new Progress(verb, enabled);
    if (total !== undefined) this.#progress.setTotal(total);
  }

  /** One more file found, of `size` bytes when known. */
  grow(size: number | undefined): void {
    this.#count++;
    this.#total = size === undefined || this.#total === undefined ? undefined : this.#total + size;
    if (this.#total !== undefined) this.#progress.setTotal(this.#total);
  }

  begin(name: string): void {
    this.#files = Math.min(this.#files + 1, this.#count);
    const of = this.#count > 1 ? ` (${this.#files} of ${this.#count})` : "";
    this.#progress.setLabel(`${name}${of}`);
  }

  /** The current file's size, when the server tells it (only a one-file job shows it). */
  size = (bytes: number): void => {
    if (this.#count === 1 && !this.#growing) this.#progress.setTotal(bytes);
  };

  update = (bytes: number): void => {
    this.#progress.update(this.#done + this.#moving + bytes);
  };

  end(bytes: number): void {
    this.#done += bytes;
    this.#progress.update(this.#done + this.#moving);
  }

  /** The progress of one of several files moving at once: each adds its bytes to the job's line. */
  lane(): FileProgress {
    let current = 0;
    const settle = () => {
      this.#moving -= current;
      current = 0;
    };
    return {
      begin: (name) => {
        settle();
        this.begin(name);
      },
      size: this.size,
      update: (bytes) => {
        this.#moving += bytes - current;
        current = bytes;
        this.#progress.update(this.#done + this.#moving);
      },
      end: (bytes) => {
        settle();
        this.end(bytes);
      },
    };
  }

  summary(bytes: number): string {
    return this.#progress.summary(bytes);
  }

  stop(): void {
    this.#progress.stop();
  }
}
