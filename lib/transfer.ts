/**
 * Moving one file's bytes as DAT/ACK exchanges, written once for both ends:
 * the server sends with `sendFile` for RRQ (and its greeting and listings),
 * the client for `put`; each receives with `receiveFile` for the other way.
 *
 * Memory per transfer is bounded: two file buffers and one batch of frames,
 * reused for every block. The file is read and written in large chunks, not
 * per block: 64 KiB at first, 1 MiB once a transfer has moved 4 MiB (each
 * file operation costs a hand-off to Deno's I/O threads, so a long transfer
 * wants few of them, while thousands of short ones must stay small). A
 * regular file is read ahead, and written behind, while the network moves
 * the other buffer. At most 64 transfers per process hold large buffers at
 * once; the rest keep small ones.
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
  /** A regular file: a read finishes on its own, so the next one may start before it is needed. */
  readonly regularFile?: boolean;
}

/** Where received bytes go: a file, stdout, or memory. */
export interface ByteSink {
  write(bytes: Uint8Array): Promise<number>;
  /** A regular file: a write finishes on its own, so it may go on while the next chunk arrives. */
  readonly regularFile?: boolean;
}

/** `file` as a source, read ahead of the network. */
export function fileSource(file: Deno.FsFile): ByteSource {
  return { read: (buffer) => file.read(buffer), regularFile: true };
}

