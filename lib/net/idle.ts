/**
 * Idle timeouts for stream servers that have no packet framing of their
 * own (the echo servers, the TCP relay): a connection that moves no byte
 * either way for `ms` is closed. Touching is cheap (a time stamp, no timer
 * reset per chunk): the one timer re-arms itself for what is left.
 */

export class IdleTimer {
  #last = performance.now();
  #timer: ReturnType<typeof setTimeout> | undefined;

  /** `ms` 0: never idle. `onIdle` runs once, after `ms` without a touch. */
  constructor(readonly ms: number, readonly onIdle: () => void) {
    if (ms > 0) this.#arm(ms);
  }

  /** Something moved: the idle time starts again. */
  touch(): void {
    this.#last = performance.now();
  }

  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #arm(delay: number): void {
    this.#timer = setTimeout(() => {
      const idle = performance.now() - this.#last;
      if (idle >= this.ms) {
        this.#timer = undefined;
        this.onIdle();
      } else {
        this.#arm(this.ms - idle);
      }
    }, delay);
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
