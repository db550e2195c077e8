/**
 * What a TFTP transfer needs of the network: datagrams to and from one peer,
 * a wait with a deadline, and a clock. `UdpChannel` is the one over a UDP
 * socket (lib/net's `bindUdp`): the peer's transfer ID is its address and
 * port, and datagrams from anyone else get ERROR 5 without disturbing the
 * transfer (RFC 1350 section 4) -- except an ERROR, which is never answered
 * (no ERROR ping-pong between two transfers). `memoryChannelPair` joins two
 * ends in memory with a virtual clock, so loss, duplication and reordering
 * are tested without sockets or timers.
 */

import type { Endpoint } from "../net/endpoint.ts";
import { MAX_DATAGRAM, type UdpSocket } from "../net/udp.ts";
import { ErrorCode } from "../store/errors.ts";
import { encodeError, Opcode } from "./codec.ts";
import { Deadline } from "../timer.ts";

export type { Endpoint };

export interface DatagramChannel {
  /** Where datagrams go (a client learns the server's port from its first answer). */
  readonly peer: Endpoint;
  readonly closed: boolean;
  /**
   * The bytes of waiting datagrams the socket keeps (its receive buffer),
   * where known: Deno's own socket cannot tell (nor be asked for more).
   */
  readonly receiveBuffer?: number;
  /** The clock deadlines are read against (performance.now() for a socket). */
  now(): number;
  /** Sends one datagram to the peer; `bytes` may be reused once this returns. */
  send(bytes: Uint8Array): void;
  /**
   * The next datagram from the peer, or null once `deadline` (a `now()`
   * time) passes or the channel closes. The bytes are valid until the next
   * call.
   */
  receive(deadline: number): Promise<Uint8Array | null>;
  close(): void;
}

/** Whether a reply from `actual` may come from the host we sent to (a name: any address). */
function addressMatches(sentTo: string, actual: string): boolean {
  if (sentTo === "localhost") return actual === "127.0.0.1" || actual === "::1";
  const isIp = /^[\d.]+$/.test(sentTo) || sentTo.includes(":");
  return !isIp || sentTo === actual;
}

function sameEndpoint(a: Endpoint, b: Endpoint): boolean {
  return a.port === b.port && a.hostname === b.hostname;
}

/** An ERROR, whole or truncated (atftpd's CVE-2019-11365): never answered. */
export function isError(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0 && bytes[1] === Opcode.ERROR;
}

const TIMED_OUT = Symbol("timed out");

/** Sees every datagram of a transfer, sent and received (a capture: --pcap). */
export type DatagramTap = (
  sent: boolean,
  bytes: Uint8Array,
  local: Endpoint,
  peer: Endpoint,
) => void;

/** What a channel needs of its socket besides a receive. */
interface PeerSocket {
  readonly local: Endpoint;
  readonly closed: boolean;
  send(data: Uint8Array, to: Endpoint): unknown;
  close(): void;
}

/**
 * One transfer's socket and its peer, whatever the socket waits on. Until
 * the peer is known (a client waiting for the server's first answer), the
 * first datagram from the expected address fixes it; datagrams from anyone
 * else get ERROR 5, except an ERROR.
 */
export abstract class PeerChannel<S extends PeerSocket> implements DatagramChannel {
  readonly socket: S;
  #peer: Endpoint;
  #peerKnown: boolean;
  readonly #tap: DatagramTap | undefined;

  constructor(socket: S, peer: Endpoint, peerKnown: boolean, tap?: DatagramTap) {
    this.socket = socket;
    this.#peer = peer;
    this.#peerKnown = peerKnown;
    this.#tap = tap;
  }

  get peer(): Endpoint {
    return this.#peer;
  }

  get closed(): boolean {
    return this.socket.closed;
  }

  now(): number {
    return performance.now();
  }

  send(bytes: Uint8Array): void {
    this.#tap?.(true, bytes, this.socket.local, this.#peer);
    this.socket.send(bytes, this.#peer);
  }

  abstract receive(deadline: number): Promise<Uint8Array | null>;
  abstract close(): void;

  /** `bytes` if `from` is the peer (learned now, if due); else null, a stranger told ERROR 5. */
  protected admit(bytes: Uint8Array, from: Endpoint): Uint8Array | null {
    if (!this.#peerKnown && addressMatches(this.#peer.hostname, from.hostname)) {
      this.#peer = from;
      this.#peerKnown = true;
    }
    if (sameEndpoint(from, this.#peer)) {
      this.#tap?.(false, bytes, this.socket.local, from);
      return bytes;
    }
    if (!isError(bytes)) {
      this.socket.send(encodeError(ErrorCode.UNKNOWN_TRANSFER, "Unknown transfer ID"), from);
    }
    return null;
  }
}

/** A transfer's channel on lib/net's socket, waiting in Deno's event loop. One receive buffer serves it. */
export class UdpChannel extends PeerChannel<UdpSocket> {
  readonly #buffer = new Uint8Array(MAX_DATAGRAM);
  /** A receive still waiting after a deadline passed: the next call waits on it. */
  #pending: Promise<[Uint8Array, Endpoint] | null> | undefined;
  /** The wait in progress: how to end it, and its deadline. */
  #wake: ((value: typeof TIMED_OUT) => void) | undefined;
  readonly #deadline = new Deadline(() => this.#timeOut());

  constructor(socket: UdpSocket, peer: Endpoint, peerKnown = true, tap?: DatagramTap) {
    super(socket, peer, peerKnown, tap);
  }

  async receive(deadline: number): Promise<Uint8Array | null> {
    for (;;) {
      if (deadline - performance.now() <= 0 || this.socket.closed) return null;
      this.#pending ??= this.socket.receive(this.#buffer).catch(() => null);
      const result = await this.#until(this.#pending, deadline);
      if (result === TIMED_OUT) return null;
      this.#pending = undefined;
      if (result === null) return null; // closed
      const bytes = this.admit(result[0], result[1]);
      if (bytes) return bytes;
    }
  }

  /**
   * `pending`'s result, or TIMED_OUT at `deadline`. One `Deadline` serves the
   * channel, so a datagram costs no timer set and cancelled.
   */
  #until<T>(pending: Promise<T>, deadline: number): Promise<T | typeof TIMED_OUT> {
    return new Promise((resolve) => {
      this.#wake = resolve as (value: typeof TIMED_OUT) => void;
      pending.then((value) => {
        if (this.#wake === resolve) {
          this.#wake = undefined;
          this.#deadline.clear();
        }
        resolve(value);
      });
      this.#deadline.set(deadline);
    });
  }

  close(): void {
    this.#deadline.stop();
    this.socket.close();
    this.#timeOut();
  }

  /** Ends the wait in progress, if any, as timed out. */
  #timeOut(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.(TIMED_OUT);
  }
}

