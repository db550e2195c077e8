/**
 * Showing traffic: fsd packets decoded one per line, hex dumps, printable
 * text. Pure functions and a per-direction decoder; the proxy prints.
 */

import { type Packet, PacketDecoder } from "../fsd/codec.ts";
import { Opcode } from "../fsd/codec.ts";
import { DIGEST_SIZES as SUM_SIZE, toHex } from "../bytes/sha256.ts";
import { type OptionPairs, optionRecord } from "../net/option_pairs.ts";

const names = new TextDecoder();

/** One packet as a short line: `RRQ "a.txt"`, `DAT 3 512 bytes`, `ERR 1 "file not found: x"`. */
export function describePacket(packet: Packet): string {
  switch (packet.op) {
    case Opcode.RRQ:
      return `RRQ ${JSON.stringify(names.decode(packet.name))}`;
    case Opcode.WRQ:
      return `WRQ ${JSON.stringify(names.decode(packet.name))}`;
    case Opcode.DAT:
      return `DAT ${packet.block} ${packet.data.length} bytes`;
    case Opcode.ACK:
      return `ACK ${packet.block}`;
    case Opcode.ERR:
      return `ERR ${packet.code} ${JSON.stringify(packet.message)}`;
    case Opcode.DRQ:
      return "DRQ";
    case Opcode.OPT:
    case Opcode.OACK:
      return `${packet.op === Opcode.OPT ? "OPT" : "OACK"} ${optionsText(packet.options)}`;
    case Opcode.SUM:
      return `SUM ${toHex(packet.digest)}`;
  }
}

/** Option names whose values are secrets: traces show `***` instead (a trace is a log). */
const SECRET_OPTION = /pass|secret|token|key|auth|cred/i;

/** `blksize=512 windowsize=4`, secret values hidden. */
export function optionsText(options: OptionPairs): string {
  return options
    .map(([name, value]) => `${name}=${SECRET_OPTION.test(name) ? "***" : value}`)
    .join(" ");
}

/**
 * Decodes one direction of an fsd conversation from raw chunks, however
 * TCP split or packed them. After bytes that are not fsd it says so once
 * and stays quiet.
 */
export class FsdTracer {
  #decoder = new PacketDecoder({
    maxDataSize: 65535,
    maxStringBytes: 65535,
    sumSize: SUM_SIZE.sha256,
  });
  #broken = false;

  /** Lines for the packets completed by `chunk`. */
  push(chunk: Uint8Array): string[] {
    const lines: string[] = [];
    const broken = this.each(chunk, (packet) => lines.push(describePacket(packet)));
    if (broken) lines.push(broken);
    return lines;
  }

  /**
   * Calls `visit` with each packet completed by `chunk` (a DAT's data is only
   * valid during the call); returns a line saying so when the bytes turn out
   * not to be fsd.
   */
  each(chunk: Uint8Array, visit: (packet: Packet) => void): string | undefined {
    if (this.#broken) return undefined;
    try {
      this.#decoder.push(chunk);
      for (let packet = this.#decoder.next(); packet; packet = this.#decoder.next()) {
        visit(packet);
        if (packet.op === Opcode.OPT || packet.op === Opcode.OACK) {
          // The SUM this direction will send is the checksum asked (OPT, an upload's) or granted (OACK).
          this.#decoder.sumSize = optionRecord(packet.options).crc32 === "1"
            ? SUM_SIZE.crc32
            : SUM_SIZE.sha256;
        }
      }
    } catch (error) {
      this.#broken = true;
      return `not fsd: ${(error as Error).message}; no more decoding in this direction`;
    }
    return undefined;
  }
}

/** A chunk in hex or text mode, as one trace entry: `HEAD N bytes`, then its lines indented. */
export function chunkEntry(
  mode: "hex" | "text",
  head: string,
  chunk: Uint8Array,
  offset: number,
): string {
  const body = mode === "hex"
    ? hexDump(chunk, offset)
    : printable(chunk).replace(/\n$/, "").split("\n");
  return [`${head} ${chunk.length} bytes`, ...body.map((line) => `  ${line}`)].join("\n");
}

/** `xxd`-style lines: offset, 16 bytes in hex, and the printable ones. */
export function hexDump(bytes: Uint8Array, offset = 0): string[] {
  const lines: string[] = [];
  for (let at = 0; at < bytes.length; at += 16) {
    const row = bytes.subarray(at, at + 16);
    const hex = Array.from(row, (b) => b.toString(16).padStart(2, "0")).join(" ");
    lines.push(
      `${(offset + at).toString(16).padStart(8, "0")}  ${hex.padEnd(47)}  ${printable(row, false)}`,
    );
  }
  return lines;
}

/** The bytes as ASCII text, everything unprintable shown as "." (newlines kept when `keepNewlines`). */
export function printable(bytes: Uint8Array, keepNewlines = true): string {
  let out = "";
  for (const b of bytes) {
    out += keepNewlines && b === 0x0a ? "\n" : b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : ".";
  }
  return out;
}
