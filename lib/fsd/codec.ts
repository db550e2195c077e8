/**
 * The fsd/1 wire format: packet encoders and an incremental decoder.
 *
 * Pure code: bytes in, packets out, no I/O. The decoder accepts bytes in any
 * split (a packet across several reads, several packets in one read) and
 * lets the caller read straight into its buffer, so the data path copies each
 * byte once. See docs/PROTOCOL.md for the protocol itself.
 */

import type { OptionPairs } from "../net/option_pairs.ts";
import { ErrorCode, ProtocolError } from "../store/errors.ts";

export const Opcode = {
  RRQ: 1,
  WRQ: 2,
  DAT: 3,
  ACK: 4,
  ERR: 5,
  DRQ: 6,
  // The options extension (docs/PROTOCOL.md): only after a client asks with OPT.
  OPT: 7,
  OACK: 8,
  // Integrity (asked for with the sha256 option): the sender's digest after the last DAT.
  SUM: 9,
} as const;
export type Opcode = typeof Opcode[keyof typeof Opcode];

/** Data bytes in a full DAT packet; a shorter one ends a transfer. */
export const BLOCK_SIZE = 512;
/** Opcode, block and size in front of a DAT packet's data. */
export const DAT_HEADER_SIZE = 6;
/** Longest string (file name or error text, without its zero byte) we accept. */
export const MAX_STRING_BYTES = 1024;

export type Packet =
  | { op: typeof Opcode.RRQ; name: Uint8Array }
  | { op: typeof Opcode.WRQ; name: Uint8Array }
  | { op: typeof Opcode.DAT; block: number; data: Uint8Array }
  | { op: typeof Opcode.ACK; block: number }
  | { op: typeof Opcode.ERR; code: number; message: string }
  | { op: typeof Opcode.DRQ }
  | { op: typeof Opcode.OPT; options: OptionPairs }
  | { op: typeof Opcode.OACK; options: OptionPairs }
  | { op: typeof Opcode.SUM; digest: Uint8Array };

/** Option names and values, as the OPT and OACK packets carry them (names lower-case). */
export type { OptionPairs } from "../net/option_pairs.ts";

/** Most options one OPT or OACK may carry. */
export const MAX_OPTIONS = 16;

const OPCODE_NAMES: Record<number, string> = {
  1: "RRQ",
  2: "WRQ",
  3: "DAT",
  4: "ACK",
  5: "ERR",
  6: "DRQ",
  7: "OPT",
  8: "OACK",
  9: "SUM",
};

/** "RRQ", "DAT", ... or "opcode N" for anything else. */
export function opcodeName(op: number): string {
  return OPCODE_NAMES[op] ?? `opcode ${op}`;
}

/** Block numbers run 1, 2, ..., 65535, 0, 1, ... */
export function nextBlock(block: number): number {
  return (block + 1) & 0xffff;
}

const encoder = new TextEncoder();

function encodeStringPacket(head: number[], text: string | Uint8Array): Uint8Array {
  const bytes = typeof text === "string" ? encoder.encode(text) : text;
  const out = new Uint8Array(head.length + bytes.length + 1);
  out.set(head);
  out.set(bytes, head.length);
  return out; // last byte is already 0
}

/** RRQ or WRQ for `name`; raw bytes are sent as they are (tests use that for invalid UTF-8). */
export function encodeRequest(
  op: typeof Opcode.RRQ | typeof Opcode.WRQ,
  name: string | Uint8Array,
): Uint8Array {
  return encodeStringPacket([0, op], name);
}

export function encodeAck(block: number): Uint8Array {
  return new Uint8Array([0, Opcode.ACK, block >> 8, block & 0xff]);
}

/** OPT or OACK: the opcode, the number of pairs, then each name and value zero-terminated. */
export function encodeOptions(
  op: typeof Opcode.OPT | typeof Opcode.OACK,
  options: OptionPairs,
): Uint8Array {
  // One encode for every string (a request's options cost a dozen encodes otherwise).
  let text = "";
  for (const [name, value] of options) text += `${name}\0${value}\0`;
  const body = encoder.encode(text);
  const out = new Uint8Array(4 + body.length);
  out.set([0, op, options.length >> 8, options.length & 0xff]);
  out.set(body, 4);
  return out;
}

