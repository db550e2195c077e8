/**
 * Idle timeouts for stream servers that have no packet framing of their
 * own (the echo servers, the TCP relay): a connection that moves no byte
 * either way for `ms` is closed. Touching is cheap (a time stamp, no timer
 * reset per chunk): a `Deadline`.
 */

import { Deadline } from "../timer.ts";

export class IdleTimer {
  readonly #deadline: Deadline;

  /** `ms` 0: never idle. `onIdle` runs once, after `ms` without a touch. */
  constructor(readonly ms: number, onIdle: () => void) {
    this.#deadline = new Deadline(() => {
      this.#deadline.stop();
      onIdle();
    });
    this.touch();
  }

  /** Something moved: the idle time starts again. */
  touch(): void {
    if (this.ms > 0) this.#deadline.in(this.ms);
  }

  stop(): void {
    this.#deadline.stop();
  }
}

/** A byte stream's reads and writes, each touching `timer`. */
export interface Duplex {
  read(p: Uint8Array): Promise<number | null>;
  write(p: Uint8Array): Promise<number>;
  close(): void;
}

/** `conn` with every read and write touching `timer`. */
export function touching(conn: Duplex, timer: IdleTimer): Duplex {
  return {
    async read(p) {
      const n = await conn.read(p);
      timer.touch();
      return n;
    },
    async write(p) {
      const n = await conn.write(p);
      timer.touch();
      return n;
    },
    close: () => conn.close(),
  };
}
