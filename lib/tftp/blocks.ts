/**
 * Moving a file's blocks over a DatagramChannel, both ways, with windows (RFC 7440;
 * a window of 1 is RFC 1350's lock-step).
 *
 * The sender keeps the current window in a ring of reusable packets and
 * sends it again only when its timer runs out, or from just after the
 * block an ACK names when the ACK ends short of the window (the receiver
 * saw a gap). An ACK that acknowledges nothing new (a duplicate, or an old
 * one) is ignored: it never causes a send, so the Sorcerer's Apprentice
 * bug (RFC 1123 4.2.3.1) cannot start. Block numbers are counted without
 * limit and sent modulo 2^16, so files of any size roll over to block 0.
 */

import { type ByteSink, type ByteSource, writeAllSync } from "../bytes/source_sink.ts";
import { ChunkedReader, ChunkedWriter } from "../bytes/chunked.ts";
import { ErrorCode, PeerError, ProtocolError } from "../store/errors.ts";
import {
  DATA_HEADER_SIZE,
  encodeAck,
  Opcode,
  type Packet,
  parsePacket,
  wireBlock,
  writeDataHeader,
} from "./codec.ts";
import type { TransferParams } from "./options.ts";
import type { DatagramChannel } from "./channel.ts";

export interface TransferConfig {
  params: TransferParams;
  /** Times in a row a timer may run out before the transfer is given up. */
  retries: number;
  /** Hears the bytes moved so far. */
  onProgress?: (bytes: number) => void;
  /**
   * A `channel.now()` time by which the peer's first answer (the first
   * ACK, the first DATA) must come, whatever the timeout and retries: a
   * forged request holds its slot no longer.
   */
  firstAnswerBy?: number;
}

/** The deadline of one wait: the timeout, or sooner while the first answer is due. */
function waitUntil(channel: DatagramChannel, config: TransferConfig, answered: boolean): number {
  const timeout = channel.now() + config.params.timeoutMs;
  return answered ? timeout : Math.min(timeout, config.firstAnswerBy ?? Infinity);
}

/** Throws once the first answer is overdue. */
export function checkFirstAnswer(channel: DatagramChannel, firstAnswerBy = Infinity): void {
  if (channel.now() >= firstAnswerBy) {
    throw new Deno.errors.TimedOut("timed out: no first answer from the client in time");
  }
}

function timedOut(what: string, config: TransferConfig): Deno.errors.TimedOut {
  const seconds = (config.params.timeoutMs / 1000).toFixed(1);
  return new Deno.errors.TimedOut(
    `timed out: no ${what} after ${config.retries + 1} tries of ${seconds} s`,
  );
}

/** A packet from the peer: ERROR becomes PeerError, a malformed one ProtocolError 4. */
export function parseFromPeer(bytes: Uint8Array, maxData: number): Packet {
  const packet = parsePacket(bytes, maxData);
  if (packet.op === Opcode.ERROR) throw new PeerError(packet.code, packet.message);
  return packet;
}

function unexpected(packet: Packet, wanted: string): ProtocolError {
  return new ProtocolError(
    ErrorCode.ILLEGAL_OPERATION,
    `illegal TFTP operation: expected ${wanted}, got opcode ${packet.op}`,
  );
}

/**
 * A late copy of what started the transfer (the request, the OACK): the
 * network repeated or delayed it. Ignored, not a violation.
 */
function isStale(packet: Packet): boolean {
  return packet.op === Opcode.RRQ || packet.op === Opcode.WRQ || packet.op === Opcode.OACK;
}

/**
 * Sends `source` as DATA blocks 1, 2, ... (the peer has already agreed to
 * the transfer); returns the bytes sent once the last block is acknowledged.
 */
export async function sendFile(
  channel: DatagramChannel,
  source: ByteSource,
  config: TransferConfig,
): Promise<number> {
  // Read asynchronously, as everywhere in a server: a synchronous read of a file on a network file
  // system that stalls would stall every client of the process (a sync read saved about 20% of
  // the server's CPU at blksize 65464, docs/PERFORMANCE.md).
  const reader = new ChunkedReader(source); // the file is read ahead of the network
  try {
    // Only a read that finishes on its own is done ahead: a pipe's may wait on a person.
    const ahead = source.regularFile === true || source.inMemory === true;
    return await sendWindows(channel, reader, config, ahead);
  } finally {
    await reader.finish();
  }
}

