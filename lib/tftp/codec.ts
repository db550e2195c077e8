/**
 * TFTP's wire format (RFC 1350, with RFC 2347's OACK): one packet per UDP
 * datagram. Pure code: bytes in, packets out. Parsing is strict and bounded,
 * since every datagram may come from anyone: a packet that breaks the format
 * throws ProtocolError 4 (illegal TFTP operation) and nothing is read past
 * the datagram's end.
 */

import { ErrorCode, ProtocolError } from "../store/errors.ts";
import type { OptionPairs } from "../net/option_pairs.ts";

export const Opcode = {
  RRQ: 1,
  WRQ: 2,
  DATA: 3,
  ACK: 4,
  ERROR: 5,
  OACK: 6,
} as const;
export type Opcode = typeof Opcode[keyof typeof Opcode];

/** RFC 1350's block size, used when no blksize was negotiated. */
export const DEFAULT_BLOCK_SIZE = 512;
/** Opcode and block number in front of a DATA packet's bytes. */
export const DATA_HEADER_SIZE = 4;
/** Longest request (RRQ/WRQ) we read; RFC 1350 keeps them within 512 bytes, options add a little. */
export const MAX_REQUEST_BYTES = 2048;
/** Longest option name or value we keep; longer ones are refused (known) or ignored (unknown). */
export const MAX_OPTION_BYTES = 255;
/** Most options one request or OACK may carry. */
export const MAX_OPTIONS = 16;
/** Longest error text we send or keep. */
export const MAX_ERROR_TEXT = 255;

/** The transfer modes of RFC 1350 that fsd speaks ("mail" is obsolete). */
export type Mode = "octet" | "netascii";

/** Option names (lower-case) and values, in the order they came. */
export type { OptionPairs } from "../net/option_pairs.ts";

export type Request = {
  op: typeof Opcode.RRQ | typeof Opcode.WRQ;
  /** The file name as sent (bytes: the name rules decide what they may be). */
  name: Uint8Array;
  mode: Mode;
  options: OptionPairs;
};

export type Packet =
  | Request
  | { op: typeof Opcode.DATA; block: number; data: Uint8Array }
  | { op: typeof Opcode.ACK; block: number }
  | { op: typeof Opcode.ERROR; code: number; message: string }
  | { op: typeof Opcode.OACK; options: OptionPairs };

const encoder = new TextEncoder();
const latin1 = new TextDecoder("latin1");

function illegal(message: string): ProtocolError {
  return new ProtocolError(ErrorCode.ILLEGAL_OPERATION, `illegal TFTP operation: ${message}`);
}

/** The zero-terminated strings in `bytes` from `from` to the end; the last must be terminated. */
function strings(bytes: Uint8Array, from: number, max: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  let at = from;
  while (at < bytes.length) {
    const end = bytes.indexOf(0, at);
    if (end < 0) throw illegal("string without its terminating zero byte");
    if (out.length === max) throw illegal(`more than ${max} strings`);
    out.push(bytes.subarray(at, end));
    at = end + 1;
  }
  return out;
}

function u16(bytes: Uint8Array, at: number): number {
  return (bytes[at] << 8) | bytes[at + 1];
}

/**
 * Parses one datagram. `maxData` is the largest DATA payload acceptable now
 * (the negotiated block size); more is a violation.
 */
export function parsePacket(bytes: Uint8Array, maxData = 65464): Packet {
  if (bytes.length < 2) throw illegal(`datagram of ${bytes.length} byte(s)`);
  const op = u16(bytes, 0);
  switch (op) {
    case Opcode.RRQ:
    case Opcode.WRQ:
      return parseRequest(op, bytes);
    case Opcode.DATA:
      if (bytes.length < DATA_HEADER_SIZE) throw illegal("truncated DATA");
      if (bytes.length - DATA_HEADER_SIZE > maxData) {
        throw illegal(`DATA of ${bytes.length - DATA_HEADER_SIZE} bytes, block size ${maxData}`);
      }
      return { op, block: u16(bytes, 2), data: bytes.subarray(DATA_HEADER_SIZE) };
    case Opcode.ACK:
      if (bytes.length !== 4) throw illegal(`ACK of ${bytes.length} bytes`);
      return { op, block: u16(bytes, 2) };
    case Opcode.ERROR: {
      // atftpd's CVE-2019-11365: an ERROR of 3 bytes or less must not be read past its end.
      if (bytes.length < 4) throw illegal(`ERROR of ${bytes.length} bytes`);
      const end = bytes.indexOf(0, 4);
      const text = bytes.subarray(4, end < 0 ? bytes.length : end).subarray(0, MAX_ERROR_TEXT);
      return { op, code: u16(bytes, 2), message: latin1.decode(text) };
    }
    case Opcode.OACK:
      return { op, options: parseOptions(strings(bytes, 2, 2 * MAX_OPTIONS)) };
    default:
      throw illegal(`unknown opcode ${op}`);
  }
}

