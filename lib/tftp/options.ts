/**
 * TFTP option negotiation (RFC 2347): blksize (RFC 2348), timeout and tsize
 * (RFC 2349), windowsize (RFC 7440), and fsd's `ackevery` (a sliding window:
 * docs/PROTOCOL.md). Pure: what a request asked, what the server grants,
 * what a client makes of the OACK.
 *
 * The server's rules, where the RFCs leave a choice: unknown options are
 * ignored (not acknowledged), and so is a timeout above MAX_GRANTED_TIMEOUT; a known option repeated, malformed or below
 * its range is refused with ERROR 8; blksize and windowsize above what the
 * server allows are lowered to its limit, as RFC 2348 and 7440 allow.
 */

import type { TransferParams as BaseTransferParams } from "../net/transfer_params.ts";
import { ErrorCode, ProtocolError } from "../store/errors.ts";
import { DEFAULT_BLOCK_SIZE, type OptionPairs } from "./codec.ts";

export const BLKSIZE_RANGE = [8, 65464] as const;
export const WINDOWSIZE_RANGE = [1, 65535] as const;
export const TIMEOUT_RANGE = [1, 255] as const;
/**
 * The longest timeout granted (seconds): a client asking for more gets no
 * timeout in the OACK and the server's own (RFC 2349 lets a server omit an
 * option it will not grant). 255 s times the retries would hold a slot for
 * 25 minutes.
 */
export const MAX_GRANTED_TIMEOUT = 10;
/**
 * Most bytes one window may hold. The sender keeps a window in memory to send
 * it again, and a whole window arrives at once: past a receiver's socket
 * buffer (208 KiB by default on Linux) the rest is dropped and costs a
 * timeout, so windows of large blocks are lowered to fit. 192 KiB takes three
 * blocks of 65464 bytes, which still fit (docs/PERFORMANCE.md, session 26).
 */
export const MAX_WINDOW_BYTES = 192 * 1024;
/**
 * Most bytes one sliding window (fsd's `ackevery`) may hold when a sender
 * thread sends it (lib/tftp/send_pool.ts). Only fsd's client asks for a
 * sliding window, and it asks for more than three large blocks only when its
 * socket's receive buffer holds them (`clientWindow`); the sender's ring of
 * two windows then takes 2 MiB, on at most one thread a core. 16 blocks of
 * 65464 bytes: a 1 GiB download in 0.33 s against 0.41 s with three
 * (docs/PERFORMANCE.md, session 36). Downloads on the event loop keep
 * MAX_WINDOW_BYTES: a thousand of them must not each hold megabytes.
 */
export const MAX_THREAD_WINDOW_BYTES = 16 * 65464;
/**
 * The largest window fsd's client asks for by default, and the receive
 * buffer it asks its blocking socket for (Linux grants up to
 * net.core.rmem_max, and doubles it).
 */
export const CLIENT_MAX_WINDOW = 16;
export const CLIENT_RECEIVE_BUFFER = 4 << 20;

const KNOWN = ["blksize", "timeout", "tsize", "windowsize", "ackevery"] as const;
type Known = typeof KNOWN[number];

/** What a request asked for, checked. */
export interface Asked {
  blockSize?: number;
  windowSize?: number;
  /** fsd's sliding window: the receiver acknowledges every this many blocks. */
  ackEvery?: number;
  timeoutSeconds?: number;
  /** RRQ: 0, asking for the size; WRQ: the size of the upload. */
  transferSize?: number;
}

/** How one TFTP transfer moves data: lib/net's TransferParams and a retransmission timeout. */
export interface TransferParams extends BaseTransferParams {
  /** How long to wait before sending again. */
  timeoutMs: number;
  /**
   * A sliding window (fsd's `ackevery`, below `windowSize`): the receiver
   * acknowledges every `ackEvery`-th block, and the sender keeps up to
   * `windowSize` blocks unacknowledged, sending on as each ACK comes.
   * Absent: RFC 7440's windows (an ACK per window, the next window after it).
   */
  ackEvery?: number;
}

/** Whether `params` slide (fsd's `ackevery`) rather than move a window at a time. */
export function slides(params: TransferParams): params is TransferParams & { ackEvery: number } {
  return params.ackEvery !== undefined && params.ackEvery < params.windowSize;
}

