/**
 * netascii (RFC 1350, after Telnet's NVT ASCII): on the wire a line ends
 * with CR LF and a bare CR is CR NUL; on disk, lines end with LF as on Unix.
 * Both directions stream: a CR at the end of one chunk is settled by the
 * first byte of the next.
 */

import { type ByteSink, type ByteSource, writeAll } from "../bytes/source_sink.ts";

const CR = 0x0d;
const LF = 0x0a;
const NUL = 0x00;

/** Converts local text to netascii: LF -> CR LF, CR -> CR NUL. */
export function encodeNetascii(input: Uint8Array, out: Uint8Array): number {
  let n = 0;
  for (const byte of input) {
    if (byte === LF) {
      out[n++] = CR;
      out[n++] = LF;
    } else if (byte === CR) {
      out[n++] = CR;
      out[n++] = NUL;
    } else {
      out[n++] = byte;
    }
  }
  return n;
}

/** Converts netascii to local text, chunk by chunk: CR LF -> LF, CR NUL -> CR. */
export class NetasciiDecoder {
  #pendingCr = false;

  /** Decodes `input` into `out` (at least `input.length + 1` bytes); returns the bytes written. */
  decode(input: Uint8Array, out: Uint8Array): number {
    let n = 0;
    for (const byte of input) {
      if (this.#pendingCr) {
        this.#pendingCr = false;
        if (byte === LF) {
          out[n++] = LF;
          continue;
        }
        out[n++] = CR;
        if (byte === NUL) continue;
      }
      if (byte === CR) this.#pendingCr = true;
      else out[n++] = byte;
    }
    return n;
  }

  /** What is left at the end: a lone CR the sender did not follow (kept as it is). */
  finish(out: Uint8Array): number {
    if (!this.#pendingCr) return 0;
    this.#pendingCr = false;
    out[0] = CR;
    return 1;
  }
}

/** `source` read as netascii: every read fills at most `buffer.length` bytes. */
export function netasciiSource(source: ByteSource): ByteSource {
  let raw = new Uint8Array(0);
  return {
    async read(buffer) {
      const want = Math.max(1, buffer.length >> 1);
      if (raw.length < want) raw = new Uint8Array(want);
      const n = await source.read(raw.subarray(0, want));
      if (n === null) return null;
      return encodeNetascii(raw.subarray(0, n), buffer);
    },
  };
}

/** A sink that decodes netascii before writing to `sink`; call `finish` after the last write. */
export class NetasciiSink implements ByteSink {
  readonly #sink: ByteSink;
  readonly #decoder = new NetasciiDecoder();
  #out = new Uint8Array(0);

  constructor(sink: ByteSink) {
    this.#sink = sink;
  }

  async write(bytes: Uint8Array): Promise<number> {
    if (this.#out.length < bytes.length + 1) this.#out = new Uint8Array(bytes.length + 1);
    const n = this.#decoder.decode(bytes, this.#out);
    await writeAll(this.#sink, this.#out.subarray(0, n));
    return bytes.length;
  }

  async finish(): Promise<void> {
    const tail = new Uint8Array(1);
    const n = this.#decoder.finish(tail);
    if (n > 0) await writeAll(this.#sink, tail);
  }
}
