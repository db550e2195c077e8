/**
 * multipart/form-data, read as it arrives: part headers (bounded), then
 * each part's body handed on in chunks, never the whole of it in memory.
 */

import { concat } from "../bytes/source_sink.ts";
import { HttpError } from "./respond.ts";

const MAX_HEADERS = 8 * 1024;
const MAX_PARTS = 1000;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

export interface PartHeaders {
  /** The form field's name. */
  field: string;
  /** The file's name, for a file field. */
  filename?: string;
}

/** The boundary of a multipart/form-data content type; HttpError 400 without one. */
export function boundaryOf(contentType: string): string {
  const match = /^multipart\/form-data\s*;.*?boundary=(?:"([^"]{1,70})"|([^\s;]{1,70}))/i.exec(
    contentType,
  );
  if (!match) throw new HttpError(400, "expected multipart/form-data with a boundary");
  return match[1] ?? match[2];
}

/** The parts of a body, one at a time: `next()` their headers, `body()` their bytes. */
export class MultipartReader {
  #read: () => Promise<Uint8Array | null>;
  #delimiter: Uint8Array;
  /** Bytes received and not yet handed on; starts with the CRLF the first delimiter lacks. */
  #pending: Uint8Array = encoder.encode("\r\n");
  #ended = false;
  #inBody = false;
  #parts = 0;

  constructor(read: () => Promise<Uint8Array | null>, boundary: string) {
    this.#read = read;
    this.#delimiter = encoder.encode(`\r\n--${boundary}`);
  }

  /** The next part's headers, or null after the last; skips what is left of the current part. */
  async next(): Promise<PartHeaders | null> {
    if (this.#inBody) { for await (const _ of this.body()) { /* skipped */ } }
    if (this.#ended) return null;
    if (this.#parts === 0) await this.#skipTo();
    // After a delimiter: "--" ends the body, CRLF starts a part's headers.
    await this.#need(2);
    if (this.#pending[0] === 0x2d && this.#pending[1] === 0x2d) {
      this.#ended = true;
      return null;
    }
    if (++this.#parts > MAX_PARTS) throw new HttpError(400, `too many parts: at most ${MAX_PARTS}`);
    let end: number;
    while ((end = indexOf(this.#pending, CRLF2)) < 0) {
      if (this.#pending.length > MAX_HEADERS) throw new HttpError(400, "part headers too long");
      if (!await this.#more()) throw new HttpError(400, "multipart body ends in a part's headers");
    }
    const text = decoder.decode(this.#pending.subarray(2, end));
    this.#pending = this.#pending.subarray(end + 4);
    this.#inBody = true;
    return partHeaders(text);
  }

  /** The current part's bytes, in chunks (valid until the next one is asked for). */
  async *body(): AsyncGenerator<Uint8Array> {
    const keep = this.#delimiter.length - 1;
    while (true) {
      const at = indexOf(this.#pending, this.#delimiter);
      if (at >= 0) {
        if (at > 0) yield this.#pending.subarray(0, at);
        this.#pending = this.#pending.subarray(at + this.#delimiter.length);
        this.#inBody = false;
        return;
      }
      if (this.#pending.length > keep) {
        const out = this.#pending.subarray(0, this.#pending.length - keep);
        this.#pending = this.#pending.subarray(this.#pending.length - keep);
        yield out;
      }
      if (!await this.#more()) throw new HttpError(400, "multipart body ends inside a part");
    }
  }

  /** Skips the preamble up to the first delimiter. */
  async #skipTo(): Promise<void> {
    let at: number;
    while ((at = indexOf(this.#pending, this.#delimiter)) < 0) {
      if (this.#pending.length > MAX_HEADERS) throw new HttpError(400, "no multipart boundary");
      if (!await this.#more()) throw new HttpError(400, "no multipart boundary");
    }
    this.#pending = this.#pending.subarray(at + this.#delimiter.length);
  }

  async #need(n: number): Promise<void> {
    while (this.#pending.length < n) {
      if (!await this.#more()) throw new HttpError(400, "multipart body ends too soon");
    }
  }

  async #more(): Promise<boolean> {
    const chunk = await this.#read();
    if (chunk === null) return false;
    this.#pending = concat(this.#pending, chunk);
    return true;
  }
}

const CRLF2 = encoder.encode("\r\n\r\n");

function partHeaders(text: string): PartHeaders {
  const disposition = text.split("\r\n").find((line) => /^content-disposition\s*:/i.test(line));
  if (!disposition) throw new HttpError(400, "a part without Content-Disposition");
  const field = /;\s*name="([^"]*)"/i.exec(disposition)?.[1];
  if (field === undefined) throw new HttpError(400, "a part without a field name");
  const filename = /;\s*filename="([^"]*)"/i.exec(disposition)?.[1];
  return { field, ...(filename !== undefined && { filename: unquote(filename) }) };
}

/** Browsers send `"` in a file name as %22 (and CR, LF as %0D, %0A): back to the name. */
function unquote(name: string): string {
  return name.replace(/%22/g, '"').replace(/%0D/gi, "\r").replace(/%0A/gi, "\n");
}

/** Where `needle` first occurs in `haystack`, or -1. */
export function indexOf(haystack: Uint8Array, needle: Uint8Array): number {
  const first = needle[0];
  const last = haystack.length - needle.length;
  for (let i = haystack.indexOf(first); i >= 0 && i <= last; i = haystack.indexOf(first, i + 1)) {
    let j = 1;
    while (j < needle.length && haystack[i + j] === needle[j]) j++;
    if (j === needle.length) return i;
  }
  return -1;
}
