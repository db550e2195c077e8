/**
 * A node:net or node:tls socket as a StreamConn: read, write, closeWrite,
 * close, addresses. Reads are
 * buffered with a bound: past `maxBuffered` bytes the socket is paused
 * until they are read, so a fast sender cannot fill memory.
 */

import type { Buffer } from "node:buffer";
import type { Socket } from "node:net";
import type { StreamConn } from "./stream_conn.ts";

export class NodeSocketConn implements StreamConn {
  readonly remoteAddr: Deno.NetAddr;
  readonly localAddr: Deno.NetAddr;
  #socket: Socket;
  #chunks: Uint8Array[] = [];
  #buffered = 0;
  #ended = false;
  #error: Error | undefined;
  #wake: (() => void) | undefined;
  #maxBuffered: number;

  constructor(socket: Socket, peer: { hostname: string; port: number }, maxBuffered = 1 << 20) {
    this.#socket = socket;
    this.#maxBuffered = maxBuffered;
    this.remoteAddr = {
      transport: "tcp",
      hostname: socket.remoteAddress ?? peer.hostname,
      port: socket.remotePort ?? peer.port,
    };
    this.localAddr = {
      transport: "tcp",
      hostname: socket.localAddress ?? "",
      port: socket.localPort ?? 0,
    };
    socket.on("data", (data: Buffer) => {
      this.#chunks.push(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      this.#buffered += data.byteLength;
      if (this.#buffered > this.#maxBuffered) socket.pause();
      this.#notify();
    });
    socket.on("end", () => {
      this.#ended = true;
      this.#notify();
    });
    socket.on("close", () => {
      this.#ended = true;
      this.#notify();
    });
    socket.on("error", (error: Error) => {
      this.#error = error;
      this.#notify();
    });
  }

  setNoDelay(noDelay = true): void {
    this.#socket.setNoDelay(noDelay);
  }

  async read(p: Uint8Array): Promise<number | null> {
    while (this.#chunks.length === 0) {
      if (this.#error) throw this.#error;
      if (this.#ended) return null;
      await new Promise<void>((resolve) => this.#wake = resolve);
    }
    const chunk = this.#chunks[0];
    const n = Math.min(p.length, chunk.length);
    p.set(chunk.subarray(0, n));
    if (n === chunk.length) this.#chunks.shift();
    else this.#chunks[0] = chunk.subarray(n);
    this.#buffered -= n;
    if (this.#buffered <= this.#maxBuffered / 2 && this.#socket.isPaused()) this.#socket.resume();
    return n;
  }

  write(p: Uint8Array): Promise<number> {
    if (this.#error) return Promise.reject(this.#error);
    if (this.#socket.destroyed) {
      return Promise.reject(new Deno.errors.BrokenPipe("connection closed"));
    }
    // node keeps a reference to `p` until the callback, and the caller reuses its buffer only
    // once this resolves: no copy needed.
    return new Promise((resolve, reject) => {
      this.#socket.write(p, (error?: Error | null) => error ? reject(error) : resolve(p.length));
    });
  }

  closeWrite(): Promise<void> {
    return new Promise((resolve) => this.#socket.end(() => resolve()));
  }

  /** Closes, saying so first (TLS: close_notify), so the peer sees a clean end. */
  close(): void {
    this.#ended = true;
    if (!this.#socket.destroyed) this.#socket.end(() => this.#socket.destroy());
    this.#notify();
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}