/** What the in-memory network does with one datagram: deliver it, lose it, deliver it twice, or hold it back until after the next. */
export type Fate = "pass" | "drop" | "duplicate" | "delay";

/** One end of `memoryChannelPair`. */
export class MemoryChannel implements DatagramChannel {
  readonly peer: Endpoint;
  /** Every datagram this end sent, as sent (tests count and inspect them). */
  readonly sent: Uint8Array[] = [];
  #other!: MemoryChannel;
  #clock!: { now: number; waits: number };
  #fate: (bytes: Uint8Array, index: number) => Fate = () => "pass";
  #queue: Uint8Array[] = [];
  #held: Uint8Array | undefined;
  #closed = false;
  #waiting:
    | { deadline: number; order: number; wake: (bytes: Uint8Array | null) => void }
    | undefined;

  private constructor(peer: Endpoint) {
    this.peer = peer;
  }

  /**
   * Two joined ends; `fate` decides each datagram an end sends (by its
   * index among that end's sends). Time stands still while either end
   * works, and jumps to the nearest deadline when both wait with nothing
   * to receive.
   */
  static pair(
    fate: { a?: (bytes: Uint8Array, index: number) => Fate; b?: typeof fate.a } = {},
  ): [MemoryChannel, MemoryChannel] {
    const a = new MemoryChannel({ hostname: "memory-b", port: 2 });
    const b = new MemoryChannel({ hostname: "memory-a", port: 1 });
    const clock = { now: 0, waits: 0 };
    a.#other = b;
    b.#other = a;
    a.#clock = b.#clock = clock;
    if (fate.a) a.#fate = fate.a;
    if (fate.b) b.#fate = fate.b;
    return [a, b];
  }

  get closed(): boolean {
    return this.#closed;
  }

  now(): number {
    return this.#clock.now;
  }

  send(bytes: Uint8Array): void {
    if (this.#closed) return;
    const copy = bytes.slice();
    const fate = this.#fate(copy, this.sent.length);
    this.sent.push(copy);
    if (fate === "drop") return;
    if (fate === "delay") {
      const earlier = this.#held;
      this.#held = copy;
      if (earlier) this.#other.#deliver(earlier);
      return;
    }
    this.#other.#deliver(copy);
    if (fate === "duplicate") this.#other.#deliver(copy);
    const held = this.#held;
    this.#held = undefined;
    if (held) this.#other.#deliver(held);
  }

  receive(deadline: number): Promise<Uint8Array | null> {
    const next = this.#queue.shift();
    if (next) return Promise.resolve(next);
    if (this.#closed || deadline <= this.#clock.now) return Promise.resolve(null);
    return new Promise((resolve) => {
      this.#waiting = { deadline, order: this.#clock.waits++, wake: resolve };
      queueMicrotask(() => this.#advance());
    });
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#queue = [];
    this.#wake(null);
    queueMicrotask(() => this.#other.#advance());
  }

  #deliver(bytes: Uint8Array): void {
    if (this.#closed) return;
    if (this.#waiting) this.#wake(bytes);
    else this.#queue.push(bytes);
  }

  #wake(value: Uint8Array | null): void {
    const waiting = this.#waiting;
    this.#waiting = undefined;
    waiting?.wake(value);
  }

  /**
   * When no end can move (each waits, or is closed), time jumps to the
   * nearest deadline; of two equal ones, the wait that began first ends
   * first (as on a network, where its datagram went out first).
   */
  #advance(): void {
    const ends = [this, this.#other];
    if (ends.some((end) => !end.#closed && !end.#waiting)) return;
    const waiting = ends.filter((end) => end.#waiting);
    if (waiting.length === 0) return;
    const key = (end: MemoryChannel) => [end.#waiting!.deadline, end.#waiting!.order];
    const first = waiting.reduce((x, y) => {
      const [dx, ox] = key(x);
      const [dy, oy] = key(y);
      return dx < dy || (dx === dy && ox < oy) ? x : y;
    });
    this.#clock.now = Math.max(this.#clock.now, first.#waiting!.deadline);
    first.#wake(null);
  }
}
