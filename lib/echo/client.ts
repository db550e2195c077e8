/** The client side of the echo tools: a channel over TCP (lines) or UDP (datagrams), and RTT figures. */

import { bindUdp } from "../net/udp.ts";
import { isLoopback, plainAddress } from "../net/ip.ts";
import { readLines } from "../bytes/lines.ts";
import { closeQuietly, writeAll } from "../bytes/source_sink.ts";
import { after, type Timer } from "../timer.ts";

export interface EchoChannel {
  send(text: string): Promise<void>;
  /** The next message from the server; null after `timeoutMs` (0: no limit) or once it has closed. */
  receive(timeoutMs: number): Promise<string | null>;
  /** No more messages from us (TCP: shuts the write half; UDP: nothing to do). */
  finish(): Promise<void>;
  /** The server closed the connection (TCP only). */
  readonly ended: boolean;
  close(): void;
}

/** Messages waiting to be received, and receivers waiting for messages. */
class Inbox<T = string> {
  ended = false;
  #items: T[] = [];
  #waiters: ((text: T | null) => void)[] = [];

  push(text: T): void {
    const waiter = this.#waiters.shift();
    if (waiter) waiter(text);
    else this.#items.push(text);
  }

  end(): void {
    this.ended = true;
    for (const waiter of this.#waiters.splice(0)) waiter(null);
  }

  next(timeoutMs: number): Promise<T | null> {
    if (this.#items.length > 0) return Promise.resolve(this.#items.shift()!);
    if (this.ended) return Promise.resolve(null);
    return new Promise((resolve) => {
      let timer: Timer | undefined;
      const waiter = (text: T | null) => {
        timer?.cancel();
        resolve(text);
      };
      this.#waiters.push(waiter);
      if (timeoutMs > 0) {
        timer = after(timeoutMs, () => {
          this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
          resolve(null);
        });
      }
    });
  }
}

export async function openEchoChannel(
  hostname: string,
  port: number,
  udp: boolean,
  tap?: EchoTap,
): Promise<EchoChannel> {
  return udp ? await openUdp(hostname, port, tap) : await openTcp(hostname, port, tap);
}

async function openTcp(hostname: string, port: number, tap?: EchoTap): Promise<EchoChannel> {
  const conn = await Deno.connect({ hostname, port });
  conn.setNoDelay(true);
  const ends = { local: (conn.localAddr as Deno.NetAddr).port, remote: port };
  const source = {
    async read(p: Uint8Array): Promise<number | null> {
      const n = await conn.read(p);
      if (n !== null) tap?.received(p.slice(0, n), ends);
      return n;
    },
  };
  const inbox = new Inbox();
  const reading = (async () => {
    for await (const line of readLines(source)) inbox.push(line);
    inbox.end();
  })();
  const encoder = new TextEncoder();
  return {
    send: (text) => {
      const bytes = encoder.encode(text + "\n");
      tap?.sent(bytes, ends);
      return writeAll(conn, bytes);
    },
    receive: (timeoutMs) => inbox.next(timeoutMs),
    finish: () => conn.closeWrite(),
    get ended() {
      return inbox.ended;
    },
    close() {
      closeQuietly(conn);
      reading.catch(() => {});
      tap?.closed();
    },
  };
}

/** A UDP channel that also moves datagrams as bytes. */
export interface UdpChannel extends EchoChannel {
  sendBytes(bytes: Uint8Array): Promise<void>;
  /** The next datagram as it came; null after `timeoutMs` (0: no limit). */
  receiveBytes(timeoutMs: number): Promise<Uint8Array | null>;
}

const utf8 = new TextDecoder();

/** The ports of an echo client's socket and of the server. */
export interface EchoEnds {
  local: number;
  remote: number;
}

/** What a capture sees of an echo client: the bytes each way, and the end. */
export interface EchoTap {
  sent(bytes: Uint8Array, ends: EchoEnds): void;
  received(bytes: Uint8Array, ends: EchoEnds): void;
  closed(): void;
}

/** Largest datagram read: the UDP maximum over IPv4. */
const MAX_DATAGRAM = 65507;

/**
 * A UDP channel to `hostname` port `port`, from a port of our own on
 * loopback when the server is there (so --allow-net=127.0.0.1 is enough),
 * else on the wildcard address. Only the server's datagrams are taken.
 */
export async function openUdp(hostname: string, port: number, tap?: EchoTap): Promise<UdpChannel> {
  const { lookup } = await import("node:dns/promises"); // loaded only when a name is looked up
  const address = plainAddress((await lookup(hostname)).address);
  const wildcard = address.includes(":") ? "::" : "0.0.0.0";
  // Loopback for a loopback server, when --allow-net grants it any port (else the wildcard, as
  // with --allow-net=HOST:PORT,0.0.0.0).
  const local = isLoopback(address) &&
      (await Deno.permissions.query({ name: "net", host: address })).state === "granted"
    ? address
    : wildcard;
  const socket = await bindUdp(local, 0);
  const server = { hostname: address, port };
  const ends = { local: socket.local.port, remote: port };
  const inbox = new Inbox<Uint8Array>();
  const reading = (async () => {
    const buffer = new Uint8Array(MAX_DATAGRAM);
    for (;;) {
      let data: Uint8Array, from: { hostname: string; port: number };
      try {
        [data, from] = await socket.receive(buffer);
      } catch {
        if (inbox.ended) return;
        continue; // an ICMP error for an earlier datagram
      }
      if (plainAddress(from.hostname) !== address || from.port !== port) continue;
      const bytes = data.slice();
      tap?.received(bytes, ends);
      inbox.push(bytes);
    }
  })();
  const sendBytes = async (bytes: Uint8Array) => {
    tap?.sent(bytes, ends);
    await socket.send(bytes, server);
  };
  const receiveBytes = (timeoutMs: number) => inbox.next(timeoutMs);
  return {
    send: (text) => sendBytes(new TextEncoder().encode(text)),
    sendBytes,
    receive: async (timeoutMs) => {
      const bytes = await receiveBytes(timeoutMs);
      return bytes && utf8.decode(bytes).replace(/\r?\n$/, "");
    },
    receiveBytes,
    finish: () => Promise.resolve(),
    ended: false,
    close() {
      if (inbox.ended) return;
      inbox.end();
      socket.close();
      reading.catch(() => {});
      tap?.closed();
    },
  };
}

export interface RttSummary {
  sent: number;
  received: number;
  lossPercent: number;
  min: number;
  avg: number;
  max: number;
  /** Mean deviation as ping computes it: the standard deviation of the round trips. */
  mdev: number;
}

/** Round-trip statistics in ping's terms, from the times (ms) of the replies that came. */
export function summarize(sent: number, rtts: number[]): RttSummary {
  const received = rtts.length;
  const avg = received ? rtts.reduce((a, b) => a + b, 0) / received : 0;
  const meanSquare = received ? rtts.reduce((a, b) => a + b * b, 0) / received : 0;
  return {
    sent,
    received,
    lossPercent: sent ? Math.round(((sent - received) / sent) * 1000) / 10 : 0,
    min: received ? Math.min(...rtts) : 0,
    avg,
    max: received ? Math.max(...rtts) : 0,
    mdev: Math.sqrt(Math.max(0, meanSquare - avg * avg)),
  };
}
