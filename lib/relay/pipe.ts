/**
 * One direction of a relayed connection: reads, applies the faults, writes
 * on, with backpressure and half-close (see relay.ts).
 */

import { writeAll } from "../bytes/source_sink.ts";
import type { Faults } from "./faults.ts";

/** Read buffers start small (idle connections stay cheap) and double while reads fill them more than half. */
const FIRST_CHUNK = 16 * 1024;
const CHUNK = 256 * 1024;
/** Most bytes a delayed direction may hold before it stops reading (backpressure). */
const MAX_QUEUED = 1024 * 1024;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The connection a pipe belongs to: a pipe that must end it calls abort. */
export interface PipeOwner {
  abort(reason: string): void;
}

/** What a pipe tells about its direction: chunks read, chunks written, the end passed on. */
export interface PipeHooks {
  onData?: (chunk: Uint8Array) => void;
  onWrite?: (chunk: Uint8Array) => void;
  onEnd?: () => void;
}

/** One direction: reads from `from`, applies the faults, writes to `to`. */
export class Pipe {
  bytes = 0;
  writes = 0;
  #from: Deno.TcpConn;
  #to: Deno.TcpConn;
  #faults: Faults;
  #connection: PipeOwner;
  #hooks: PipeHooks;
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
    connection: PipeOwner,
    hooks: PipeHooks,
  ) {
    this.#from = from;
    this.#to = to;
    this.#faults = faults;
    this.#connection = connection;
    this.#hooks = hooks;
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
        this.#hooks.onData?.(chunk);
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
          this.#hooks.onWrite?.(chunk);
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
        this.#hooks.onEnd?.();
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
          this.#hooks.onWrite?.(piece);
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
