/**
 * Moving one file's bytes as DAT/ACK exchanges, written once for both ends:
 * the server sends with `sendFile` for RRQ (and its greeting and listings),
 * the client for `put`; each receives with `receiveFile` for the other way.
 *
 * Memory per transfer is fixed: a 64 KiB file buffer and one frame, reused
 * for every block; the file is read and written in large chunks, not per
 * 512-byte block.
 */

import { ErrorCode, PeerError, ProtocolError } from "./errors.ts";
import type { PacketConn } from "./packet_conn.ts";
import {
  BLOCK_SIZE,
  DAT_HEADER_SIZE,
  encodeAck,
  nextBlock,
  Opcode,
  opcodeName,
  type Packet,
  writeDataHeader,
} from "./protocol.ts";

/** Where sent bytes come from: a file, stdin, or bytes in memory. */
export interface ByteSource {
  read(buffer: Uint8Array): Promise<number | null>;
}

/** Where received bytes go: a file, stdout, or memory. */
export interface ByteSink {
  write(bytes: Uint8Array): Promise<number>;
}

export interface TransferOptions {
  /** Called after each block with the bytes moved so far. */
  onProgress?: (bytes: number) => void;
}

export interface ReceiveOptions extends TransferOptions {
  /** Refuse (ERR 3, allocation exceeded) once more than this many bytes arrive. */
  maxBytes?: number;
  /**
   * Runs after the last block is written and flushed, before it is
   * acknowledged: a throw here is reported to the sender instead of the ACK.
   */
  onComplete?: () => Promise<void>;
}

const CHUNK_SIZE = 64 * 1024;

/** Sends DAT 1, 2, ... from `source`, each after the previous one's ACK; returns the byte count. */
export async function sendFile(
  conn: PacketConn,
  source: ByteSource,
  options: TransferOptions = {},
): Promise<number> {
  const reader = new ChunkedReader(source);
  const frame = new Uint8Array(DAT_HEADER_SIZE + BLOCK_SIZE);
  const payload = frame.subarray(DAT_HEADER_SIZE);
  let block = 1;
  let total = 0;
  for (;;) {
    const size = await reader.fill(payload);
    writeDataHeader(frame, block, size);
    await conn.write(frame.subarray(0, DAT_HEADER_SIZE + size));
    await expectAck(conn, block);
    total += size;
    options.onProgress?.(total);
    if (size < BLOCK_SIZE) return total;
    block = nextBlock(block);
  }
}

/** Receives DAT 1, 2, ... into `sink`, acknowledging each; returns the byte count. */
export async function receiveFile(
  conn: PacketConn,
  sink: ByteSink,
  options: ReceiveOptions = {},
): Promise<number> {
  const writer = new ChunkedWriter(sink);
  const ack = encodeAck(0);
  let expected = 1;
  let total = 0;
  for (;;) {
    const packet = await conn.readPacket();
    if (packet?.op !== Opcode.DAT || packet.block !== expected) {
      throw unexpected(packet, Opcode.DAT, expected);
    }
    total += packet.data.length;
    if (options.maxBytes !== undefined && total > options.maxBytes) {
      throw new ProtocolError(
        ErrorCode.DISK_FULL,
        `allocation exceeded: more than ${options.maxBytes} bytes`,
      );
    }
    await writer.write(packet.data);
    const last = packet.data.length < BLOCK_SIZE;
    if (last) {
      await writer.flush();
      await options.onComplete?.();
    }
    ack[2] = expected >> 8;
    ack[3] = expected & 0xff;
    await conn.write(ack);
    options.onProgress?.(total);
    if (last) return total;
    expected = nextBlock(expected);
  }
}

/** Waits for ACK `block`; anything else is a violation, or the peer's ERR. */
export async function expectAck(conn: PacketConn, block: number): Promise<void> {
  const packet = await conn.readPacket();
  if (packet?.op !== Opcode.ACK || packet.block !== block) {
    throw unexpected(packet, Opcode.ACK, block);
  }
}