export interface ServerLimits {
  /** Largest block granted (--tftp-max-blksize). */
  maxBlockSize: number;
  /** Largest window granted. */
  maxWindowSize: number;
  /** The retransmission timeout when the client asks for none. */
  timeoutMs: number;
  /** The longest timeout granted, in seconds (default MAX_GRANTED_TIMEOUT). */
  maxTimeoutSeconds?: number;
}

function refuse(message: string): ProtocolError {
  return new ProtocolError(ErrorCode.OPTION_REFUSED, `option refused: ${message}`);
}

function isKnown(name: string): name is Known {
  return (KNOWN as readonly string[]).includes(name);
}

function integer(name: string, text: string, min: number): number {
  // Digits only, and few of them: an overlong value (tftp-hpa's CVE-2011-2199) is refused here.
  if (!/^\d{1,15}$/.test(text) || Number(text) < min) {
    throw refuse(`${name} ${JSON.stringify(text.slice(0, 32))} is not a number from ${min}`);
  }
  return Number(text);
}

/** `integer`, and no more than the range's top. */
function bounded(name: string, text: string, [min, max]: readonly [number, number]): number {
  const n = integer(name, text, min);
  if (n > max) throw refuse(`${name} ${text} above ${max}`);
  return n;
}

/** Reads a request's options: unknown ones ignored, known ones checked (ERROR 8 if broken). */
export function parseAsked(options: OptionPairs): Asked {
  const seen = new Set<string>();
  const asked: Asked = {};
  for (const [name, value] of options) {
    if (!isKnown(name)) continue;
    if (seen.has(name)) throw refuse(`${name} given twice`);
    seen.add(name);
    switch (name) {
      case "blksize":
        asked.blockSize = integer(name, value, BLKSIZE_RANGE[0]);
        break;
      case "windowsize":
        asked.windowSize = bounded(name, value, WINDOWSIZE_RANGE);
        break;
      case "ackevery":
        asked.ackEvery = bounded(name, value, WINDOWSIZE_RANGE);
        break;
      case "timeout":
        asked.timeoutSeconds = bounded(name, value, TIMEOUT_RANGE);
        break;
      case "tsize":
        asked.transferSize = integer(name, value, 0);
        break;
    }
  }
  return asked;
}

/**
 * What the server grants, and the OACK that says so (empty: send no OACK,
 * the transfer is plain RFC 1350). `size` answers an RRQ's tsize when known.
 * `onThread`: a download a sender thread will send, whose sliding window
 * may hold MAX_THREAD_WINDOW_BYTES (any other window: MAX_WINDOW_BYTES).
 */
export function grant(
  asked: Asked,
  limits: ServerLimits,
  size?: number,
  onThread = false,
): { params: TransferParams; oack: OptionPairs } {
  const oack: OptionPairs = [];
  const params: TransferParams = {
    blockSize: DEFAULT_BLOCK_SIZE,
    windowSize: 1,
    timeoutMs: limits.timeoutMs,
  };
  if (asked.blockSize !== undefined) {
    params.blockSize = Math.min(asked.blockSize, limits.maxBlockSize, BLKSIZE_RANGE[1]);
    oack.push(["blksize", String(params.blockSize)]);
  }
  const maxTimeout = limits.maxTimeoutSeconds ?? MAX_GRANTED_TIMEOUT;
  if (asked.timeoutSeconds !== undefined && asked.timeoutSeconds <= maxTimeout) {
    params.timeoutMs = asked.timeoutSeconds * 1000;
    oack.push(["timeout", String(asked.timeoutSeconds)]);
  }
  // A size of 0 is left out: curl takes "tsize 0" in an OACK for an error (and the RFC lets us).
  if (asked.transferSize !== undefined && size !== undefined && size > 0) {
    oack.push(["tsize", String(size)]);
  }
  if (asked.windowSize !== undefined) {
    const most = onThread && asked.ackEvery !== undefined
      ? MAX_THREAD_WINDOW_BYTES
      : MAX_WINDOW_BYTES;
    const fits = Math.max(1, Math.floor(most / params.blockSize));
    params.windowSize = Math.min(asked.windowSize, limits.maxWindowSize, fits);
    oack.push(["windowsize", String(params.windowSize)]);
  }
  // Granted only where it slides: an ACK every window or more is RFC 7440's own windows.
  if (asked.ackEvery !== undefined && asked.ackEvery < params.windowSize) {
    params.ackEvery = asked.ackEvery;
    oack.push(["ackevery", String(params.ackEvery)]);
  }
  return { params, oack };
}

