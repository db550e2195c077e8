/**
 * A TCP relay between clients and one target, both ways, with faults.
 *
 * Each direction is a pipe that reads with `read()` and writes with
 * `write()`, so backpressure holds (a slow side slows the other) and
 * half-close works: when one side finishes sending, the other side's write
 * half is shut with `closeWrite()` and the rest still flows. Faults are
 * named as toxiproxy names them and apply per direction: "up" is client to
 * target, "down" is target to client.
 */

import { writeAll } from "../bytes/source_sink.ts";
import { AcceptLoop } from "../net/accept_loop.ts";
import { listenTcp } from "../net/listen.ts";

export type Direction = "up" | "down";

export interface Faults {
  /** Delay every chunk by this much (plus up to `jitterMs` either way). */
  latencyMs?: number;
  jitterMs?: number;
  /** Cap the rate at this many kilobytes (1000 bytes) per second. */
  bandwidthKBps?: number;
  /** Pass data on in writes of at most this many bytes. */
  sliceBytes?: number;
  /** Close the connection once this many bytes have passed in this direction. */
  limitDataBytes?: number;
  /** Abort the connection this long after it opened. */
  resetAfterMs?: number;
  /** Pass no data at all; close the connection after this long (0: hold it open). */
  timeoutMs?: number;
  /** Change each byte passed with this probability (0 to 1): XOR with a random non-zero byte. */
  corruptRate?: number;
}

export type RelayEvent =
  | { event: "connection"; id: number; address: string; port: number }
  | { event: "connect-failed"; id: number; message: string }
  | {
    event: "close";
    id: number;
    /** Bytes passed on in each direction. */
    up: number;
    down: number;
    /** Socket writes made in each direction (slices show here). */
    upWrites: number;
    downWrites: number;
    reason: string;
  };

export interface RelayOptions {
  /** Port to listen on (0: any). */
  port: number;
  /** Address to listen on (default 0.0.0.0). */
  hostname?: string;
  targetHost: string;
  targetPort: number;
  faults?: Partial<Record<Direction, Faults>>;
  /** Called with every chunk as it arrives, before any fault; `chunk` is only valid during the call. */
  onData?: (id: number, direction: Direction, chunk: Uint8Array) => void;
  log?: (event: RelayEvent) => void;
}

