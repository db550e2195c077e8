/**
 * A request body on the wire as a stream: exactly Content-Length bytes, or
 * chunked (RFC 9112 7.1: bounded size lines, extensions and trailers
 * read and dropped). Whether it was read to its end decides whether the
 * connection can carry another request.
 */

import { BadRequest } from "./wire_head.ts";

/** What a body reads from its connection. */
export interface ConnReader {
  readSome(max: number): Promise<Uint8Array | null>;
  readLine(max: number): Promise<string | null>;
}

/** What a body tells as it is read. */
export interface BodyHooks {
  /** Before the first read (the 100 Continue goes then). */
  onFirstRead?: () => Promise<void>;
  /** Read to its end. */
  onEnd?: () => void;
}

/** Longest chunk-size or trailer line. */
const MAX_LINE = 4096;
/** Most trailer lines. */
const MAX_TRAILERS = 32;

export class BodyStream {
  readonly stream: ReadableStream<Uint8Array>;
  #complete = false;

  private constructor(next: () => Promise<Uint8Array | null>, hooks: BodyHooks) {
    let first = true;
    this.stream = new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        if (first) {
          first = false;
          await hooks.onFirstRead?.();
        }
        const chunk = await next();
        if (chunk === null) {
          this.#complete = true;
          hooks.onEnd?.();
          controller.close();
        } else controller.enqueue(chunk);
      },
    }, { highWaterMark: 0 });
  }

  /** Read to its end: the connection is ready for the next request. */
  get complete(): boolean {
    return this.#complete;
  }

  /** The body `headers` announce, read through `reader`; undefined when there is none. */
  static of(
    headers: Headers,
    reader: ConnReader,
    hooks: BodyHooks = {},
  ): BodyStream | undefined {
    const length = headers.get("content-length");
    if (headers.get("transfer-encoding") !== null) {
      return new BodyStream(chunked(reader), hooks);
    }
    if (length === null || Number(length) === 0) return undefined;
    let left = Number(length);
    return new BodyStream(async () => {
      if (left === 0) return null;
      const chunk = await reader.readSome(left);
      if (chunk === null) throw new BadRequest(400, "the connection ended inside a request body");
      left -= chunk.length;
      return chunk;
    }, hooks);
  }
}

/** The chunks of a chunked body, then null after its trailers. */
function chunked(reader: ConnReader): () => Promise<Uint8Array | null> {
  let left = 0;
  let ended = false;
  const line = async () => {
    const text = await reader.readLine(MAX_LINE);
    if (text === null) throw new BadRequest(400, "the connection ended inside a chunked body");
    return text;
  };
  return async () => {
    if (ended) return null;
    if (left === 0) {
      const size = /^([0-9a-fA-F]{1,12})[ \t]*(;.*)?$/.exec(await line());
      if (!size) throw new BadRequest(400, "bad chunk size");
      left = parseInt(size[1], 16);
      if (left === 0) {
        for (let i = 0; (await line()) !== ""; i++) {
          if (i >= MAX_TRAILERS) throw new BadRequest(400, "too many trailer lines");
        }
        ended = true;
        return null;
      }
    }
    const chunk = await reader.readSome(left);
    if (chunk === null) throw new BadRequest(400, "the connection ended inside a chunked body");
    left -= chunk.length;
    if (left === 0 && (await line()) !== "") throw new BadRequest(400, "bad chunk end");
    return chunk;
  };
}
