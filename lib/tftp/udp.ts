/**
 * UDP for TFTP, over node:dgram: a bound socket whose datagrams are queued
 * (bounded) for `receive`, and a `Channel` that talks with one peer: the
 * peer's transfer ID is its address and port, and datagrams from anyone
 * else get ERROR 5 without disturbing the transfer (RFC 1350 section 4).
 */

import dgram from "node:dgram";
import { listenError } from "../net/listen.ts";
import { ErrorCode } from "../store/errors.ts";
import { encodeError } from "./codec.ts";

export interface Endpoint {
  address: string;
  port: number;
}

/** Datagrams and bytes kept waiting for `receive`; more are dropped, as a full socket buffer would. */
const MAX_QUEUED = 4096;
const MAX_QUEUED_BYTES = 2 * 1024 * 1024;

export interface Datagram {
  bytes: Uint8Array;
  from: Endpoint;
}

/** A bound UDP socket. */
export class UdpSocket {
  readonly #socket: dgram.Socket;
  readonly #queue: Datagram[] = [];
  #waiter: ((datagram: Datagram | null) => void) | undefined;
  #closed = false;
  /** Sends not yet handed to the system: closing waits for them, or they would be lost. */
  #sending = 0;
  #queuedBytes = 0;
  #onDatagram: ((datagram: Datagram) => void) | undefined;

  private constructor(socket: dgram.Socket) {
    this.#socket = socket;
    socket.on("message", (message: Uint8Array, info: dgram.RemoteInfo) => {
      const datagram = { bytes: message, from: { address: info.address, port: info.port } };
      if (this.#onDatagram) return this.#onDatagram(datagram);
      const waiter = this.#waiter;
      if (waiter) {
        this.#waiter = undefined;
        waiter(datagram);
      } else if (
        this.#queue.length < MAX_QUEUED && this.#queuedBytes + message.length <= MAX_QUEUED_BYTES
      ) {
        this.#queue.push(datagram);
        this.#queuedBytes += message.length;
      }
    });
    socket.on("error", () => {}); // a send to a vanished peer: UDP gives no promises
  }

  /** Binds `hostname` port `port` (0: any); a failure is a ListenError. */
  static async bind(hostname: string, port: number): Promise<UdpSocket> {
    // node:dgram reports a missing permission as an uncaught error, not to the caller: ask first.
    const permission = Deno.permissions.querySync({ name: "net", host: `${hostname}:${port}` });
    if (permission.state !== "granted") {
      throw new Deno.errors.NotCapable(
        `cannot bind UDP ${hostname} port ${port}: needs --allow-net=${hostname}`,
      );
    }
    const socket = dgram.createSocket({ type: hostname.includes(":") ? "udp6" : "udp4" });
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once("error", reject);
        socket.bind(port, hostname, () => {
          socket.off("error", reject);
          resolve();
        });
      });
    } catch (error) {
      socket.close();
      throw listenError(error, hostname, port);
    }
    return new UdpSocket(socket);
  }

  /** Binds a free port in `lo`..`hi` (tried from a random start), or throws. */
  static async bindInRange(hostname: string, [lo, hi]: [number, number]): Promise<UdpSocket> {
    const count = hi - lo + 1;
    const start = Math.floor(Math.random() * count);
    for (let i = 0; i < count; i++) {
      try {
        return await UdpSocket.bind(hostname, lo + (start + i) % count);
      } catch {
        // taken: the next one
      }
    }
    throw new Error(`no free port in ${lo}:${hi}`);
  }

  get port(): number {
    return this.#socket.address().port;
  }

  get address(): string {
    return this.#socket.address().address;
  }

  /** Hands every datagram to `handler` instead of queueing it (for the request socket). */
  onDatagram(handler: (datagram: Datagram) => void): void {
    this.#onDatagram = handler;
  }

  send(bytes: Uint8Array, to: Endpoint): void {
    if (this.#closed) return;
    this.#sending++;
    this.#socket.send(bytes, to.port, to.address, () => {
      if (--this.#sending === 0 && this.#closed) this.#socket.close();
    });
  }

  /** The next datagram, or null after `timeoutMs` or once closed. */
  receive(timeoutMs: number): Promise<Datagram | null> {
    const queued = this.#queue.shift();
    if (queued) {
      this.#queuedBytes -= queued.bytes.length;
      return Promise.resolve(queued);
    }
    if (this.#closed) return Promise.resolve(null);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#waiter = undefined;
        resolve(null);
      }, timeoutMs);
      this.#waiter = (datagram) => {
        clearTimeout(timer);
        resolve(datagram);
      };
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#queue.length = 0;
    this.#queuedBytes = 0;
    if (this.#sending === 0) this.#socket.close();
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.(null);
  }
}

/** Whether a reply from `actual` may come from the host we sent to (a name: any address). */
function addressMatches(sentTo: string, actual: string): boolean {
  if (sentTo === "localhost") return actual === "127.0.0.1" || actual === "::1";
  const isIp = /^[\d.]+$/.test(sentTo) || sentTo.includes(":");
  return !isIp || sentTo === actual;
}

function sameEndpoint(a: Endpoint, b: Endpoint): boolean {
  return a.port === b.port && a.address === b.address;
}

/**
 * One transfer's socket and its peer. Until the peer is known (a client
 * waiting for the server's first answer), the first datagram from the
 * expected address fixes it.
 */
/** Sees a transfer's datagrams as they go (the live page); bytes are only valid during the call. */
export interface DatagramTap {
  sent(bytes: Uint8Array): void;
  received(bytes: Uint8Array): void;
}

export class Channel {
  readonly socket: UdpSocket;
  #peer: Endpoint;
  #peerKnown: boolean;
  #tap: DatagramTap | undefined;

  constructor(socket: UdpSocket, peer: Endpoint, peerKnown = true, tap?: DatagramTap) {
    this.socket = socket;
    this.#peer = peer;
    this.#peerKnown = peerKnown;
    this.#tap = tap;
  }

  get peer(): Endpoint {
    return this.#peer;
  }

  send(bytes: Uint8Array): void {
    this.#tap?.sent(bytes);
    this.socket.send(bytes, this.#peer);
  }

  /**
   * The next datagram from the peer, or null when `deadline` (a
   * performance.now() time) passes first. Strangers get ERROR 5.
   */
  async receive(deadline: number): Promise<Uint8Array | null> {
    for (;;) {
      const left = deadline - performance.now();
      if (left <= 0 || this.socket.closed) return null;
      const datagram = await this.socket.receive(left);
      if (!datagram) return null;
      if (!this.#peerKnown && addressMatches(this.#peer.address, datagram.from.address)) {
        this.#peer = datagram.from;
        this.#peerKnown = true;
      }
      if (sameEndpoint(datagram.from, this.#peer)) {
        this.#tap?.received(datagram.bytes);
        return datagram.bytes;
      }
      this.socket.send(
        encodeError(ErrorCode.UNKNOWN_TRANSFER, "unknown transfer ID"),
        datagram.from,
      );
    }
  }

  close(): void {
    this.socket.close();
  }
}