/** A client's reading of the OACK: every option one it asked for, within what it asked. */
export function acceptOack(
  oack: OptionPairs,
  asked: Asked,
  timeoutMs: number,
): { params: TransferParams; transferSize?: number } {
  const params: TransferParams = { blockSize: DEFAULT_BLOCK_SIZE, windowSize: 1, timeoutMs };
  let transferSize: number | undefined;
  const seen = new Set<string>();
  for (const [name, value] of oack) {
    if (seen.has(name)) throw refuse(`the server acknowledged ${name} twice`);
    seen.add(name);
    const fits = (max: number | undefined, min = 1) => {
      const n = integer(name, value, min);
      if (max === undefined || n > max) {
        throw refuse(`the server answered ${name} ${value}, not asked for`);
      }
      return n;
    };
    switch (name) {
      case "blksize":
        params.blockSize = fits(asked.blockSize, BLKSIZE_RANGE[0]);
        break;
      case "windowsize":
        params.windowSize = fits(asked.windowSize);
        break;
      case "ackevery":
        params.ackEvery = fits(asked.ackEvery);
        break;
      case "timeout":
        params.timeoutMs = fits(asked.timeoutSeconds) * 1000;
        break;
      case "tsize":
        if (asked.transferSize === undefined) fits(undefined);
        transferSize = integer(name, value, 0);
        break;
      default:
        throw refuse(`the server acknowledged ${JSON.stringify(name)}, not asked for`);
    }
  }
  if (params.ackEvery !== undefined && !slides(params)) {
    throw refuse(
      `the server answered ackevery ${params.ackEvery}, not below windowsize ${params.windowSize}`,
    );
  }
  return { params, transferSize };
}

/**
 * The `ackevery` fsd's client asks for with a window of `windowSize`: an ACK
 * every half window (at least every block), so the pipe never drains
 * between windows and ACKs stay few; 1 for the default window of 3
 * (docs/PERFORMANCE.md, session 31).
 */
export function defaultAckEvery(windowSize: number): number {
  return Math.max(1, Math.floor(windowSize / 2));
}

/**
 * The window fsd's client asks for by default: for a download, as many
 * blocks as its socket's receive buffer surely holds (a datagram takes up to
 * about twice its size there: 70,997 bytes for one of 65464 in the default
 * 212,992-byte buffer, 17,749 for 8196), from TFTP_CLIENT_DEFAULTS' 3 up to
 * CLIENT_MAX_WINDOW; an upload's window lands in the server's buffer, which
 * the client cannot know: 3. `receiveBuffer` unknown (Deno's socket): 3.
 */
export function clientWindow(
  blockSize: number,
  download: boolean,
  receiveBuffer?: number,
): number {
  const base = TFTP_CLIENT_DEFAULTS.windowSize;
  if (!download || receiveBuffer === undefined) return base;
  const holds = Math.floor(receiveBuffer / (2 * (blockSize + 1024)));
  return Math.max(base, Math.min(CLIENT_MAX_WINDOW, holds));
}

/** The options a client sends for `asked`, in a fixed order. */
export function askedPairs(asked: Asked): OptionPairs {
  const pairs: OptionPairs = [];
  if (asked.blockSize !== undefined) pairs.push(["blksize", String(asked.blockSize)]);
  if (asked.timeoutSeconds !== undefined) pairs.push(["timeout", String(asked.timeoutSeconds)]);
  if (asked.transferSize !== undefined) pairs.push(["tsize", String(asked.transferSize)]);
  if (asked.windowSize !== undefined) pairs.push(["windowsize", String(asked.windowSize)]);
  if (asked.ackEvery !== undefined) pairs.push(["ackevery", String(asked.ackEvery)]);
  return pairs;
}

/** What fsd's TFTP client asks for and waits, unless told otherwise. */
export const TFTP_CLIENT_DEFAULTS = {
  port: 69,
  // The largest block, and a window that still fits the receive buffer of a default Linux
  // UDP socket (208 KiB): per datagram costs dominate, so few large ones win (docs/PERFORMANCE.md).
  blockSize: 65464,
  windowSize: 3,
  retransmitMs: 1000,
  timeoutMs: 60_000,
} as const;