/** `file` as a sink, written behind the network; `mapError` turns a write's error into the one to report. */
export function fileSink(file: Deno.FsFile, mapError?: (error: unknown) => Error): ByteSink {
  return {
    write: mapError
      ? (bytes) => file.write(bytes).catch((error) => Promise.reject(mapError(error)))
      : (bytes) => file.write(bytes),
    regularFile: true,
  };
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

const SMALL_CHUNK = 64 * 1024;
const LARGE_CHUNK = 1024 * 1024;
/** Bytes a transfer moves in small chunks before it switches to large ones. */
const GROW_AFTER = 4 * 1024 * 1024;

/**
 * How many transfers in this process may hold large buffers at once: past
 * that, the rest stay small, so a crowd of long transfers costs at most
 * this many times two large buffers, however many clients there are.
 */
const LARGE_BUFFER_SLOTS = 64;
let largeSlotsInUse = 0;

/** Transfers holding large buffers now (for tests). */
export function largeBufferSlotsInUse(): number {
  return largeSlotsInUse;
}

/** One side of one transfer's claim on a large-buffer slot. */
class BufferSize {
  #slot = false;

  /** The chunk size for a transfer that has moved `moved` bytes; takes a slot when it grows. */
  for(moved: number): number {
    if (moved >= GROW_AFTER && !this.#slot && largeSlotsInUse < LARGE_BUFFER_SLOTS) {
      largeSlotsInUse++;
      this.#slot = true;
    }
    return this.#slot ? LARGE_CHUNK : SMALL_CHUNK;
  }

  release(): void {
    if (!this.#slot) return;
    this.#slot = false;
    largeSlotsInUse--;
  }
}
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
  const reader = new ChunkedReader(source);
  try {
    return await sendBlocks(conn, reader, options);
  } finally {
    await reader.finish();
  }
}

async function sendBlocks(
  conn: PacketConn,
  reader: ChunkedReader,
  options: TransferOptions,
): Promise<number> {
  const { blockSize, windowSize } = options.params ?? FSD1;
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
  const writer = new ChunkedWriter(sink);
  try {
    return await receiveBlocks(conn, writer, blockSize, windowSize, options);
  } finally {
    conn.setMaxDataSize(BLOCK_SIZE);
    await writer.finish();
  }
}

async function receiveBlocks(
  conn: PacketConn,
  writer: ChunkedWriter,
  blockSize: number,
  windowSize: number,
  options: ReceiveOptions,
): Promise<number> {
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

/** A read into `buffer` that never rejects: its error is kept for whoever takes the result. */
interface ReadAhead {
  buffer: Uint8Array;
  result: Promise<number | null | { error: unknown }>;
}

/** Fills blocks completely from a source that may return short reads (pipes, stdin). */
class ChunkedReader {
  #source: ByteSource;
  // Allocated on first use, and never for sources in memory: a connection parked in
  // a transfer (an unanswered greeting, say) holds no buffer.
  #chunk: Uint8Array | undefined;
  #start = 0;
  #end = 0;
  #eof = false;
  #read = 0;
  /** The other buffer, free or being read into. */
  #spare: Uint8Array | undefined;
  #ahead: ReadAhead | undefined;
  #size = new BufferSize();

  constructor(source: ByteSource) {
    this.#source = source;
  }

  /** Copies up to `target.length` bytes into `target`; fewer only at the end of the source. */
  async fill(target: Uint8Array): Promise<number> {
    let filled = 0;
    while (filled < target.length) {
      if (this.#start === this.#end) {
        if (this.#eof) break;
        if (this.#source.inMemory) {
          // Memory: read straight into the block, no copy.
          const n = await this.#source.read(target.subarray(filled));
          if (n === null) this.#eof = true;
          else filled += n;
          continue;
        }
        await this.#nextChunk();
        continue;
      }
      const n = Math.min(target.length - filled, this.#end - this.#start);
      target.set(this.#chunk!.subarray(this.#start, this.#start + n), filled);
      this.#start += n;
      filled += n;
    }
    return filled;
  }

  /** Waits for a read in flight, if any, so that nothing outlives the transfer; frees its slot. */
  async finish(): Promise<void> {
    await this.#ahead?.result;
    this.#ahead = undefined;
    this.#size.release();
  }

  /** Makes the next chunk of the source current (or notes its end), then reads ahead. */
  async #nextChunk(): Promise<void> {
    const ahead = this.#ahead ?? this.#startRead(this.#buffer(this.#chunk));
    this.#ahead = undefined;
    const result = await ahead.result;
    if (result !== null && typeof result === "object") throw result.error;
    const previous = this.#chunk;
    this.#chunk = ahead.buffer;
    if (previous !== ahead.buffer) this.#spare = previous;
    this.#start = 0;
    this.#end = result ?? 0;
    if (result === null) {
      this.#eof = true;
      return;
    }
    this.#read += result;
    if (this.#source.regularFile) this.#ahead = this.#startRead(this.#buffer(this.#spare));
  }

  /** `reusable` if it has the size this point of the transfer wants, else a new buffer. */
  #buffer(reusable: Uint8Array | undefined): Uint8Array {
    const size = this.#size.for(this.#read);
    return reusable?.length === size ? reusable : new Uint8Array(size);
  }

  #startRead(buffer: Uint8Array): ReadAhead {
    const result = this.#source.read(buffer).catch((error: unknown) => ({ error }));
    return { buffer, result };
  }
}

/** Gathers small writes into large ones; to a regular file, writes one chunk while the next fills. */
class ChunkedWriter {
  #sink: ByteSink;
  #chunk: Uint8Array = new Uint8Array(SMALL_CHUNK);
  #used = 0;
  #written = 0;
  /** The other buffer, free or being written. */
  #spare: Uint8Array | undefined;
  #behind: Promise<void> | undefined;
  #size = new BufferSize();

  constructor(sink: ByteSink) {
    this.#sink = sink;
  }

  async write(bytes: Uint8Array): Promise<void> {
    if (this.#used + bytes.length > this.#chunk.length) await this.#handOff();
    if (bytes.length > this.#chunk.length) {
      await this.settle();
      return await writeAll(this.#sink, bytes);
    }
    this.#chunk.set(bytes, this.#used);
    this.#used += bytes.length;
  }

  /** Writes out everything gathered so far. */
  async flush(): Promise<void> {
    await this.#handOff();
    await this.settle();
  }

  /** Waits for a write in flight, if any; its error is thrown here. */
  async settle(): Promise<void> {
    const behind = this.#behind;
    this.#behind = undefined;
    await behind;
  }

  /** After the transfer, done or failed: waits for a write in flight (its error is not the news) and frees the slot. */
  async finish(): Promise<void> {
    await this.settle().catch(() => {});
    this.#size.release();
  }

  /** Starts writing the gathered chunk and gathers into the other buffer. */
  async #handOff(): Promise<void> {
    if (this.#used === 0) return;
    const full = this.#chunk.subarray(0, this.#used);
    this.#written += this.#used;
    this.#used = 0;
    const size = this.#size.for(this.#written);
    if (!this.#sink.regularFile) {
      await writeAll(this.#sink, full);
      if (this.#chunk.length !== size) this.#chunk = new Uint8Array(size);
      return;
    }
    await this.settle(); // the other buffer is free only once its write is done
    const next = this.#spare?.length === size ? this.#spare : new Uint8Array(size);
    this.#spare = this.#chunk;
    this.#chunk = next;
    const behind = writeAll(this.#sink, full);
    behind.catch(() => {}); // handled when settled; until then it must not count as unhandled
    this.#behind = behind;
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
