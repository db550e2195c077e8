/**
 * What the window logic needs of a connection: read a packet, write bytes,
 * bound the data size of the DAT packets it will accept. `PacketConn` is
 * the one over TCP; `memoryChannelPair` connects two ends in memory, for
 * unit tests of windows and block numbers without sockets.
 */

import { type Packet, PacketDecoder } from "./codec.ts";

export interface PacketTransport {
  /** The next packet, or null when the peer closed cleanly. */
  readPacket(): Promise<Packet | null>;
  /** Writes all of `bytes`. */
  write(bytes: Uint8Array): Promise<void>;
  /**
   * Sends `bytes` with the next write, in the same socket write (a last ACK
   * and the next request in one TCP segment), or on the next timer tick if
   * no write comes first; a read sends them before it waits. Without it,
   * `write`.
   */
  writeSoon?(bytes: Uint8Array): void;
  /** Accepts DAT packets of up to `size` bytes of data from now on. */
  setMaxDataSize(size: number): void;
  /** Decodes SUM packets with a digest of `size` bytes (integrity) from now on; 0: no longer. */
  acceptSum(size: number): void;
}

/** One end of an in-memory channel: what one end writes, the other reads, in order. */
export class MemoryEnd implements PacketTransport {
  #decoder = new PacketDecoder();
  /** What the peer wrote and this end has not read yet. */
  #incoming: Uint8Array[] = [];
  #peer!: MemoryEnd;
  #closed = false;
  #wake: (() => void) | undefined;
  /** Every write this end made, as written (tests count and inspect them). */
  readonly writes: Uint8Array[] = [];

  static pair(): [MemoryEnd, MemoryEnd] {
    const a = new MemoryEnd();
    const b = new MemoryEnd();
    a.#peer = b;
    b.#peer = a;
    return [a, b];
  }

  setMaxDataSize(size: number): void {
    this.#decoder.setMaxDataSize(size);
  }

  acceptSum(size: number): void {
    this.#decoder.sumSize = size;
  }

  async readPacket(): Promise<Packet | null> {
    for (;;) {
      const packet = this.#decoder.next();
      if (packet) return packet;
      // Into the decoder only when the reader asks, as a socket's bytes: a packet's data
      // stays valid until the next read, whatever the writer does meanwhile.
      const bytes = this.#incoming.shift();
      if (bytes) {
        this.#decoder.push(bytes);
        continue;
      }
      if (this.#closed) return this.#decoder.endOfStream();
      await new Promise<void>((resolve) => this.#wake = resolve);
    }
  }

  write(bytes: Uint8Array): Promise<void> {
    if (this.#peer.#closed) return Promise.reject(new Deno.errors.BrokenPipe("peer closed"));
    // A copy, as a socket takes one: the writer may reuse its buffer as soon as this returns.
    const sent = bytes.slice();
    this.writes.push(sent);
    this.#peer.#receive(sent);
    return Promise.resolve();
  }

  /** Ends this end's sending: the peer reads what is left, then null. */
  close(): void {
    this.#peer.#closed = true;
    this.#peer.#notify();
  }

  #receive(bytes: Uint8Array): void {
    this.#incoming.push(bytes);
    this.#notify();
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}