/** Bytes of the digests SUM carries: CRC-32 (4) or SHA-256 (32), as negotiated. */
export const SUM_SIZES: readonly number[] = [4, 32];

/** SUM: the opcode and the digest (4 bytes of CRC-32 or 32 of SHA-256, as negotiated). */
export function encodeSum(digest: Uint8Array): Uint8Array {
  if (!SUM_SIZES.includes(digest.length)) throw new RangeError(`digest of ${digest.length} bytes`);
  const out = new Uint8Array(2 + digest.length);
  out[1] = Opcode.SUM;
  out.set(digest, 2);
  return out;
}

export function encodeDrq(): Uint8Array {
  return new Uint8Array([0, Opcode.DRQ]);
}

export function encodeError(code: number, message: string): Uint8Array {
  return encodeStringPacket([0, Opcode.ERR, code >> 8, code & 0xff], message);
}

/** Writes a DAT header into `frame[0..6)`; the data goes right after it. */
export function writeDataHeader(frame: Uint8Array, block: number, size: number): void {
  frame[0] = 0;
  frame[1] = Opcode.DAT;
  frame[2] = block >> 8;
  frame[3] = block & 0xff;
  frame[4] = size >> 8;
  frame[5] = size & 0xff;
}

export function encodeData(block: number, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(DAT_HEADER_SIZE + data.length);
  writeDataHeader(out, block, data.length);
  out.set(data, DAT_HEADER_SIZE);
  return out;
}

export interface DecoderOptions {
  /** Largest DAT payload accepted (default 512). */
  maxDataSize?: number;
  /** Longest string accepted, zero byte not counted (default 1024). */
  maxStringBytes?: number;
  /**
   * Decode SUM with a digest of this many bytes (only while a transfer that
   * negotiated a checksum runs); 0: SUM is an unknown opcode.
   */
  sumSize?: number;
}

const textDecoder = new TextDecoder();

/**
 * Turns a byte stream into packets.
 *
 * Feed it with `push(bytes)`, or read into `reserve()` and `commit(n)`; then
 * call `next()` until it returns undefined. A DAT packet's `data` is a view
 * into the decoder's buffer, valid until the next `push` or `reserve`.
 * Anything that breaks the format throws a ProtocolError with code 4.
 */
export class PacketDecoder {
  maxDataSize: number;
  readonly maxStringBytes: number;
  sumSize: number;
  #buf: Uint8Array;
  #start = 0;
  #end = 0;

  constructor(options: DecoderOptions = {}) {
    this.maxDataSize = options.maxDataSize ?? BLOCK_SIZE;
    this.maxStringBytes = options.maxStringBytes ?? MAX_STRING_BYTES;
    this.sumSize = options.sumSize ?? 0;
    const largestPacket = Math.max(
      DAT_HEADER_SIZE + this.maxDataSize,
      4 + this.maxStringBytes + 1,
    );
    // Room for one unfinished packet plus a read; small, because an idle
    // connection holds it too (thousands of them must stay cheap).
    this.#buf = new Uint8Array(Math.max(4096, 2 * largestPacket));
  }

