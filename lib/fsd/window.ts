/**
 * Moving one file's bytes as DAT/ACK exchanges, written once for both ends:
 * the server sends with `sendFile` for RRQ (and its greeting and listings),
 * the client for `put`; each receives with `receiveFile` for the other way.
 * A window of blocks goes out per ACK; the last block is the short one.
 *
 * Memory per transfer is bounded: the chunked reader or writer of
 * lib/bytes/ and one batch of frames, reused for every window.
 */

import { ErrorCode, PeerError, ProtocolError } from "../store/errors.ts";
import { FSD1, type TransferParams } from "./negotiation.ts";
import { ChunkedReader, ChunkedWriter } from "../bytes/chunked.ts";
import { giveBuffer, takeBuffer } from "../bytes/pool.ts";
import type { ByteSink, ByteSource } from "../bytes/source_sink.ts";
import type { PacketTransport } from "./transport.ts";
import type { SumCheck } from "./integrity.ts";
import {
  BLOCK_SIZE,
  DAT_HEADER_SIZE,
  encodeAck,
  encodeSum,
  nextBlock,
  Opcode,
  opcodeName,
  type Packet,
  SUM_SIZES,
  writeDataHeader,
} from "./codec.ts";

export interface TransferOptions {
  /** Called after each acknowledged block or window with the bytes moved so far. */
  onProgress?: (bytes: number) => void;
  /** Block and window size (default fsd/1: 512 bytes, one block at a time). */
  params?: TransferParams;
}

export interface SendOptions extends TransferOptions {
  /** Integrity: the digest of what was sent, sent as SUM right after the last DAT. */
  digest?: () => Promise<Uint8Array>;
  /** Bytes to send before DAT 1, in the same write (the OACK of an eager read). */
  lead?: Uint8Array;
  /** A pipelined read: every block goes out without waiting for an ACK (none is due). */
  unacknowledged?: boolean;
}

export interface ReceiveOptions extends TransferOptions {
  /** Refuse (ERR 3, allocation exceeded) once more than this many bytes arrive. */
  maxBytes?: number;
  /**
   * Integrity: a SUM is due right after the last DAT; this checks its digest
   * (and throws on a mismatch) before `onComplete` and the last ACK.
   */
  sum?: SumCheck;
  /**
   * Runs after the last block is written and flushed, before it is
   * acknowledged: a throw here is reported to the sender instead of the ACK.
   */
  onComplete?: () => Promise<void>;
  /** On a failure, still write out what arrived in order (a resumable download keeps it). */
  keepPartial?: boolean;
  /**
   * The last ACK goes out with the caller's next write (its next request) when
   * the connection can hold it (`writeSoon`): one socket write fewer per file.
   */
  holdLastAck?: boolean;
  /** A pipelined read: no ACK is sent, not even the last. */
  unacknowledged?: boolean;
}

/** Most bytes of DAT frames gathered into one socket write. */
const MAX_BATCH = 256 * 1024;
/** The largest SUM frame: its opcode and a SHA-256 digest. */
const MAX_SUM_FRAME = 2 + Math.max(...SUM_SIZES);

/**
 * Sends DAT 1, 2, ... from `source`, a window of blocks at a time, each window
 * after the ACK of the previous one's last block; returns the byte count.
 * With fsd/1's parameters that is one 512-byte block per ACK.
 */
export async function sendFile(
  conn: PacketTransport,
  source: ByteSource,
  options: SendOptions = {},
): Promise<number> {
  const reader = new ChunkedReader(source);
  try {
    return await sendWindows(conn, reader, options);
  } finally {
    await reader.finish();
  }
}