/**
 * The window loop. With `readAhead`, the ring holds two windows: the one on
 * the wire, and the next, read while the peer's ACK is on its way (ready to
 * go the moment the ACK arrives).
 */
async function sendWindows(
  channel: DatagramChannel,
  reader: ChunkedReader,
  config: TransferConfig,
  readAhead: boolean,
): Promise<number> {
  const { blockSize, windowSize } = config.params;
  const slots = readAhead ? 2 * windowSize : windowSize;
  const ring = Array.from({ length: slots }, () => ({
    packet: new Uint8Array(DATA_HEADER_SIZE + blockSize),
    length: 0,
  }));
  let base = 1; // first block not yet acknowledged
  let loaded = 0; // blocks 1..loaded are in the ring (or were)
  let last = Infinity; // the short block that ends the file, once read
  let bytes = 0;
  let retries = 0;
  let answered = false;
  // Reads blocks into the ring up to `upTo` (never past the file's last block).
  const load = async (upTo: number) => {
    while (loaded < upTo && loaded < last) {
      const block = ++loaded;
      const slot = ring[block % slots];
      const n = await reader.fill(slot.packet.subarray(DATA_HEADER_SIZE));
      writeDataHeader(slot.packet, wireBlock(block));
      slot.length = DATA_HEADER_SIZE + n;
      if (n < blockSize) last = block;
    }
  };
  for (;;) {
    // The window (read ahead already, but for the first), sent whole; then the next one read.
    await load(base + windowSize - 1);
    const end = Math.min(loaded, last, base + windowSize - 1);
    for (let block = base; block <= end; block++) {
      const slot = ring[block % slots];
      channel.send(slot.packet.subarray(0, slot.length));
    }
    // Wait for an ACK that moves the window, reading the next window meanwhile.
    const deadline = waitUntil(channel, config, answered);
    let next: Promise<Uint8Array | null> | undefined = channel.receive(deadline);
    await load(base + slots - 1);
    let acked: number | undefined;
    while (acked === undefined) {
      const bytesIn = await (next ?? channel.receive(deadline));
      next = undefined;
      if (bytesIn === null) break;
      const packet = parseFromPeer(bytesIn, 0);
      if (isStale(packet)) continue;
      if (packet.op !== Opcode.ACK) throw unexpected(packet, "ACK");
      // Which block of the window (base - 1 .. end) this names; anything else is old news.
      const offset = (packet.block - wireBlock(base)) & 0xffff;
      if (offset <= end - base) acked = base + offset;
    }
    if (acked === undefined) {
      if (!answered) checkFirstAnswer(channel, config.firstAnswerBy);
      if (++retries > config.retries) throw timedOut("ACK", config);
      continue;
    }
    answered = true;
    retries = 0;
    for (let block = base; block <= acked; block++) {
      bytes += ring[block % slots].length - DATA_HEADER_SIZE;
    }
    config.onProgress?.(bytes);
    if (acked === last) return bytes;
    base = acked + 1;
  }
}

/** What a receiver sends while it waits for the first DATA, again on each timeout. */
export interface FirstReply {
  /** The RRQ, or ACK 0 after an OACK (client); ACK 0 or the OACK (server). */
  packet: Uint8Array;
}

/**
 * Receives DATA blocks 1, 2, ... into `sink`, acknowledging each window;
 * `reply` is what to send again while nothing comes (the request, ACK 0 or
 * the OACK). `beforeLastAck` runs before the last block is acknowledged
 * (the server commits the upload there, so an ACK means it is on disk).
 * Returns the bytes received and the final ACK, to send again if the peer
 * repeats its last block.
 */
