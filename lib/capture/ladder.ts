/**
 * Ladder diagrams, as the lab handouts draw an exchange: client on the
 * left, server on the right, one arrow per packet.
 *
 *   Client                              Server
 *     |  <---- DAT 1 (27 bytes) -------   |
 *     |  ---- ACK 1 ------------------->  |
 *
 * Long runs of DAT and ACK (windows, big transfers) are summarised: the
 * first few packets of a run are drawn, then one line counts the rest up to
 * the run's last block, which is drawn again; so a 1 GiB download takes a
 * dozen lines, not a million.
 */

import { toHex } from "../bytes/sha256.ts";
import { Opcode, type Packet } from "../fsd/codec.ts";
import { optionsText } from "./trace.ts";

/** Which way a packet goes: up is client to server. */
export type Direction = "up" | "down";

/** Width of an arrow between the two lifelines. */
const ARROW = 30;
/** Packets of a DAT/ACK run drawn before the rest is summarised. */
const SHOWN_PER_RUN = 6;
/** A summary replaces at least this many packets; fewer are drawn after all. */
const HELD = 8;

const names = new TextDecoder();

/** A packet as a ladder (and Wireshark Info column) label: `RRQ "a.txt"`, `DAT 7 (512 bytes)`, `ERR 6 file already exists`. */
export function packetLabel(packet: Packet): string {
  switch (packet.op) {
    case Opcode.RRQ:
    case Opcode.WRQ:
      return `${packet.op === Opcode.RRQ ? "RRQ" : "WRQ"} ${
        JSON.stringify(names.decode(packet.name))
      }`;
    case Opcode.DAT:
      return `DAT ${packet.block} (${packet.data.length} bytes)`;
    case Opcode.ACK:
      return `ACK ${packet.block}`;
    case Opcode.ERR:
      return `ERR ${packet.code} ${packet.message}`;
    case Opcode.DRQ:
      return "DRQ";
    case Opcode.OPT:
    case Opcode.OACK:
      return `${packet.op === Opcode.OPT ? "OPT" : "OACK"} ${optionsText(packet.options)}`;
    case Opcode.SUM:
      return `SUM ${toHex(packet.digest.subarray(0, 8))}...`; // as the dissector shows it
  }
}

/** The arrow line for `label` going `direction`; a label too long for the arrow follows the server's lifeline, which stays in its column. */
export function arrowLine(direction: Direction, label: string): string {
  if (label.length + 9 > ARROW) {
    const bare = direction === "up" ? `${"-".repeat(ARROW - 1)}>` : `<${"-".repeat(ARROW - 1)}`;
    return `  |  ${bare}  |  ${label}`;
  }
  const dashes = "-".repeat(Math.max(2, ARROW - label.length - 7));
  const arrow = direction === "up" ? `---- ${label} ${dashes}>` : `<---- ${label} ${dashes}`;
  return `  |  ${arrow.padEnd(ARROW)}  |`;
}

/** The two lifelines' names. */
export function ladderHeader(): string {
  return `${"Client".padEnd(ARROW + 3)}Server`;
}

/** Draws one connection; `print` gets each line. */
export class Ladder {
  #print: (line: string) => void;
  // The current run of DAT and ACK packets.
  #runLength = 0;
  #largestData = 0;
  #hiddenData = 0;
  #hiddenBytes = 0;
  #hiddenAcks = 0;
  #held: string[] = [];

  constructor(print: (line: string) => void) {
    this.#print = print;
  }

  packet(direction: Direction, packet: Packet): void {
    const kind = packet.op === Opcode.DAT ? "data" : packet.op === Opcode.ACK ? "ack" : "other";
    const size = packet.op === Opcode.DAT ? packet.data.length : 0;
    this.entry(direction, packetLabel(packet), kind, size);
  }

  /**
   * One arrow of any protocol: `kind` "data" (with its `size`) and "ack" are
   * the packets whose long runs are summarised (fsd/1's DAT and ACK, TFTP's
   * DATA and ACK); anything else is always drawn.
   */
  entry(direction: Direction, label: string, kind: "data" | "ack" | "other", size = 0): void {
    const isData = kind === "data";
    if (kind === "other") {
      this.#endRun();
      this.#print(arrowLine(direction, label));
      return;
    }
    const lastBlock = isData && size < this.#largestData;
    if (lastBlock) this.#endRun();
    if (isData) this.#largestData = Math.max(this.#largestData, size);
    this.#runLength++;
    if (this.#runLength <= SHOWN_PER_RUN) {
      this.#print(arrowLine(direction, label));
      return;
    }
    if (this.#runLength <= SHOWN_PER_RUN + HELD) {
      this.#held.push(arrowLine(direction, label));
    }
    if (isData) {
      this.#hiddenData++;
      this.#hiddenBytes += size;
    } else {
      this.#hiddenAcks++;
    }
  }

  /** The connection closed: says what a run left unsaid. */
  close(): void {
    this.#endRun();
  }

  #endRun(): void {
    const hidden = this.#hiddenData + this.#hiddenAcks;
    if (hidden <= HELD) {
      for (const line of this.#held) this.#print(line);
    } else {
      const text =
        `... ${this.#hiddenData} more DAT (${this.#hiddenBytes} bytes) and ${this.#hiddenAcks} ACK ...`;
      this.#print(`  |  ${text.padEnd(ARROW)}  |`);
    }
    this.#held = [];
    this.#runLength = this.#largestData = 0;
    this.#hiddenData = this.#hiddenBytes = this.#hiddenAcks = 0;
  }
}
