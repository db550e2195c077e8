/**
 * Large-chunk file I/O under block-sized transfers. Memory per transfer is
 * bounded: two buffers per side, reused. Chunks are 64 KiB at first and
 * 1 MiB once a transfer has moved 4 MiB (each file operation costs a hand-off
 * to Deno's I/O threads, so a long transfer wants few of them, while
 * thousands of short ones must stay small). A regular file is read ahead,
 * and written behind, while the network moves the other buffer. At most 64
 * transfers per process hold large buffers at once; the rest keep small ones.
 */

import { type ByteSink, type ByteSource, writeAll } from "./source_sink.ts";
import { giveBuffer, takeBuffer } from "./pool.ts";

const SMALL_CHUNK = 64 * 1024;
const LARGE_CHUNK = 1024 * 1024;
/** Bytes a transfer moves in small chunks before it switches to large ones. */
const GROW_AFTER = 4 * 1024 * 1024;

/**
 * How many transfers in this process may hold large buffers at once: past
 * that, the rest stay small, so a crowd of long transfers costs at most
 * this many times two large buffers, however many clients there are.
 */
const LARGE_BUFFER_SLOTS = 64;
let largeSlotsInUse = 0;

/** Transfers holding large buffers now (for tests). */
export function largeBufferSlotsInUse(): number {
  return largeSlotsInUse;
}

/** One side of one transfer's claim on a large-buffer slot. */
class BufferSize {
  #slot = false;

  /** The chunk size for a transfer that has moved `moved` bytes; takes a slot when it grows. */
  for(moved: number): number {
    if (moved >= GROW_AFTER && !this.#slot && largeSlotsInUse < LARGE_BUFFER_SLOTS) {
      largeSlotsInUse++;
      this.#slot = true;
    }
    return this.#slot ? LARGE_CHUNK : SMALL_CHUNK;
  }

  release(): void {
    if (!this.#slot) return;
    this.#slot = false;
    largeSlotsInUse--;
  }
}
/** A read into `buffer` that never rejects: its error is kept for whoever takes the result. */
interface ReadAhead {
  buffer: Uint8Array;
  result: Promise<number | null | { error: unknown }>;
}

/** Fills blocks completely from a source that may return short reads (pipes, stdin). */
export class ChunkedReader {
  #source: ByteSource;
  // Allocated on first use, and never for sources in memory: a connection parked in
  // a transfer (an unanswered greeting, say) holds no buffer.
  #chunk: Uint8Array | undefined;
  #start = 0;
  #end = 0;
  #eof = false;
  #read = 0;
  /** The other buffer, free or being read into. */
  #spare: Uint8Array | undefined;
  #ahead: ReadAhead | undefined;
  #size = new BufferSize();

  constructor(source: ByteSource) {
    this.#source = source;
  }

