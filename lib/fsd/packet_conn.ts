/**
 * A TCP connection that reads and writes fsd packets, with a timeout.
 *
 * The timeout counts while a read or write is waiting: a peer that sends
 * nothing (or stops reading) for that long has the connection closed under
 * it, and the waiting call throws `Deno.errors.TimedOut`. One timer per
 * connection, re-armed lazily, keeps the per-packet cost to a few stores.
 */

import { encodeError, type Packet, PacketDecoder } from "./codec.ts";
import type { DecoderOptions } from "./codec.ts";
import { closeQuietly } from "../bytes/source_sink.ts";

/** Sees a connection's bytes as they go (tracing, capture files); chunks are only valid during the call. */
export interface ConnTap {
  sent(bytes: Uint8Array): void;
  received(bytes: Uint8Array): void;
  /** The connection closed (by either side, or by us). */
  closed(): void;
}

export interface PacketConnConfig extends DecoderOptions {
  tap?: ConnTap;
  /** Milliseconds a read or write may wait; 0 waits forever (default 60 s). */
  timeoutMs?: number;
}

export class PacketConn {
  readonly conn: Deno.Conn;
  readonly timeoutMs: number;
  #decoder: PacketDecoder;
  #waitingSince = -1;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timedOut = false;
  #closed = false;
  #tap: ConnTap | undefined;
  /** Writes under way (at most one from a handler; a shutdown checks it). */
  #writes = 0;

  constructor(conn: Deno.Conn, options: PacketConnConfig = {}) {
    this.conn = conn;
    this.#tap = options.tap;
    this.timeoutMs = options.timeoutMs ?? 60_000;
    this.#decoder = new PacketDecoder(options);
    try {
      (conn as Deno.TcpConn).setNoDelay?.(true);
    } catch {
      // not a TCP socket, or already closed: nothing to tune
    }
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Bytes received and not yet read as packets (a client that sent ahead of the answers). */
  get pending(): number {
    return this.#decoder.buffered;
  }

  /** Accepts DAT packets of up to `size` bytes of data from now on (a negotiated block size). */
  setMaxDataSize(size: number): void {
    this.#decoder.setMaxDataSize(size);
  }

  /** Decodes SUM packets from now on (while a transfer with sha256 runs), or no longer. */
  acceptSum(on: boolean): void {
    this.#decoder.acceptSum = on;
  }

  /** Hands back bytes read past the protocol's start (a first read made by hand) to be decoded. */
  unread(bytes: Uint8Array): void {
    this.#tap?.received(bytes);
    this.#decoder.push(bytes);
  }

  /** The next packet, or null when the peer closed the connection cleanly. */
  async readPacket(): Promise<Packet | null> {
    for (;;) {
      const packet = this.#decoder.next();
      if (packet) return packet;
      const into = this.#decoder.reserve();
      const n = await this.#wait(this.conn.read(into));
      if (n === null) return this.#decoder.endOfStream();
      this.#tap?.received(into.subarray(0, n));
      this.#decoder.commit(n);
    }
  }

  /** Writes all of `bytes`. */
  async write(bytes: Uint8Array): Promise<void> {
    this.#tap?.sent(bytes);
    let written = 0;
    this.#writes++;
    try {
      while (written < bytes.length) {
        written += await this.#wait(this.conn.write(bytes.subarray(written)));
      }
    } finally {
      this.#writes--;
    }
  }

  /**
   * Ends the connection from outside its handler (a shutdown): sends ERR
   * when no write is under way (bytes of a half-written packet must not mix
   * with it) and the peer takes it within `waitMs`, then closes.
   */
  async closeWithError(code: number, message: string, waitMs = 200): Promise<void> {
    if (this.#closed) return;
    if (this.#writes === 0) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<void>((resolve) => timer = setTimeout(resolve, waitMs));
      await Promise.race([this.sendError(code, message), late]);
      clearTimeout(timer);
    }
    this.close();
  }

  /** Sends ERR, ignoring a connection that is already broken. */
  async sendError(code: number, message: string): Promise<void> {
    if (this.#closed) return;
    try {
      await this.write(encodeError(code, message));
    } catch {
      // the peer is gone; there is nobody to tell
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#tap?.closed();
    clearTimeout(this.#timer);
    this.#timer = undefined;
    closeQuietly(this.conn);
  }

  async #wait<T>(operation: Promise<T>): Promise<T> {
    this.#waitingSince = performance.now();
    if (this.timeoutMs > 0 && this.#timer === undefined && !this.#closed) {
      this.#timer = setTimeout(this.#watch, this.timeoutMs);
    }
    try {
      return await operation;
    } catch (error) {
      if (this.#timedOut) {
        throw new Deno.errors.TimedOut(
          `timed out: nothing from the peer for ${this.timeoutMs / 1000} s`,
        );
      }
      throw error;
    } finally {
      this.#waitingSince = -1;
    }
  }

  #watch = (): void => {
    this.#timer = undefined;
    if (this.#waitingSince < 0 || this.#closed) return;
    const waited = performance.now() - this.#waitingSince;
    if (waited >= this.timeoutMs) {
      this.#timedOut = true;
      this.close();
    } else {
      this.#timer = setTimeout(this.#watch, this.timeoutMs - waited);
    }
  };
}