/** Read buffers start small (idle connections stay cheap) and double while reads fill them more than half. */
const FIRST_CHUNK = 16 * 1024;
const CHUNK = 256 * 1024;
/** Most bytes a delayed direction may hold before it stops reading (backpressure). */
const MAX_QUEUED = 1024 * 1024;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export class Relay {
  readonly addr: Deno.NetAddr;
  #accepting: AcceptLoop;
  #options: RelayOptions;
  #connections = new Set<Connection>();

  private constructor(listener: Deno.TcpListener, options: RelayOptions) {
    this.#options = options;
    this.addr = listener.addr;
    this.#accepting = new AcceptLoop(listener, { handle: (client, id) => this.#relay(client, id) });
  }

  static start(options: RelayOptions): Relay {
    return new Relay(listenTcp({ hostname: options.hostname, port: options.port }), options);
  }

  /** Stops accepting and aborts every connection. */
  async close(): Promise<void> {
    this.#accepting.stop();
    for (const connection of this.#connections) connection.abort("proxy closed");
    await this.#accepting.settled();
  }

  async #relay(client: Deno.TcpConn, id: number): Promise<void> {
    const log = this.#options.log ?? (() => {});
    const peer = client.remoteAddr as Deno.NetAddr;
    log({ event: "connection", id, address: peer.hostname, port: peer.port });
    let target: Deno.TcpConn;
    try {
      target = await Deno.connect({
        hostname: this.#options.targetHost,
        port: this.#options.targetPort,
      });
    } catch (error) {
      log({ event: "connect-failed", id, message: (error as Error).message });
      client.close();
      return;
    }
    const connection = new Connection(id, client, target, this.#options);
    this.#connections.add(connection);
    if (this.#accepting.stopping) connection.abort("proxy closed");
    const reason = await connection.run();
    this.#connections.delete(connection);
    const { up, down } = connection;
    log({
      event: "close",
      id,
      up: up.bytes,
      down: down.bytes,
      upWrites: up.writes,
      downWrites: down.writes,
      reason,
    });
  }
}

/** One client and its target connection. */
class Connection {
  readonly up: Pipe;
  readonly down: Pipe;
  #client: Deno.TcpConn;
  #target: Deno.TcpConn;
  #closed = false;
  #reason = "done";
  #timers: ReturnType<typeof setTimeout>[] = [];

  constructor(
    readonly id: number,
    client: Deno.TcpConn,
    target: Deno.TcpConn,
    options: RelayOptions,
  ) {
    this.#client = client;
    this.#target = target;
    for (const conn of [client, target]) conn.setNoDelay(true);
    const faults = options.faults ?? {};
    const trace = options.onData;
    this.up = new Pipe(client, target, faults.up ?? {}, this, trace && ((c) => trace(id, "up", c)));
    this.down = new Pipe(
      target,
      client,
      faults.down ?? {},
      this,
      trace && ((c) => trace(id, "down", c)),
    );
    for (const f of [faults.up, faults.down]) {
      if (f?.resetAfterMs !== undefined) this.#after(f.resetAfterMs, "reset-after");
      if (f?.timeoutMs) this.#after(f.timeoutMs, "timeout");
    }
  }

  async run(): Promise<string> {
    await Promise.all([this.up.run(), this.down.run()]);
    this.abort("done");
    for (const timer of this.#timers) clearTimeout(timer);
    return this.#reason;
  }

  /** Closes both sides at once; pending reads and writes end. */
  abort(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#reason = reason;
    for (const conn of [this.#client, this.#target]) {
      try {
        conn.close();
      } catch {
        // already closed
      }
    }
  }

  #after(ms: number, reason: string): void {
    this.#timers.push(setTimeout(() => this.abort(reason), ms));
  }
}

/** One direction: reads from `from`, applies the faults, writes to `to`. */
class Pipe {
  bytes = 0;
  writes = 0;
  #from: Deno.TcpConn;
  #to: Deno.TcpConn;
  #faults: Faults;
  #connection: Connection;
  #onData?: (chunk: Uint8Array) => void;
  // The queue between reader and writer, used only when data must wait (latency, bandwidth, slices).
  #queue: { data: Uint8Array | null; due: number }[] = [];
  #queued = 0;
  #wakeWriter: (() => void) | undefined;
  #wakeReader: (() => void) | undefined;
  /** Bytes to pass before the next one the corrupt fault changes. */
  #untilCorrupt = -1;

  constructor(
    from: Deno.TcpConn,
    to: Deno.TcpConn,
    faults: Faults,
    connection: Connection,
    onData?: (chunk: Uint8Array) => void,
  ) {
    this.#from = from;
    this.#to = to;
    this.#faults = faults;
    this.#connection = connection;
    this.#onData = onData;
  }

  async run(): Promise<void> {
    const f = this.#faults;
    const shaped = Boolean(f.latencyMs || f.jitterMs || f.bandwidthKBps || f.sliceBytes);
    const writer = shaped ? this.#writeQueued() : undefined;
    // Two buffers: the next read fills one while the last chunk is written from the other.
    const buffers = [new Uint8Array(FIRST_CHUNK), new Uint8Array(FIRST_CHUNK)];
    let which = 0;
    let writing: Promise<void> | undefined;
    let writeError: unknown;
    const settle = async () => {
      await writing;
      if (writeError !== undefined) throw writeError;
    };
    let eof = false;
    try {
      for (;;) {
        const n = await this.#from.read(buffers[which]);
        if (n === null) {
          eof = true;
          break;
        }
        let chunk = buffers[which].subarray(0, n);
        this.#onData?.(chunk);
        if (f.corruptRate) this.#corrupt(chunk, f.corruptRate);
        const full = n * 2 > buffers[which].length && buffers[which].length < CHUNK;
        if (f.timeoutMs !== undefined) continue; // the timeout fault: nothing gets through
        let last = false;
        if (f.limitDataBytes !== undefined && this.bytes + chunk.length >= f.limitDataBytes) {
          chunk = chunk.subarray(0, f.limitDataBytes - this.bytes);
          last = true;
        }
        if (shaped) {
          await this.#enqueue(chunk);
        } else {
          await settle(); // keep the order, and never reuse a buffer still being written
          writing = writeAll(this.#to, chunk).then(
            () => void this.writes++,
            (error) => void (writeError = error),
          );
          which ^= 1;
          // A read that fills most of its buffer means a stream is flowing: the buffer read next grows (the one
          // being written keeps its bytes until its write is done).
          if (full) buffers[which] = new Uint8Array(Math.min(CHUNK, buffers[which].length * 2));
        }
        this.bytes += chunk.length;
        if (last) {
          await settle();
          if (writer) await this.#finish(writer);
          this.#connection.abort("limit-data");
          return;
        }
      }
      await settle();
    } catch {
      // a side closed or was aborted: this direction is done
    }
    if (writer) await this.#finish(writer);
    // Pass the end of the stream on, unless the timeout fault holds the connection.
    if (eof && f.timeoutMs === undefined) {
      try {
        await this.#to.closeWrite();
      } catch {
        // the other side is gone already
      }
    }
  }

  /** The corrupt fault: gaps between changed bytes drawn from the geometric distribution of `rate`. */
  #corrupt(chunk: Uint8Array, rate: number): void {
    const gap = () =>
      Math.floor(Math.log(1 - Math.random()) / Math.log(1 - Math.min(rate, 0.999999)));
    if (this.#untilCorrupt < 0) this.#untilCorrupt = gap();
    let at = this.#untilCorrupt;
    while (at < chunk.length) {
      chunk[at] ^= 1 + Math.floor(Math.random() * 255);
      at += 1 + gap();
    }
    this.#untilCorrupt = at - chunk.length;
  }

  async #enqueue(chunk: Uint8Array): Promise<void> {
    while (this.#queued >= MAX_QUEUED) {
      await new Promise<void>((resolve) => this.#wakeReader = resolve);
    }
    const { latencyMs = 0, jitterMs = 0 } = this.#faults;
    const delay = Math.max(0, latencyMs + (jitterMs ? (Math.random() * 2 - 1) * jitterMs : 0));
    this.#queue.push({ data: chunk.slice(), due: performance.now() + delay });
    this.#queued += chunk.length;
    this.#wakeWriter?.();
  }

  async #finish(writer: Promise<void>): Promise<void> {
    this.#queue.push({ data: null, due: 0 });
    this.#wakeWriter?.();
    await writer;
  }

  /** Writes queued chunks when they are due, sliced and paced as the faults say. */
  async #writeQueued(): Promise<void> {
    const { bandwidthKBps, sliceBytes } = this.#faults;
    const bytesPerMs = bandwidthKBps ? bandwidthKBps : 0; // 1 KB/s is 1 byte per ms
    // Small pieces keep a capped rate smooth instead of bursty.
    const pieceSize = Math.max(
      1,
      Math.min(sliceBytes ?? CHUNK, bytesPerMs ? Math.ceil(bytesPerMs * 20) : CHUNK),
    );
    const started = performance.now();
    let paced = 0;
    try {
      for (;;) {
        while (this.#queue.length === 0) {
          await new Promise<void>((resolve) => this.#wakeWriter = resolve);
        }
        const { data, due } = this.#queue.shift()!;
        if (data === null) return;
        const wait = due - performance.now();
        if (wait > 0) await sleep(wait);
        for (let at = 0; at < data.length; at += pieceSize) {
          const piece = data.subarray(at, at + pieceSize);
          if (bytesPerMs) {
            paced += piece.length;
            const ahead = started + paced / bytesPerMs - performance.now();
            if (ahead > 0) await sleep(ahead);
          }
          await writeAll(this.#to, piece);
          this.writes++;
        }
        this.#queued -= data.length;
        this.#wakeReader?.();
      }
    } catch {
      // The other side is gone: drop what is left and end the connection,
      // or the reader would wait for room that never comes.
      this.#queue.length = 0;
      this.#queued = 0;
      this.#connection.abort("write failed");
      this.#wakeReader?.();
    }
  }
}