  /** Copies up to `target.length` bytes into `target`; fewer only at the end of the source. */
  async fill(target: Uint8Array): Promise<number> {
    let filled = 0;
    while (filled < target.length) {
      if (this.#start === this.#end) {
        if (this.#eof) break;
        if (this.#source.inMemory) {
          // Memory: read straight into the block, no copy.
          const n = await this.#source.read(target.subarray(filled));
          if (n === null) this.#eof = true;
          else filled += n;
          continue;
        }
        await this.#nextChunk();
        continue;
      }
      const n = Math.min(target.length - filled, this.#end - this.#start);
      target.set(this.#chunk!.subarray(this.#start, this.#start + n), filled);
      this.#start += n;
      filled += n;
    }
    return filled;
  }

  /** Waits for a read in flight, if any, so that nothing outlives the transfer; frees its slot and buffers. */
  async finish(): Promise<void> {
    const ahead = this.#ahead;
    await ahead?.result;
    this.#ahead = undefined;
    this.#size.release();
    for (const buffer of new Set([this.#chunk, this.#spare, ahead?.buffer])) giveBuffer(buffer);
    this.#chunk = this.#spare = undefined;
    this.#start = this.#end = 0;
  }

  /** Makes the next chunk of the source current (or notes its end), then reads ahead. */
  async #nextChunk(): Promise<void> {
    const ahead = this.#ahead ?? this.#startRead(this.#buffer(this.#chunk));
    this.#ahead = undefined;
    const result = await ahead.result;
    if (result !== null && typeof result === "object") throw result.error;
    const previous = this.#chunk;
    this.#chunk = ahead.buffer;
    if (previous !== ahead.buffer) this.#spare = previous;
    this.#start = 0;
    this.#end = result ?? 0;
    if (result === null) {
      this.#eof = true;
      return;
    }
    this.#read += result;
    if (this.#source.regularFile) this.#ahead = this.#startRead(this.#buffer(this.#spare));
  }

  /** `reusable` if it has the size this point of the transfer wants, else another buffer. */
  #buffer(reusable: Uint8Array | undefined): Uint8Array {
    const size = this.#size.for(this.#read);
    return reusable?.length === size ? reusable : takeBuffer(size);
  }

  #startRead(buffer: Uint8Array): ReadAhead {
    const result = this.#source.read(buffer).catch((error: unknown) => ({ error }));
    return { buffer, result };
  }
}

const EMPTY = new Uint8Array(0);

/** Gathers small writes into large ones; to a regular file, writes one chunk while the next fills. */
export class ChunkedWriter {
  #sink: ByteSink;
  #chunk: Uint8Array = takeBuffer(SMALL_CHUNK);
  #used = 0;
  #written = 0;
  /** The other buffer, free or being written. */
  #spare: Uint8Array | undefined;
  #behind: Promise<void> | undefined;
  #size = new BufferSize();

  constructor(sink: ByteSink) {
    this.#sink = sink;
  }

  async write(bytes: Uint8Array): Promise<void> {
    if (this.#used + bytes.length > this.#chunk.length) await this.#handOff();
    if (bytes.length > this.#chunk.length) {
      await this.settle();
      return await writeAll(this.#sink, bytes);
    }
    this.#chunk.set(bytes, this.#used);
    this.#used += bytes.length;
  }

  /** Writes out everything gathered so far. */
  async flush(): Promise<void> {
    await this.#handOff();
    await this.settle();
  }

  /** Waits for a write in flight, if any; its error is thrown here. */
  async settle(): Promise<void> {
    const behind = this.#behind;
    this.#behind = undefined;
    await behind;
  }

  /**
   * After the transfer, done or failed: waits for a write in flight (its
   * error is not the news) and frees the slot and the buffers (a later write
   * goes straight to the sink).
   */
  async finish(): Promise<void> {
    await this.settle().catch(() => {});
    this.#size.release();
    giveBuffer(this.#chunk);
    giveBuffer(this.#spare);
    this.#chunk = EMPTY;
    this.#spare = undefined;
    this.#used = 0;
  }

  /** Starts writing the gathered chunk and gathers into the other buffer. */
  async #handOff(): Promise<void> {
    if (this.#used === 0) return;
    const full = this.#chunk.subarray(0, this.#used);
    this.#written += this.#used;
    this.#used = 0;
    const size = this.#size.for(this.#written);
    if (!this.#sink.regularFile) {
      await writeAll(this.#sink, full);
      if (this.#chunk.length !== size) {
        giveBuffer(this.#chunk);
        this.#chunk = takeBuffer(size);
      }
      return;
    }
    await this.settle(); // the other buffer is free only once its write is done
    let next = this.#spare;
    if (next?.length !== size) {
      giveBuffer(next);
      next = takeBuffer(size);
    }
    this.#spare = this.#chunk;
    this.#chunk = next;
    const behind = writeAll(this.#sink, full);
    behind.catch(() => {}); // handled when settled; until then it must not count as unhandled
    this.#behind = behind;
  }
}
