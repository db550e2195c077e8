/**
 * Moving a file's blocks over a DatagramChannel, both ways, with windows (RFC 7440;
 * a window of 1 is RFC 1350's lock-step), or sliding (fsd's `ackevery`, below).
 *
 * The sender keeps the current window in a ring of reusable packets and
 * sends it again only when its timer runs out, or from just after the
 * block an ACK names when the ACK ends short of the window (the receiver
 * saw a gap). An ACK that acknowledges nothing new (a duplicate, or an old
 * one) is ignored: it never causes a send, so the Sorcerer's Apprentice
 * bug (RFC 1123 4.2.3.1) cannot start. Block numbers are counted without
 * limit and sent modulo 2^16, so files of any size roll over to block 0.
 * A sliding window (fsd's `ackevery`) has its own sender, `sendSliding`,
 * and the receiver's few differences are marked where they are.
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
import { slides, type TransferParams } from "./options.ts";
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
 * A read's first exchange when options were granted: the OACK, sent until
 * the client answers ACK 0 (each wait `params.timeoutMs`, and none past
 * `firstAnswerBy`), `retries` times again at most.
 */
export async function awaitAckZero(
  channel: DatagramChannel,
  oack: Uint8Array,
  config: TransferConfig,
  firstAnswerBy: number,
): Promise<void> {
  for (let tries = 0; tries <= config.retries; tries++) {
    channel.send(oack);
    const deadline = Math.min(channel.now() + config.params.timeoutMs, firstAnswerBy);
    for (;;) {
      const bytes = await channel.receive(deadline);
      if (bytes === null) {
        checkFirstAnswer(channel, firstAnswerBy);
        break;
      }
      const packet = parseFromPeer(bytes, 0);
      if (packet.op === Opcode.ACK && packet.block === 0) return;
      if (packet.op !== Opcode.ACK) throw unexpected(packet, "ACK 0");
    }
  }
  throw new Deno.errors.TimedOut("timed out: no ACK of the OACK");
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
  // A file its source lets be read synchronously (one on a disk, or every mount local: the store
  // decides) is read straight into each datagram: no copy and no hand-off to Deno's I/O threads,
  // 5-20% of a lock-step download at blksize 65464 (docs/PERFORMANCE.md, session 32). Any other
  // is read in large chunks on Deno's threads, ahead of the network: a synchronous read of a
  // stalled network file system would stall every client of the process.
  const readSync = source.regularFile && source.readSync?.bind(source);
  const reader = readSync ? undefined : new ChunkedReader(source);
  try {
    // Only a read that finishes on its own is done ahead: a pipe's may wait on a person.
    const ahead = source.regularFile === true || source.inMemory === true;
    const { blockSize, windowSize } = config.params;
    const fill = readSync ? (block: Uint8Array) => fillSync(readSync, block) : reader!;
    const ring = new BlockRing(fill, blockSize, ahead ? 2 * windowSize : windowSize);
    const send = slides(config.params) ? sendSliding : sendWindows;
    return await send(channel, ring, config);
  } finally {
    await reader?.finish();
  }
}

/** Fills `block` from `readSync`; short only at the end of the file. */
function fillSync(readSync: (buffer: Uint8Array) => number | null, block: Uint8Array): number {
  let filled = 0;
  while (filled < block.length) {
    const n = readSync(block.subarray(filled));
    if (n === null || n === 0) break;
    filled += n;
  }
  return filled;
}

/** Where a ring's blocks come from: a synchronous read, or a ChunkedReader. */
type BlockFill = ((block: Uint8Array) => number) | ChunkedReader;

/**
 * The window loop. When the ring holds two windows (a source read ahead):
 * the one on the wire, and the next, read while the peer's ACK is on its
 * way (ready to go the moment the ACK arrives).
 */
async function sendWindows(
  channel: DatagramChannel,
  ring: BlockRing,
  config: TransferConfig,
): Promise<number> {
  const { windowSize } = config.params;
  let base = 1; // first block not yet acknowledged
  let bytes = 0;
  let retries = 0;
  let answered = false;
  for (;;) {
    // The window (read ahead already, but for the first), sent whole; then the next one read.
    const end = await ring.window(base, windowSize);
    for (let block = base; block <= end; block++) ring.send(channel, block);
    // Wait for an ACK that moves the window, reading the next window meanwhile.
    const deadline = waitUntil(channel, config, answered);
    let next: Promise<Uint8Array | null> | undefined = channel.receive(deadline);
    await ring.readAhead(base);
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
    for (let block = base; block <= acked; block++) bytes += ring.dataLength(block);
    config.onProgress?.(bytes);
    if (acked === ring.last) return bytes;
    base = acked + 1;
  }
}

/**
 * The blocks a sender may still have to send again, read ahead of the
 * network into reusable packets: block `b` lives in slot `b % slots`, so a
 * slot is read again only once its block is acknowledged (nothing is read
 * past the first unacknowledged block plus `slots` - 1).
 */
