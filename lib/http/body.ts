/**
 * Reading a request body with a deadline on every read (a client that
 * stops sending is dropped, not waited for), and copying it into a staged
 * upload within the size limit.
 */

import { ChunkedWriter } from "../bytes/chunked.ts";
import type { StagedWrite } from "../store/file_store.ts";
import { HttpError } from "./respond.ts";
import { Deadline } from "../timer.ts";

/**
 * Reads `stream` chunk by chunk; the stream must not be silent for
 * `timeoutMs`. One `Deadline` per reader: a chunk costs a clock reading, not
 * a timer of its own.
 */
export class BodyReader {
  #reader: ReadableStreamDefaultReader<Uint8Array>;
  #timeoutMs: number;
  #what: string;
  readonly #silence = new Deadline(() => {
    this.#timedOut = true;
    this.#reader.cancel(this.#timeout()).catch(() => {});
  });
  #timedOut = false;
  #done = false;

  /** `what` names the stream in the timeout's message ("request body", "response"). */
  constructor(stream: ReadableStream<Uint8Array>, timeoutMs: number, what = "request body") {
    this.#reader = stream.getReader();
    this.#timeoutMs = timeoutMs;
    this.#what = what;
  }

  /** The next chunk, or null at the end; HttpError 408 when the other side is silent too long. */
  async read(): Promise<Uint8Array | null> {
    if (this.#done) return null;
    this.#silence.in(this.#timeoutMs);
    let result: ReadableStreamReadResult<Uint8Array>;
    try {
      result = await this.#reader.read();
    } catch (error) {
      this.#stop();
      throw this.#timedOut ? this.#timeout() : error;
    }
    if (this.#timedOut) throw this.#timeout();
    if (result.done) {
      this.#stop();
      return null;
    }
    this.#silence.in(this.#timeoutMs);
    return result.value;
  }

  /** Stops reading (the rest is not wanted). */
  async cancel(): Promise<void> {
    this.#stop();
    await this.#reader.cancel().catch(() => {});
  }

  #timeout(): HttpError {
    return new HttpError(408, `${this.#what} timeout: nothing for ${this.#timeoutMs / 1000} s`);
  }

  #stop(): void {
    this.#done = true;
    this.#silence.stop();
  }
}

/** Too large: refused with the limit, mid-stream. */
export function tooLarge(limit: number): HttpError {
  return new HttpError(413, `upload too large: more than ${limit} bytes`);
}

/**
 * Copies chunks from `next` into `staged` until it returns null, within
 * `limit` bytes (0: none); returns the bytes stored. The caller commits or
 * discards.
 */
export async function copyInto(
  staged: StagedWrite,
  next: () => Promise<Uint8Array | null>,
  limit: number,
  onProgress?: (bytes: number) => void,
): Promise<number> {
  const writer = new ChunkedWriter(staged.sink);
  let total = 0;
  try {
    for (let chunk = await next(); chunk !== null; chunk = await next()) {
      total += chunk.length;
      if (limit > 0 && total > limit) throw tooLarge(limit);
      await writer.write(chunk);
      onProgress?.(total);
    }
    await writer.flush();
    return total;
  } finally {
    await writer.finish();
  }
}
