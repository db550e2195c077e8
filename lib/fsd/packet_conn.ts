/**
 * A TCP connection that reads and writes fsd packets, with a timeout.
 *
 * The timeout counts while a read or write is waiting: a peer that sends
 * nothing (or stops reading) for that long has the connection closed under
 * it, and the waiting call throws `Deno.errors.TimedOut`. One timer per
 * connection, re-armed lazily, keeps the per-packet cost to a few stores;
 * the timers are lib/timer.ts's (a client never loads node:timers).
 */

import { encodeError, type Packet, PacketDecoder } from "./codec.ts";
import type { DecoderOptions } from "./codec.ts";
import { closeQuietly, concat } from "../bytes/source_sink.ts";
import type { StreamConn } from "../net/stream_conn.ts";
import { after, Deadline, every, orAfter, type Timer } from "../timer.ts";

/** Sees a connection's bytes as they go (tracing, capture files); chunks are only valid during the call. */
export interface ConnTap {
  sent(bytes: Uint8Array): void;
  received(bytes: Uint8Array): void;
  /** The connection closed (by either side, or by us). */
  closed(): void;
}

export interface PacketConnConfig extends DecoderOptions {
  tap?: ConnTap;
  /** Once a packet's first byte has arrived, the whole packet must within this long (0: no limit). */
  requestTimeoutMs?: number;
  /** Milliseconds a read or write may wait; 0 waits forever (default 60 s). */
  timeoutMs?: number;
}

/** Longest a held write (`writeSoon`) waits for a write to go with; a multiple of it at worst. */
const HOLD_MS = 20;