  /** Accepts DAT payloads up to `size` from now on (a negotiated block size), growing the buffer if needed. */
  setMaxDataSize(size: number): void {
    this.maxDataSize = size;
    const needed = 2 * (DAT_HEADER_SIZE + size);
    if (this.#buf.length < needed) {
      const grown = new Uint8Array(needed);
      grown.set(this.#buf.subarray(this.#start, this.#end));
      this.#end -= this.#start;
      this.#start = 0;
      this.#buf = grown;
    }
  }

  /** Bytes received but not yet returned as packets. */
  get buffered(): number {
    return this.#end - this.#start;
  }

  /** The peer closed: null if no packet was left unfinished, else UnexpectedEof. */
  endOfStream(): null {
    if (this.buffered > 0) {
      throw new Deno.errors.UnexpectedEof("connection closed in the middle of a packet");
    }
    return null;
  }

  /** Free space at the end of the buffer, at least `minFree` bytes (default 1). */
  reserve(minFree = 1): Uint8Array {
    if (this.#start === this.#end) {
      this.#start = this.#end = 0;
    } else if (this.#start > 0 && this.#buf.length - this.#end < Math.max(minFree, 4096)) {
      this.#buf.copyWithin(0, this.#start, this.#end);
      this.#end -= this.#start;
      this.#start = 0;
    }
    if (this.#buf.length - this.#end < minFree) {
      const grown = new Uint8Array(Math.max(this.#buf.length * 2, this.#end + minFree));
      grown.set(this.#buf.subarray(0, this.#end));
      this.#buf = grown;
    }
    return this.#buf.subarray(this.#end);
  }

  /** Marks `n` bytes written into the last `reserve()` view as received. */
  commit(n: number): void {
    if (n < 0 || this.#end + n > this.#buf.length) throw new RangeError(`bad commit: ${n}`);
    this.#end += n;
  }

  push(bytes: Uint8Array): void {
    this.reserve(bytes.length).set(bytes);
    this.#end += bytes.length;
  }

  /** The next complete packet, or undefined when more bytes are needed. */
  next(): Packet | undefined {
    const buf = this.#buf;
    const at = this.#start;
    const available = this.#end - at;
    if (available < 2) return undefined;
    const op = (buf[at] << 8) | buf[at + 1];
    switch (op) {
      case Opcode.DAT: {
        if (available < DAT_HEADER_SIZE) return undefined;
        const size = (buf[at + 4] << 8) | buf[at + 5];
        if (size > this.maxDataSize) {
          throw illegal(`data block too large: ${size} bytes, at most ${this.maxDataSize}`);
        }
        if (available < DAT_HEADER_SIZE + size) return undefined;
        const block = (buf[at + 2] << 8) | buf[at + 3];
        const data = buf.subarray(at + DAT_HEADER_SIZE, at + DAT_HEADER_SIZE + size);
        this.#start = at + DAT_HEADER_SIZE + size;
        return { op, block, data };
      }
      case Opcode.ACK: {
        if (available < 4) return undefined;
        this.#start = at + 4;
        return { op, block: (buf[at + 2] << 8) | buf[at + 3] };
      }
      case Opcode.RRQ:
      case Opcode.WRQ: {
        const name = this.#string(at + 2, "file name");
        if (name === undefined) return undefined;
        this.#start = at + 2 + name.length + 1;
        return { op, name: name.slice() };
      }
      case Opcode.ERR: {
        if (available < 4) return undefined;
        const text = this.#string(at + 4, "error message");
        if (text === undefined) return undefined;
        this.#start = at + 4 + text.length + 1;
        return { op, code: (buf[at + 2] << 8) | buf[at + 3], message: textDecoder.decode(text) };
      }
      case Opcode.DRQ:
        this.#start = at + 2;
        return { op };
      case Opcode.OPT:
      case Opcode.OACK: {
        if (available < 4) return undefined;
        const count = (buf[at + 2] << 8) | buf[at + 3];
        if (count === 0 || count > MAX_OPTIONS) {
          throw illegal(`${opcodeName(op)} with ${count} options: 1 to ${MAX_OPTIONS} expected`);
        }
        const options: OptionPairs = [];
        let next = at + 4;
        let name = "";
        for (let i = 0; i < count * 2; i++) {
          const string = this.#string(next, "option");
          if (string === undefined) return undefined;
          next += string.length + 1;
          if (i % 2 === 0) name = textDecoder.decode(string).toLowerCase();
          else options.push([name, textDecoder.decode(string)]); // a repeat is kept: its reader decides
        }
        this.#start = next;
        return { op, options };
      }
      case Opcode.SUM: {
        const size = this.sumSize;
        if (!size) throw illegal(`unknown opcode: ${op}`);
        if (available < 2 + size) return undefined;
        this.#start = at + 2 + size;
        return { op, digest: buf.slice(at + 2, at + 2 + size) };
      }
      default:
        throw illegal(`unknown opcode: ${op}`);
    }
  }

  /** The zero-terminated string starting at `from`, without its zero. */
  #string(from: number, what: string): Uint8Array | undefined {
    const limit = Math.min(this.#end, from + this.maxStringBytes + 1);
    const zero = this.#buf.subarray(from, limit).indexOf(0);
    if (zero >= 0) return this.#buf.subarray(from, from + zero);
    if (this.#end - from > this.maxStringBytes) {
      throw illegal(`${what} too long: more than ${this.maxStringBytes} bytes`);
    }
    return undefined;
  }
}

function illegal(message: string): ProtocolError {
  return new ProtocolError(ErrorCode.ILLEGAL_OPERATION, message);
}