function parseRequest(op: Request["op"], bytes: Uint8Array): Request {
  if (bytes.length > MAX_REQUEST_BYTES) {
    throw illegal(`request of ${bytes.length} bytes, at most ${MAX_REQUEST_BYTES}`);
  }
  const parts = strings(bytes, 2, 2 + 2 * MAX_OPTIONS);
  if (parts.length < 2) throw illegal("request without a mode");
  const modeText = latin1.decode(parts[1]).toLowerCase();
  if (modeText !== "octet" && modeText !== "netascii") {
    throw illegal(`unsupported mode ${JSON.stringify(modeText.slice(0, 32))}`);
  }
  return { op, name: parts[0], mode: modeText, options: parseOptions(parts.slice(2)) };
}

function parseOptions(parts: Uint8Array[]): OptionPairs {
  if (parts.length % 2 !== 0) throw illegal("option without a value");
  const pairs: OptionPairs = [];
  for (let i = 0; i < parts.length; i += 2) {
    pairs.push([latin1.decode(parts[i]).toLowerCase(), latin1.decode(parts[i + 1])]);
  }
  return pairs;
}

function withStrings(head: number[], texts: (string | Uint8Array)[]): Uint8Array {
  const encoded = texts.map((t) => typeof t === "string" ? encoder.encode(t) : t);
  const out = new Uint8Array(head.length + encoded.reduce((n, t) => n + t.length + 1, 0));
  out.set(head);
  let at = head.length;
  for (const text of encoded) {
    out.set(text, at);
    at += text.length + 1; // the zero byte is already there
  }
  return out;
}

/** An RRQ or WRQ; a raw name goes out as it is (tests send invalid ones). */
export function encodeRequest(
  op: Request["op"],
  name: string | Uint8Array,
  mode: Mode,
  options: OptionPairs = [],
): Uint8Array {
  return withStrings([0, op], [name, mode, ...options.flat()]);
}

/** A DATA header for `block`, written into the first four bytes of `packet`. */
export function writeDataHeader(packet: Uint8Array, block: number): void {
  packet[0] = 0;
  packet[1] = Opcode.DATA;
  packet[2] = (block >> 8) & 0xff;
  packet[3] = block & 0xff;
}

export function encodeData(block: number, data: Uint8Array): Uint8Array {
  const packet = new Uint8Array(DATA_HEADER_SIZE + data.length);
  writeDataHeader(packet, block);
  packet.set(data, DATA_HEADER_SIZE);
  return packet;
}

export function encodeAck(block: number): Uint8Array {
  return new Uint8Array([0, Opcode.ACK, (block >> 8) & 0xff, block & 0xff]);
}

/**
 * RFC 1350's conventional texts, sent exactly as tftpd-hpa and atftpd send
 * them (clients and scripts match them); the detail goes to the log.
 * Code 0 and option refusals (8) keep their short reason.
 */
export const CONVENTIONAL_ERROR_TEXT: Readonly<Record<number, string>> = {
  1: "File not found",
  2: "Access violation",
  3: "Disk full or allocation exceeded",
  4: "Illegal TFTP operation",
  5: "Unknown transfer ID",
  6: "File already exists",
  7: "No such user",
};

/** An ERROR packet: codes 1-7 carry their conventional text, whatever `message` says. */
export function encodeError(code: number, message: string): Uint8Array {
  const text = encoder.encode(CONVENTIONAL_ERROR_TEXT[code] ?? message).subarray(0, MAX_ERROR_TEXT);
  return withStrings([0, Opcode.ERROR, (code >> 8) & 0xff, code & 0xff], [text]);
}

export function encodeOack(options: OptionPairs): Uint8Array {
  return withStrings([0, Opcode.OACK], options.flat());
}

/** Block numbers are 16 bits on the wire and roll over to 0 (as tftpd-hpa and atftpd do). */
export function wireBlock(block: number): number {
  return block & 0xffff;
}
