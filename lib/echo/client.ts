/** The client side of the echo tools: a channel over TCP (lines) or UDP (datagrams), and RTT figures. */

import dgram from "node:dgram";
import { Buffer } from "node:buffer";
import { readLines } from "../bytes/lines.ts";
import { closeQuietly, writeAll } from "../bytes/source_sink.ts";

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
      let timer: ReturnType<typeof setTimeout> | undefined;
      const waiter = (text: T | null) => {
        clearTimeout(timer);
        resolve(text);
      };
      this.#waiters.push(waiter);
      if (timeoutMs > 0) {
        timer = setTimeout(() => {
          this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
          resolve(null);
        }, timeoutMs);
      }
    });
  }
}

export async function openEchoChannel(
  hostname: string,
  port: number,
  udp: boolean,
): Promise<EchoChannel> {
  return udp ? await openUdp(hostname, port) : await openTcp(hostname, port);
}

async function openTcp(hostname: string, port: number): Promise<EchoChannel> {
  const conn = await Deno.connect({ hostname, port });
  conn.setNoDelay(true);
  const inbox = new Inbox();
  const reading = (async () => {
    for await (const line of readLines(conn)) inbox.push(line);
    inbox.end();
  })();
  const encoder = new TextEncoder();
  return {
    send: (text) => writeAll(conn, encoder.encode(text + "\n")),
    receive: (timeoutMs) => inbox.next(timeoutMs),
    finish: () => conn.closeWrite(),
    get ended() {
      return inbox.ended;
    },
    close() {
      closeQuietly(conn);
      reading.catch(() => {});
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

export async function openUdp(hostname: string, port: number): Promise<UdpChannel> {
  const v6 = hostname.includes(":");
  const socket = dgram.createSocket(v6 ? "udp6" : "udp4");
  const inbox = new Inbox<Uint8Array>();
  socket.on("message", (message: Buffer) => inbox.push(new Uint8Array(message)));
  // Bind first: sending from an unbound socket needs to bind the wildcard anyway.
  await new Promise<void>((resolve, reject) => {
    socket.once("error", reject);
    socket.bind(0, v6 ? "::" : "0.0.0.0", () => resolve());
  });
  const sendBytes = (bytes: Uint8Array) =>
    new Promise<void>((resolve, reject) =>
      socket.send(bytes, port, hostname, (error) => error ? reject(error) : resolve())
    );
  const receiveBytes = (timeoutMs: number) => inbox.next(timeoutMs);
  return {
    send: (text) => sendBytes(Buffer.from(text)),
    sendBytes,
    receive: async (timeoutMs) => {
      const bytes = await receiveBytes(timeoutMs);
      return bytes && utf8.decode(bytes).replace(/\r?\n$/, "");
    },
    receiveBytes,
    finish: () => Promise.resolve(),
    ended: false,
    close() {
      inbox.end();
      socket.close();
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