export async function receiveFile(
  channel: DatagramChannel,
  sink: ByteSink,
  config: TransferConfig & {
    reply: Uint8Array;
    maxBytes?: number;
    /** A datagram already received (a client's first DATA, when the server ignored options). */
    first?: Uint8Array;
  },
  beforeLastAck?: () => Promise<void>,
): Promise<{ bytes: number; finalAck: Uint8Array }> {
  if (sink.writeSync) {
    // A client's sink: each block written from the receive buffer as it comes (no copy, no op).
    const writeSync = sink.writeSync.bind(sink);
    const direct = { write: (bytes: Uint8Array) => writeAllSync(writeSync, bytes) };
    return await receiveWindows(channel, direct, config, beforeLastAck);
  }
  const writer = new ChunkedWriter(sink); // written behind the network
  try {
    return await receiveWindows(channel, writer, config, beforeLastAck);
  } finally {
    await writer.finish();
  }
}

/** Where received blocks go: a `ChunkedWriter`, or a synchronous write (no flush needed). */
interface BlockWriter {
  write(bytes: Uint8Array): Promise<void> | void;
  flush?(): Promise<void>;
}

async function receiveWindows(
  channel: DatagramChannel,
  writer: BlockWriter,
  config: TransferConfig & { reply: Uint8Array; maxBytes?: number; first?: Uint8Array },
  beforeLastAck?: () => Promise<void>,
): Promise<{ bytes: number; finalAck: Uint8Array }> {
  const { blockSize, windowSize, timeoutMs } = config.params;
  let expected = 1;
  let inWindow = 0;
  let answeredStray = false; // one ACK per run of duplicates or gaps, not one per packet
  let bytes = 0;
  let retries = 0;
  let deadline = waitUntil(channel, config, false);
  let first = config.first;
  // Acknowledges everything received in order (before any, what started the transfer);
  // the sender goes on from just after it, so a new window starts here.
  const acknowledge = () => {
    const ack = expected > 1 ? encodeAck(wireBlock(expected - 1)) : config.reply;
    channel.send(ack);
    inWindow = 0;
    return ack;
  };
  for (;;) {
    const bytesIn = first ?? await channel.receive(deadline);
    first = undefined;
    if (bytesIn === null) {
      if (expected === 1) checkFirstAnswer(channel, config.firstAnswerBy);
      if (++retries > config.retries) throw timedOut("DATA", config);
      acknowledge();
      deadline = waitUntil(channel, config, expected > 1);
      continue;
    }
    const packet = parseFromPeer(bytesIn, blockSize);
    if (!isStale(packet) && packet.op !== Opcode.DATA) throw unexpected(packet, "DATA");
    if (packet.op === Opcode.DATA && packet.block !== wireBlock(expected)) {
      // A copy of a block of this window (not yet acknowledged): the network repeated it. Only
      // a block from before the last ACK means the sender missed that ACK and needs it again.
      const behind = (wireBlock(expected) - packet.block) & 0xffff;
      if (behind >= 1 && behind <= inWindow) continue;
    }
    if (packet.op !== Opcode.DATA || packet.block !== wireBlock(expected)) {
      if (!answeredStray) {
        answeredStray = true;
        acknowledge();
      }
      continue;
    }
    retries = 0;
    answeredStray = false;
    deadline = channel.now() + timeoutMs;
    bytes += packet.data.length;
    if (config.maxBytes && bytes > config.maxBytes) {
      throw new ProtocolError(ErrorCode.DISK_FULL, `upload too large: over ${config.maxBytes}`);
    }
    const done = packet.data.length < blockSize;
    expected++;
    inWindow++;
    // A window's ACK goes out before its last block is written: the sender's next window is
    // then on its way while this one is written (the last block's ACK waits for the disk).
    if (!done && inWindow === windowSize) acknowledge();
    const writing = writer.write(packet.data);
    if (writing) await writing;
    config.onProgress?.(bytes);
    if (done) {
      await writer.flush?.();
      await beforeLastAck?.();
      return { bytes, finalAck: acknowledge() };
    }
  }
}

/**
 * After the last ACK, waits one timeout for the peer to repeat its last
 * block (our ACK was lost) and answers it again (RFC 1350's "dallying").
 */
export async function dally(channel: DatagramChannel, finalAck: Uint8Array, timeoutMs: number) {
  const deadline = channel.now() + timeoutMs;
  while ((await channel.receive(deadline)) !== null) channel.send(finalAck);
}
