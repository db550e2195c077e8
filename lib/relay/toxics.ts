/**
 * Each fault's effect, one small type per fault (toxiproxy's "toxics"):
 * what it does to a chunk just read, how long the chunk waits, how it is
 * written (pieces, pace), and when it ends the connection. A Pipe runs
 * the toxics of its direction and knows no fault by name; faults.ts
 * declares the faults and makes each one's toxic.
 */

/** What one fault does to one direction of one connection (each connection gets its own). */
export interface Toxic {
  /** The fault's name (the proxy's flag): the reason given when it ends a connection. */
  readonly name: string;
  /** Changes a chunk just read (in place, or passes part of it), or drops it (null); `passed` bytes went before. */
  transform?(chunk: Uint8Array, passed: number): Uint8Array | null;
  /** Whether the direction ends, the connection aborted, once `passed` bytes have gone through. */
  endsAt?(passed: number): boolean;
  /** Milliseconds a chunk read now waits before it is written (added up over the toxics, at least 0). */
  delay?(): number;
  /** The largest write, in bytes. */
  readonly pieceBytes?: number;
  /** Milliseconds to wait before writing `bytes` more. */
  pace?(bytes: number): number;
  /** The connection is aborted this many milliseconds after it opens. */
  readonly abortAfterMs?: number;
  /** The end of the stream is held back instead of passed on. */
  readonly holdsEnd?: boolean;
}

/** latency: every chunk waits MS. */
export class Latency implements Toxic {
  readonly name = "latency";
  constructor(readonly ms: number) {}
  delay(): number {
    return this.ms;
  }
}

/** jitter: ... plus or minus up to MS more, at random. */
export class Jitter implements Toxic {
  readonly name = "jitter";
  constructor(readonly ms: number) {}
  delay(): number {
    return (Math.random() * 2 - 1) * this.ms;
  }
}

/** bandwidth: writes paced to KBPS kilobytes a second, in pieces of 20 ms each (smooth, not bursty). */
export class Bandwidth implements Toxic {
  readonly name = "bandwidth";
  readonly pieceBytes: number;
  readonly #bytesPerMs: number; // 1 KB/s is 1 byte per ms
  readonly #started = performance.now();
  #paced = 0;
  constructor(kbps: number) {
    this.#bytesPerMs = kbps;
    this.pieceBytes = Math.ceil(kbps * 20);
  }
  pace(bytes: number): number {
    this.#paced += bytes;
    return this.#started + this.#paced / this.#bytesPerMs - performance.now();
  }
}

/** slice: writes of at most BYTES. */
export class Slice implements Toxic {
  readonly name = "slice";
  constructor(readonly pieceBytes: number) {}
}

/** limit-data: BYTES pass, then the connection closes. */
export class LimitData implements Toxic {
  readonly name = "limit-data";
  constructor(readonly bytes: number) {}
  transform(chunk: Uint8Array, passed: number): Uint8Array {
    return chunk.subarray(0, Math.max(0, this.bytes - passed));
  }
  endsAt(passed: number): boolean {
    return passed >= this.bytes;
  }
}

/** reset-after: the connection is aborted MS after it opens. */
export class ResetAfter implements Toxic {
  readonly name = "reset-after";
  constructor(readonly abortAfterMs: number) {}
}

/** timeout: no data passes, nor the end; the connection closes after MS (0: held open until a side closes). */
export class Timeout implements Toxic {
  readonly name = "timeout";
  readonly holdsEnd = true;
  readonly abortAfterMs: number | undefined;
  constructor(ms: number) {
    this.abortAfterMs = ms > 0 ? ms : undefined;
  }
  transform(): null {
    return null;
  }
}

/** corrupt: each byte changed with probability RATE (XOR with a random non-zero byte). */
export class Corrupt implements Toxic {
  readonly name = "corrupt";
  /** Bytes to pass before the next one changed. */
  #until = -1;
  constructor(readonly rate: number) {}

  /** Gaps between changed bytes drawn from the geometric distribution of the rate. */
  transform(chunk: Uint8Array): Uint8Array {
    const gap = () =>
      Math.floor(Math.log(1 - Math.random()) / Math.log(1 - Math.min(this.rate, 0.999999)));
    if (this.#until < 0) this.#until = gap();
    let at = this.#until;
    while (at < chunk.length) {
      chunk[at] ^= 1 + Math.floor(Math.random() * 255);
      at += 1 + gap();
    }
    this.#until = at - chunk.length;
    return chunk;
  }
}