async function sendWindows(
  conn: PacketTransport,
  reader: ChunkedReader,
  options: SendOptions,
): Promise<number> {
  const { blockSize, windowSize: negotiated } = options.params ?? FSD1;
  // Unacknowledged, the whole file is one window: TCP's own flow control paces it.
  const windowSize = options.unacknowledged ? Infinity : negotiated;
  const frameSize = DAT_HEADER_SIZE + blockSize;
  // Frames of one window go out together, up to MAX_BATCH bytes per write.
  const framesPerWrite = Math.max(1, Math.min(windowSize, Math.floor(MAX_BATCH / frameSize)));
  // From the pool, and back to it only after a clean end: a write that failed may still be
  // queued on a TLS socket, which must not send another transfer's bytes from it.
  // Room for the SUM after the last frames: it goes out in the same write as the last block.
  const batch = takeBuffer(framesPerWrite * frameSize + MAX_SUM_FRAME);
  // A lead goes before the first frames, in the room of the frames it displaces (the batch
  // stays the size the pool keeps); alone first if not even one frame fits beside it.
  let lead = options.lead;
  if (lead && lead.length + frameSize + MAX_SUM_FRAME > batch.length) {
    await conn.write(lead);
    lead = undefined;
  }
  let block = 1;
  let total = 0;
  for (;;) {
    let sent = 0; // blocks of this window
    let last = false;
    let lastBlock = block;
    while (sent < windowSize && !last) {
      let used = 0;
      let room = framesPerWrite;
      if (lead) {
        batch.set(lead);
        used = lead.length;
        room = Math.floor((batch.length - MAX_SUM_FRAME - used) / frameSize);
        lead = undefined;
      }
      for (let frames = 0; frames < room && sent < windowSize && !last; frames++) {
        const size = await reader.fill(batch.subarray(used + DAT_HEADER_SIZE, used + frameSize));
        writeDataHeader(batch.subarray(used), block, size);
        used += DAT_HEADER_SIZE + size;
        total += size;
        sent++;
        lastBlock = block;
        block = nextBlock(block);
        last = size < blockSize;
      }
      if (last && options.digest) {
        const sum = encodeSum(await options.digest());
        batch.set(sum, used);
        used += sum.length;
      }
      await conn.write(batch.subarray(0, used));
      if (options.unacknowledged) options.onProgress?.(total);
    }
    if (!options.unacknowledged) {
      await expectAck(conn, lastBlock);
      options.onProgress?.(total);
    }
    if (last) {
      giveBuffer(batch);
      return total;
    }
  }
}

/**
 * Receives DAT 1, 2, ... into `sink`, acknowledging the last block of each
 * window and the final (short) block; returns the byte count.
 */
export async function receiveFile(
  conn: PacketTransport,
  sink: ByteSink,
  options: ReceiveOptions = {},
): Promise<number> {
  const { blockSize, windowSize } = options.params ?? FSD1;
  // The decoder refuses a DAT over the block size as soon as its header arrives.
  conn.setMaxDataSize(blockSize);
  const writer = new ChunkedWriter(sink);
  try {
    return await receiveWindows(conn, writer, blockSize, windowSize, options);
  } catch (error) {
    if (options.keepPartial) await writer.flush().catch(() => {});
    throw error;
  } finally {
    conn.setMaxDataSize(BLOCK_SIZE);
    await writer.finish();
  }
}

async function receiveWindows(
  conn: PacketTransport,
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
      if (options.sum) await options.sum.check(await expectSum(conn, options.sum.size));
      await options.onComplete?.();
    }
    if (options.unacknowledged) {
      if (last || inWindow === windowSize) {
        options.onProgress?.(total);
        inWindow = 0;
      }
    } else if (last || inWindow === windowSize) {
      ack[2] = expected >> 8;
      ack[3] = expected & 0xff;
      if (last && options.holdLastAck && conn.writeSoon) conn.writeSoon(ack);
      else await conn.write(ack);
      options.onProgress?.(total);
      inWindow = 0;
    }
    if (last) return total;
    expected = nextBlock(expected);
  }
}

/** Reads the SUM due after a transfer's last DAT. */
async function expectSum(conn: PacketTransport, size: number): Promise<Uint8Array> {
  conn.acceptSum(size);
  try {
    const packet = await conn.readPacket();
    if (packet?.op === Opcode.SUM) return packet.digest;
    throw unexpected(packet, Opcode.SUM, 0);
  } finally {
    conn.acceptSum(0);
  }
}

/** Waits for ACK `block`; anything else is a violation, or the peer's ERR. */
export async function expectAck(conn: PacketTransport, block: number): Promise<void> {
  const packet = await conn.readPacket();
  if (packet?.op !== Opcode.ACK || packet.block !== block) {
    throw unexpected(packet, Opcode.ACK, block);
  }
}

/** The error for receiving `packet` when `wantedOp` `wantedBlock` was due. */
function unexpected(packet: Packet | null, wantedOp: number, wantedBlock: number): Error {
  const wanted = wantedOp === Opcode.SUM ? "SUM" : `${opcodeName(wantedOp)} ${wantedBlock}`;
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
