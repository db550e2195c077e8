/**
 * Reading a request body with a deadline on every read (a client that
 * stops sending is dropped, not waited for), and copying it into a staged
 * upload within the size limit.
 */

import { ChunkedWriter } from "../bytes/chunked.ts";
import type { StagedWrite } from "../store/file_store.ts";
import { HttpError } from "./respond.ts";

/** Reads `stream` chunk by chunk; each read must come within `timeoutMs`. */
export class BodyReader {
  #reader: ReadableStreamDefaultReader<Uint8Array>;
  #timeoutMs: number;

  #what: string;

  /** `what` names the stream in the timeout's message ("request body", "response"). */
  constructor(stream: ReadableStream<Uint8Array>, timeoutMs: number, what = "request body") {
    this.#reader = stream.getReader();
    this.#timeoutMs = timeoutMs;
    this.#what = what;
  }

  /** The next chunk, or null at the end; HttpError 408 when the client is silent too long. */
  async read(): Promise<Uint8Array | null> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new HttpError(408, `${this.#what} timeout: nothing for ${this.#timeoutMs / 1000} s`),
          ),
        this.#timeoutMs,
      );
    });
    try {
      const { done, value } = await Promise.race([this.#reader.read(), late]);
      return done ? null : value;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Stops reading (the rest is not wanted). */
  async cancel(): Promise<void> {
    await this.#reader.cancel().catch(() => {});
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