/** The error for receiving `packet` when `wantedOp` `wantedBlock` was due. */
function unexpected(packet: Packet | null, wantedOp: number, wantedBlock: number): Error {
  const wanted = `${opcodeName(wantedOp)} ${wantedBlock}`;
  if (packet === null) {
    return new Deno.errors.UnexpectedEof(`connection closed while waiting for ${wanted}`);
  }
  if (packet.op === Opcode.ERR) return new PeerError(packet.code, packet.message);
  const got = packet.op === Opcode.DAT || packet.op === Opcode.ACK
    ? `${opcodeName(packet.op)} ${packet.block}`
    : opcodeName(packet.op);
  const problem = packet.op === wantedOp ? "wrong block number" : "unexpected packet";
  return new ProtocolError(
    ErrorCode.ILLEGAL_OPERATION,
    `${problem}: got ${got}, expected ${wanted}`,
  );
}

/** Fills blocks completely from a source that may return short reads (pipes, stdin). */
class ChunkedReader {
  #source: ByteSource;
  #chunk = new Uint8Array(CHUNK_SIZE);
  #start = 0;
  #end = 0;
  #eof = false;

  constructor(source: ByteSource) {
    this.#source = source;
  }

  /** Copies up to `target.length` bytes into `target`; fewer only at the end of the source. */
  async fill(target: Uint8Array): Promise<number> {
    let filled = 0;
    while (filled < target.length) {
      if (this.#start === this.#end) {
        if (this.#eof) break;
        const n = await this.#source.read(this.#chunk);
        if (n === null) {
          this.#eof = true;
          break;
        }
        this.#start = 0;
        this.#end = n;
        continue;
      }
      const n = Math.min(target.length - filled, this.#end - this.#start);
      target.set(this.#chunk.subarray(this.#start, this.#start + n), filled);
      this.#start += n;
      filled += n;
    }
    return filled;
  }
}

/** Gathers small writes into large ones. */
class ChunkedWriter {
  #sink: ByteSink;
  #chunk = new Uint8Array(CHUNK_SIZE);
  #used = 0;

  constructor(sink: ByteSink) {
    this.#sink = sink;
  }

  async write(bytes: Uint8Array): Promise<void> {
    if (this.#used + bytes.length > this.#chunk.length) await this.flush();
    if (bytes.length > this.#chunk.length) return await writeAll(this.#sink, bytes);
    this.#chunk.set(bytes, this.#used);
    this.#used += bytes.length;
  }

  async flush(): Promise<void> {
    if (this.#used === 0) return;
    await writeAll(this.#sink, this.#chunk.subarray(0, this.#used));
    this.#used = 0;
  }
}

export async function writeAll(sink: ByteSink, bytes: Uint8Array): Promise<void> {
  let written = 0;
  while (written < bytes.length) written += await sink.write(bytes.subarray(written));
}

/** A source that yields `bytes`. */
export function bytesSource(bytes: Uint8Array): ByteSource {
  let offset = 0;
  return {
    read(buffer) {
      if (offset >= bytes.length) return Promise.resolve(null);
      const n = Math.min(buffer.length, bytes.length - offset);
      buffer.set(bytes.subarray(offset, offset + n));
      offset += n;
      return Promise.resolve(n);
    },
  };
}

/** A sink that keeps everything written to it in memory. */
export class MemorySink implements ByteSink {
  #parts: Uint8Array[] = [];
  #length = 0;

  write(bytes: Uint8Array): Promise<number> {
    this.#parts.push(bytes.slice());
    this.#length += bytes.length;
    return Promise.resolve(bytes.length);
  }

  bytes(): Uint8Array {
    const out = new Uint8Array(this.#length);
    let offset = 0;
    for (const part of this.#parts) {
      out.set(part, offset);
      offset += part.length;
    }
    return out;
  }
}