export class PacketConn {
  readonly conn: StreamConn;
  readonly timeoutMs: number;
  #decoder: PacketDecoder;
  /** The idle timeout: set while a read or write waits, cleared when it is done. */
  readonly #idle = new Deadline(() => {
    this.#timedOut = true;
    this.close();
  });
  #timedOut = false;
  #closed = false;
  #tap: ConnTap | undefined;
  /** Writes under way (at most one from a handler; a shutdown checks it). */
  #writes = 0;
  readonly requestTimeoutMs: number;
  /** Runs while a packet is partly received: its deadline. */
  #packetTimer: Timer | undefined;
  /** Deadlines set from outside (login grace), and the rate check. */
  #deadlines = new Set<Timer>();
  #rateTimer: Timer | undefined;
  /** Bytes moved either way since the rate was last checked. */
  #moved = 0;
  /** Why a deadline other than the idle timeout cut the connection, for the log. */
  #cutReason: string | undefined;
  /** Bytes held for the next write (`writeSoon`), and the tick that sends them if none comes. */
  #held: Uint8Array | undefined;
  readonly #holding = new Deadline(() => {
    if (this.#held) this.write(new Uint8Array(0)).catch(() => {});
  });

  constructor(conn: StreamConn, options: PacketConnConfig = {}) {
    this.conn = conn;
    this.#tap = options.tap;
    this.timeoutMs = options.timeoutMs ?? 60_000;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 0;
    this.#decoder = new PacketDecoder(options);
    try {
      conn.setNoDelay?.(true);
    } catch {
      // not a TCP socket, or already closed: nothing to tune
    }
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Accepts DAT packets of up to `size` bytes of data from now on (a negotiated block size). */
  setMaxDataSize(size: number): void {
    this.#decoder.setMaxDataSize(size);
  }

  /** Decodes SUM packets with a digest of `size` bytes from now on (while a transfer with a checksum runs); 0: no longer. */
  acceptSum(size: number): void {
    this.#decoder.sumSize = size;
  }

  /** Hands back bytes read past the protocol's start (a first read made by hand) to be decoded. */
  unread(bytes: Uint8Array): void {
    this.#tap?.received(bytes);
    this.#decoder.push(bytes);
  }

  /** The next packet, or null when the peer closed the connection cleanly. */
  async readPacket(): Promise<Packet | null> {
    if (this.#held) await this.write(new Uint8Array(0));
    for (;;) {
      const packet = this.#decoder.next();
      if (packet) return packet;
      const into = this.#decoder.reserve();
      const n = await this.#wait(this.conn.read(into));
      if (n === null) {
        this.#endPacket();
        return this.#decoder.endOfStream();
      }
      this.#tap?.received(into.subarray(0, n));
      this.#decoder.commit(n);
      this.#moved += n;
      const done = this.#decoder.next();
      if (done) {
        this.#endPacket();
        return done;
      }
      if (this.requestTimeoutMs > 0 && this.#packetTimer === undefined && !this.#closed) {
        const seconds = this.requestTimeoutMs / 1000;
        this.#packetTimer = after(
          this.requestTimeoutMs,
          () => this.#cut(`request timeout: a packet took over ${seconds} s to arrive`),
        );
      }
    }
  }

  #endPacket(): void {
    this.#packetTimer?.cancel();
    this.#packetTimer = undefined;
  }

  /** Bytes received and not yet read as packets (a client that sent ahead of the answers). */
  get pending(): number {
    return this.#decoder.buffered;
  }

  /** Why a deadline (not the idle timeout) cut the connection, if one did. */
  get cutReason(): string | undefined {
    return this.#cutReason;
  }

  /** Cuts the connection after `ms` unless the returned function is called first. */
  cutAfter(ms: number, reason: string): () => void {
    const timer = after(ms, () => {
      this.#deadlines.delete(timer);
      this.#cut(reason);
    });
    this.#deadlines.add(timer);
    return () => {
      timer.cancel();
      this.#deadlines.delete(timer);
    };
  }

  /**
   * While on, the connection must move at least `bytesPerSecond` (read and
   * written together) in every `windowMs`, or it is cut; off: `undefined`.
   */
  minimumRate(rate: { bytesPerSecond: number; windowMs: number } | undefined): void {
    this.#rateTimer?.cancel();
    this.#rateTimer = undefined;
    this.#moved = 0;
    if (!rate || rate.bytesPerSecond <= 0 || this.#closed) return;
    const floor = rate.bytesPerSecond * rate.windowMs / 1000;
    this.#rateTimer = every(rate.windowMs, () => {
      if (this.#moved < floor) {
        this.#cut(
          `too slow: under ${rate.bytesPerSecond} bytes/s for ${rate.windowMs / 1000} s`,
        );
      }
      this.#moved = 0;
    });
  }

  #cut(reason: string): void {
    if (this.#closed) return;
    this.#cutReason = reason;
    this.#timedOut = true;
    this.close();
  }

  /**
   * Holds `bytes` (copied) for the next write, which sends them first in the
   * same socket write; a read sends them before it waits, `close` sends them,
   * and when nothing comes for HOLD_MS a timer does (one timer per
   * connection, re-armed lazily: a per-file timer costs a wake-up each). A
   * write failing there surfaces on the connection's next use.
   */
  writeSoon(bytes: Uint8Array): void {
    this.#held = this.#held ? concat(this.#held, bytes) : bytes.slice();
    this.#holding.in(HOLD_MS);
  }

  /** Writes all of `bytes` (after any held by `writeSoon`). */
  async write(bytes: Uint8Array): Promise<void> {
    if (this.#held) {
      bytes = bytes.length === 0 ? this.#held : concat(this.#held, bytes);
      this.#held = undefined;
      this.#holding.clear();
    }
    this.#tap?.sent(bytes);
    let written = 0;
    this.#writes++;
    try {
      while (written < bytes.length) {
        const n = await this.#wait(this.conn.write(bytes.subarray(written)));
        written += n;
        this.#moved += n;
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
    if (this.#writes === 0) await orAfter(this.sendError(code, message), waitMs, undefined);
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
    this.#holding.stop();
    const held = this.#held;
    this.#held = undefined;
    if (held) {
      // Held bytes (a last ACK) still go out: the write starts before the close, and a small
      // one completes at once on an idle socket; the peer that misses it sees the close.
      this.#tap?.sent(held);
      this.conn.write(held).catch(() => {});
    }
    this.#closed = true;
    this.#tap?.closed();
    this.#idle.stop();
    this.#endPacket();
    for (const timer of this.#deadlines) timer.cancel();
    this.#deadlines.clear();
    this.#rateTimer?.cancel();
    this.#rateTimer = undefined;
    closeQuietly(this.conn);
  }

  async #wait<T>(operation: Promise<T>): Promise<T> {
    if (this.timeoutMs > 0) this.#idle.in(this.timeoutMs);
    try {
      return await operation;
    } catch (error) {
      if (this.#timedOut) {
        throw new Deno.errors.TimedOut(
          this.#cutReason ?? `timed out: nothing from the peer for ${this.timeoutMs / 1000} s`,
        );
      }
      throw error;
    } finally {
      this.#idle.clear();
    }
  }
}
