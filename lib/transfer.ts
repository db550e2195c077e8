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
import { FSD1, type TransferParams } from "./options.ts";
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
  /** Reads are cheap copies from memory: no read buffer is needed in front of it. */
  readonly inMemory?: boolean;
}

/** Where received bytes go: a file, stdout, or memory. */
export interface ByteSink {
  write(bytes: Uint8Array): Promise<number>;
}

export interface TransferOptions {
  /** Called after each acknowledged block or window with the bytes moved so far. */
  onProgress?: (bytes: number) => void;
  /** Block and window size (default fsd/1: 512 bytes, one block at a time). */
  params?: TransferParams;
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
/** Most bytes of DAT frames gathered into one socket write. */
const MAX_BATCH = 256 * 1024;

/**
 * Sends DAT 1, 2, ... from `source`, a window of blocks at a time, each window
 * after the ACK of the previous one's last block; returns the byte count.
 * With fsd/1's parameters that is one 512-byte block per ACK.
 */
export async function sendFile(
  conn: PacketConn,
  source: ByteSource,
  options: TransferOptions = {},
): Promise<number> {
  const { blockSize, windowSize } = options.params ?? FSD1;
  const reader = new ChunkedReader(source);
  const frameSize = DAT_HEADER_SIZE + blockSize;
  // Frames of one window go out together, up to MAX_BATCH bytes per write.
  const framesPerWrite = Math.max(1, Math.min(windowSize, Math.floor(MAX_BATCH / frameSize)));
  const batch = new Uint8Array(framesPerWrite * frameSize);
  let block = 1;
  let total = 0;
  for (;;) {
    let sent = 0; // blocks of this window
    let last = false;
    let lastBlock = block;
    while (sent < windowSize && !last) {
      let used = 0;
      for (let frames = 0; frames < framesPerWrite && sent < windowSize && !last; frames++) {
        const size = await reader.fill(batch.subarray(used + DAT_HEADER_SIZE, used + frameSize));
        writeDataHeader(batch.subarray(used), block, size);
        used += DAT_HEADER_SIZE + size;
        total += size;
        sent++;
        lastBlock = block;
        block = nextBlock(block);
        last = size < blockSize;
      }
      await conn.write(batch.subarray(0, used));
    }
    await expectAck(conn, lastBlock);
    options.onProgress?.(total);
    if (last) return total;
  }
}

/**
 * Receives DAT 1, 2, ... into `sink`, acknowledging the last block of each
 * window and the final (short) block; returns the byte count.
 */
export async function receiveFile(
  conn: PacketConn,
  sink: ByteSink,
  options: ReceiveOptions = {},
): Promise<number> {
  const { blockSize, windowSize } = options.params ?? FSD1;
  // The decoder refuses a DAT over the block size as soon as its header arrives.
  conn.setMaxDataSize(blockSize);
  try {
    return await receiveBlocks(conn, sink, blockSize, windowSize, options);
  } finally {
    conn.setMaxDataSize(BLOCK_SIZE);
  }
}

async function receiveBlocks(
  conn: PacketConn,
  sink: ByteSink,
  blockSize: number,
  windowSize: number,
  options: ReceiveOptions,
): Promise<number> {
  const writer = new ChunkedWriter(sink);
  const ack = encodeAck(0);
  let expected = 1;
  let inWindow = 0;
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
    const last = packet.data.length < blockSize;
    inWindow++;
    if (last) {
      await writer.flush();
      await options.onComplete?.();
    }
    if (last || inWindow === windowSize) {
      ack[2] = expected >> 8;
      ack[3] = expected & 0xff;
      await conn.write(ack);
      options.onProgress?.(total);
      inWindow = 0;
    }
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
  // Allocated on first use, and never for sources in memory: a connection parked in
  // a transfer (an unanswered greeting, say) holds no 64 KiB buffer.
  #chunk: Uint8Array | undefined;
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
        if (this.#source.inMemory || target.length - filled >= CHUNK_SIZE) {
          // Memory, or a block as large as our buffer: read straight into it, no copy.
          const n = await this.#source.read(target.subarray(filled));
          if (n === null) this.#eof = true;
          else filled += n;
          continue;
        }
        this.#chunk ??= new Uint8Array(CHUNK_SIZE);
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
      target.set(this.#chunk!.subarray(this.#start, this.#start + n), filled);
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
    inMemory: true,
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
