/**
 * One direction of a relayed connection: reads, runs the faults' toxics
 * (toxics.ts: what each fault does is there, not here), writes on, with
 * backpressure and half-close (see relay.ts).
 */

import { writeAll } from "../bytes/source_sink.ts";
import { type Faults, toxics } from "./faults.ts";
import type { Toxic } from "./toxics.ts";
import { sleep } from "../timer.ts";

/** Read buffers start small (idle connections stay cheap) and double while reads fill them more than half. */
const FIRST_CHUNK = 16 * 1024;
const CHUNK = 256 * 1024;
/** Most bytes a delayed direction may hold before it stops reading (backpressure). */
const MAX_QUEUED = 1024 * 1024;

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

/** One direction: reads from `from`, runs the toxics of its faults, writes to `to`. */
export class Pipe {
  bytes = 0;
  writes = 0;
  /** This direction's faults in effect, its own (some keep state). */
  readonly toxics: readonly Toxic[];
  #from: Deno.TcpConn;
  #to: Deno.TcpConn;
  #connection: PipeOwner;
  #hooks: PipeHooks;
  // The queue between reader and writer, used only when data must wait (latency, bandwidth, slices).
  #queue: { data: Uint8Array | null; due: number }[] = [];
  #queued = 0;
  #wakeWriter: (() => void) | undefined;
  #wakeReader: (() => void) | undefined;

  constructor(
    from: Deno.TcpConn,
    to: Deno.TcpConn,
    faults: Faults,
    connection: PipeOwner,
    hooks: PipeHooks,
  ) {
    this.#from = from;
    this.#to = to;
    this.toxics = toxics(faults);
    this.#connection = connection;
    this.#hooks = hooks;
  }

  async run(): Promise<void> {
    const transforms = this.toxics.filter((t) => t.transform);
    const ends = this.toxics.filter((t) => t.endsAt);
    const holdsEnd = this.toxics.some((t) => t.holdsEnd);
    // Data waits in a queue only where a toxic delays, slices or paces it.
    const shaped = this.toxics.some((t) => t.delay || t.pieceBytes || t.pace);
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
        let chunk: Uint8Array | null = buffers[which].subarray(0, n);
        this.#hooks.onData?.(chunk);
        const full = n * 2 > buffers[which].length && buffers[which].length < CHUNK;
        for (const toxic of transforms) {
          chunk = toxic.transform!(chunk, this.bytes);
          if (chunk === null) break;
        }
        if (chunk === null) continue; // dropped (the timeout fault: nothing gets through)
        const last = ends.some((t) => t.endsAt!(this.bytes + chunk!.length));
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
    // Pass the end of the stream on, unless a fault holds it back (timeout).
    if (eof && !holdsEnd) {
      try {
        await this.#to.closeWrite();
        this.#hooks.onEnd?.();
      } catch {
        // the other side is gone already
      }
    }
  }

  async #enqueue(chunk: Uint8Array): Promise<void> {
    while (this.#queued >= MAX_QUEUED) {
      await new Promise<void>((resolve) => this.#wakeReader = resolve);
    }
    const delay = Math.max(0, this.toxics.reduce((ms, t) => ms + (t.delay?.() ?? 0), 0));
    this.#queue.push({ data: chunk.slice(), due: performance.now() + delay });
    this.#queued += chunk.length;
    this.#wakeWriter?.();
  }

  async #finish(writer: Promise<void>): Promise<void> {
    this.#queue.push({ data: null, due: 0 });
    this.#wakeWriter?.();
    await writer;
  }

  /** Writes queued chunks when they are due, in pieces and at the pace the toxics say. */
  async #writeQueued(): Promise<void> {
    const pieceSize = Math.max(
      1,
      Math.min(CHUNK, ...this.toxics.map((t) => t.pieceBytes ?? CHUNK)),
    );
    const pacers = this.toxics.filter((t) => t.pace);
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
          const ahead = Math.max(0, ...pacers.map((t) => t.pace!(piece.length)));
          if (ahead > 0) await sleep(ahead);
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