class BlockRing {
  readonly #slots: number;
  /** Blocks 1..#loaded have been read (the latest #slots of them are here). */
  #loaded = 0;
  /** The short block that ends the file, once read. */
  last = Infinity;
  readonly #fill: BlockFill;
  readonly #blockSize: number;
  readonly #packets: Uint8Array[];
  readonly #lengths: number[];

  constructor(fill: BlockFill, blockSize: number, slots: number) {
    this.#fill = fill;
    this.#blockSize = blockSize;
    this.#slots = slots;
    this.#packets = Array.from(
      { length: slots },
      () => new Uint8Array(DATA_HEADER_SIZE + blockSize),
    );
    this.#lengths = new Array(slots).fill(0);
  }

  /** Reads the window of `size` blocks from `base` (as far as the file goes); its last block. */
  async window(base: number, size: number): Promise<number> {
    const end = base + size - 1;
    await this.#load(end);
    return Math.min(this.#loaded, end);
  }

  /** Reads on as far as the ring holds, `base` being the first block not yet acknowledged. */
  async readAhead(base: number): Promise<void> {
    await this.#load(base + this.#slots - 1);
  }

  /** Reads blocks up to `upTo` (never past the file's last block). */
  async #load(upTo: number): Promise<void> {
    while (this.#loaded < upTo && this.#loaded < this.last) {
      const block = ++this.#loaded;
      const packet = this.#packets[block % this.#slots];
      const data = packet.subarray(DATA_HEADER_SIZE);
      const fill = this.#fill;
      const n = typeof fill === "function" ? fill(data) : await fill.fill(data);
      writeDataHeader(packet, wireBlock(block));
      this.#lengths[block % this.#slots] = DATA_HEADER_SIZE + n;
      if (n < this.#blockSize) this.last = block;
    }
  }

  send(channel: DatagramChannel, block: number): void {
    const slot = block % this.#slots;
    channel.send(this.#packets[slot].subarray(0, this.#lengths[slot]));
  }

  dataLength(block: number): number {
    return this.#lengths[block % this.#slots] - DATA_HEADER_SIZE;
  }
}

/**
 * The sliding loop (fsd's `ackevery`): up to `windowSize` blocks
 * unacknowledged, and each ACK that acknowledges something new lets the
 * next blocks go at once, so the pipe does not drain between windows. The
 * receiver reports a gap by repeating its last ACK: an ACK that
 * acknowledges nothing new sends again from the first unacknowledged block,
 * once for each such block (duplicated ACKs cannot multiply sends: no
 * Sorcerer's Apprentice); a timeout sends again from there too. The ring's
 * second window (a source read ahead) is read while ACKs travel.
 */
async function sendSliding(
  channel: DatagramChannel,
  ring: BlockRing,
  config: TransferConfig,
): Promise<number> {
  const { windowSize } = config.params;
  let base = 1; // first block not yet acknowledged
  let next = 1; // next block to send
  let sent = 0; // the highest block sent yet (an ACK may name any up to it)
  let wentBackAt = 0; // the base a repeated ACK last sent again from
  let bytes = 0;
  let retries = 0;
  let answered = false;
  let deadline = waitUntil(channel, config, answered);
  for (;;) {
    const end = await ring.window(base, windowSize);
    for (; next <= end; next++) ring.send(channel, next);
    sent = Math.max(sent, end);
    const answer = channel.receive(deadline);
    await ring.readAhead(base); // while the ACK travels
    const bytesIn = await answer;
    if (bytesIn === null) {
      if (!answered) checkFirstAnswer(channel, config.firstAnswerBy);
      if (++retries > config.retries) throw timedOut("ACK", config);
      next = base;
      deadline = waitUntil(channel, config, answered);
      continue;
    }
    const packet = parseFromPeer(bytesIn, 0);
    if (isStale(packet)) continue;
    if (packet.op !== Opcode.ACK) throw unexpected(packet, "ACK");
    // How many blocks this acknowledges (0: a repeat); more than were sent: old news.
    const count = (packet.block - wireBlock(base - 1)) & 0xffff;
    if (count === 0) {
      if (wentBackAt !== base) {
        wentBackAt = base;
        next = base;
      }
      continue;
    }
    if (count > sent - base + 1) continue;
    answered = true;
    retries = 0;
    for (let block = base; block < base + count; block++) bytes += ring.dataLength(block);
    config.onProgress?.(bytes);
    base += count;
    next = Math.max(next, base);
    if (base > ring.last) return bytes;
    deadline = channel.now() + config.params.timeoutMs;
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
  const sliding = slides(config.params);
  // Blocks in order between ACKs: a window (RFC 7440), or `ackevery` when sliding.
  const every = sliding ? config.params.ackEvery! : windowSize;
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
        // Sliding, a block ahead is a gap: an ACK that moved the sender on would not send it
        // back, so the ACK goes twice and the repeat does (a TCP-like duplicate ACK).
        const ahead = packet.op === Opcode.DATA &&
          ((packet.block - wireBlock(expected)) & 0xffff) < 0x8000;
        const repeat = sliding && ahead && inWindow > 0;
        acknowledge();
        if (repeat) acknowledge();
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
    if (!done && inWindow === every) acknowledge();
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
