/**
 * The options extension: block size, window size and transfer size,
 * negotiated with OPT and OACK before one request (docs/PROTOCOL.md).
 * Pure: what to grant, what to send, what the answer means.
 */

import { ErrorCode, ProtocolError } from "../store/errors.ts";
import { BLOCK_SIZE, type OptionPairs } from "./codec.ts";

/** How one transfer moves data: fsd/1 is 512-byte blocks, one at a time. */
export interface TransferParams {
  blockSize: number;
  windowSize: number;
}

export const FSD1: TransferParams = { blockSize: BLOCK_SIZE, windowSize: 1 };

/** The ranges the protocol allows (as TFTP's RFC 2348 and RFC 7440). */
export const BLKSIZE_RANGE = [8, 65464] as const;
export const WINDOWSIZE_RANGE = [1, 65535] as const;

/** What the client asked for in its OPT, checked. */
export interface Asked {
  blockSize?: number;
  windowSize?: number;
  /** For RRQ/DRQ: 0, asking for the size; for WRQ: the size of the upload. */
  transferSize?: number;
}

function refuse(message: string): ProtocolError {
  return new ProtocolError(ErrorCode.OPTION_REFUSED, `option negotiation failed: ${message}`);
}

function integer(
  pairs: OptionPairs,
  name: string,
  [min, max]: readonly [number, number],
): number | undefined {
  const text = pairs[name];
  if (text === undefined) return undefined;
  if (!/^\d{1,15}$/.test(text) || Number(text) < min || Number(text) > max) {
    throw refuse(`${name} ${JSON.stringify(text)} is not a number from ${min} to ${max}`);
  }
  return Number(text);
}

/**
 * Reads an OPT's options: unknown names are ignored, known ones out of range
 * throw ERR 8, and so does an OPT with no known option at all (its OACK
 * would be empty, which the framing does not allow).
 */
export function parseAsked(pairs: OptionPairs): Asked {
  const asked = {
    blockSize: integer(pairs, "blksize", BLKSIZE_RANGE),
    windowSize: integer(pairs, "windowsize", WINDOWSIZE_RANGE),
    transferSize: integer(pairs, "tsize", [0, Number.MAX_SAFE_INTEGER]),
  };
  if (Object.values(asked).every((value) => value === undefined)) {
    throw refuse(
      `no known option among ${Object.keys(pairs).map((name) => JSON.stringify(name)).join(", ")}`,
    );
  }
  return asked;
}

/** What the server grants: what was asked, lowered to its own limits. */
export function grant(asked: Asked, limits: TransferParams): TransferParams {
  return {
    blockSize: Math.min(asked.blockSize ?? BLOCK_SIZE, limits.blockSize),
    windowSize: Math.min(asked.windowSize ?? 1, limits.windowSize),
  };
}

/** The OACK for what was granted: only the options the client asked about. */
export function oackPairs(
  asked: Asked,
  granted: TransferParams,
  size?: number,
): OptionPairs {
  const out: OptionPairs = {};
  if (asked.blockSize !== undefined) out.blksize = String(granted.blockSize);
  if (asked.windowSize !== undefined) out.windowsize = String(granted.windowSize);
  if (asked.transferSize !== undefined && size !== undefined) out.tsize = String(size);
  return out;
}

/** The OPT a client sends for what it wants. */
export function optPairs(wanted: TransferParams, transferSize?: number): OptionPairs {
  const out: OptionPairs = {
    blksize: String(wanted.blockSize),
    windowsize: String(wanted.windowSize),
  };
  if (transferSize !== undefined) out.tsize = String(transferSize);
  return out;
}

/** The client's reading of an OACK: what applies now, and the size if told; a server raising a value is refused. */
export function readOack(
  wanted: TransferParams,
  oack: OptionPairs,
): TransferParams & { size?: number } {
  const answered = parseAsked(oack);
  const blockSize = answered.blockSize ?? BLOCK_SIZE;
  const windowSize = answered.windowSize ?? 1;
  if (blockSize > wanted.blockSize || windowSize > wanted.windowSize) {
    throw new ProtocolError(
      ErrorCode.OPTION_REFUSED,
      "option negotiation failed: the server raised a value",
    );
  }
  return { blockSize, windowSize, size: answered.transferSize };
}
