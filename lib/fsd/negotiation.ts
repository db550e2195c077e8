/**
 * The options extension: block size, window size and transfer size,
 * negotiated with OPT and OACK before one request (docs/PROTOCOL.md).
 * Pure: what to grant, what to send, what the answer means.
 */

import type { ChecksumName } from "../bytes/sha256.ts";
import type { TransferParams } from "../net/transfer_params.ts";
import { ErrorCode, ProtocolError } from "../store/errors.ts";
import { BLOCK_SIZE, type OptionPairs } from "./codec.ts";
import { optionRecord } from "../net/option_pairs.ts";

export type { TransferParams };

/** fsd/1 without options: 512-byte blocks, one at a time. */
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
  /** Integrity: the sender sends SUM (the SHA-256 of the whole file) after the last DAT. */
  sha256?: boolean;
  /** Integrity, the fast check: SUM carries the CRC-32 of the whole file (4 bytes) instead. */
  crc32?: boolean;
  /** RRQ: 0 asks what the name is; the OACK says 1 (a file) or 2 (a directory's listing). */
  kind?: number;
  /**
   * RRQ: 0 asks for the file's mtime (Unix seconds); with `offset`, the mtime it must still have.
   * WRQ: the mtime the new file gets (0: none asked).
   */
  mtime?: number;
  /** RRQ: resume: DAT 1 starts at this byte of the file (granted only if the file is unchanged). */
  offset?: number;
  /** WRQ: create the name as a directory; the OACK ends the request (no data). */
  mkdir?: boolean;
  /** A directory's listing with each file's SHA-256 before its name. */
  digests?: boolean;
  /** RRQ/DRQ: the data follows the OACK at once; the client sends no ACK 0. */
  eager?: boolean;
  /**
   * RRQ/DRQ: the data follows the OACK at once and no ACK is due at all (TCP paces it);
   * the client may send its next requests before this one's answer has come.
   */
  pipeline?: boolean;
}

/** What an OACK told the client, beside the transfer parameters. */
export interface Granted extends TransferParams {
  size?: number;
  /** The checksum the sender will send as SUM after the last DAT, if any. */
  checksum?: ChecksumName;
  kind?: "file" | "listing";
  mtime?: number;
  offset?: number;
  mkdir: boolean;
  digests: boolean;
  /** The data follows the OACK without an ACK 0. */
  eager: boolean;
  /** No ACK is due for this read, and requests may be sent ahead of answers. */
  pipeline: boolean;
}

/** What the server knows about what it is about to send (for the OACK). */
export interface Facts {
  size?: number;
  kind?: "file" | "listing";
  mtime?: number;
  /** Where the data starts (a resume the server agreed to; 0 when it did not). */
  offset?: number;
  /** The request created a directory (mkdir). */
  made?: boolean;
  /** The data follows the OACK at once (a read that asked `eager`). */
  eager?: boolean;
  /** A read that asked `pipeline`: no ACK is due. */
  pipeline?: boolean;
}

/** The kind option's values. */
export const KIND = { file: 1, listing: 2 } as const;

const FLAG = [0, 1] as const;
const ANY = [0, Number.MAX_SAFE_INTEGER] as const;

function refuse(message: string): ProtocolError {
  return new ProtocolError(ErrorCode.OPTION_REFUSED, `option negotiation failed: ${message}`);
}

function integer(
  pairs: Record<string, string>,
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

function flag(pairs: Record<string, string>, name: string): boolean | undefined {
  const value = integer(pairs, name, FLAG);
  return value === undefined ? undefined : value === 1;
}

/**
 * Reads an OPT's options: unknown names are ignored, known ones out of range
 * throw ERR 8, and so does an OPT with no known option at all (its OACK
 * would be empty, which the framing does not allow).
 */
export function parseAsked(options: OptionPairs): Asked {
  const pairs = optionRecord(options); // a repeated name: the last value counts
  const asked = {
    blockSize: integer(pairs, "blksize", BLKSIZE_RANGE),
    windowSize: integer(pairs, "windowsize", WINDOWSIZE_RANGE),
    transferSize: integer(pairs, "tsize", ANY),
    sha256: flag(pairs, "sha256"),
    crc32: flag(pairs, "crc32"),
    kind: integer(pairs, "kind", [0, 2]),
    mtime: integer(pairs, "mtime", ANY),
    offset: integer(pairs, "offset", ANY),
    mkdir: flag(pairs, "mkdir"),
    digests: flag(pairs, "digests"),
    eager: flag(pairs, "eager"),
    pipeline: flag(pairs, "pipeline"),
  };
  if (Object.values(asked).every((value) => value === undefined)) {
    throw refuse(
      `no known option among ${Object.keys(pairs).map((name) => JSON.stringify(name)).join(", ")}`,
    );
  }
  return asked;
}

/** The checksum a transfer carries: SHA-256 when asked for (it wins over CRC-32), else CRC-32, else none. */
export function checksumOf(asked: Asked | undefined): ChecksumName | undefined {
  return asked?.sha256 ? "sha256" : asked?.crc32 ? "crc32" : undefined;
}

/** What the server grants: what was asked, lowered to its own limits. */
export function grant(asked: Asked, limits: TransferParams): TransferParams {
  return {
    blockSize: Math.min(asked.blockSize ?? BLOCK_SIZE, limits.blockSize),
    windowSize: Math.min(asked.windowSize ?? 1, limits.windowSize),
  };
}

/**
 * The OACK for what was granted: every option the client asked about, and
 * only those, so it is never empty. What does not apply is answered 0 (no
 * integrity, kind unknown, no mtime, offset 0, no directory made, no digests,
 * an ACK 0 due, ACKs due).
 */
export function oackPairs(asked: Asked, granted: TransferParams, facts: Facts = {}): OptionPairs {
  const out: OptionPairs = [];
  const flag = (on: boolean | undefined) => on ? "1" : "0";
  if (asked.blockSize !== undefined) out.push(["blksize", String(granted.blockSize)]);
  if (asked.windowSize !== undefined) out.push(["windowsize", String(granted.windowSize)]);
  if (asked.transferSize !== undefined) {
    out.push(["tsize", String(facts.size ?? asked.transferSize)]);
  }
  if (asked.sha256 !== undefined) out.push(["sha256", flag(asked.sha256)]);
  if (asked.crc32 !== undefined) out.push(["crc32", flag(checksumOf(asked) === "crc32")]);
  if (asked.kind !== undefined) out.push(["kind", String(facts.kind ? KIND[facts.kind] : 0)]);
  if (asked.mtime !== undefined) out.push(["mtime", String(facts.mtime ?? 0)]);
  if (asked.offset !== undefined) out.push(["offset", String(facts.offset ?? 0)]);
  if (asked.mkdir !== undefined) out.push(["mkdir", flag(facts.made)]);
  if (asked.digests !== undefined) {
    out.push(["digests", flag(asked.digests && facts.kind === "listing")]);
  }
  if (asked.eager !== undefined) out.push(["eager", flag(asked.eager && facts.eager)]);
  if (asked.pipeline !== undefined) {
    out.push(["pipeline", flag(asked.pipeline && facts.pipeline)]);
  }
  return out;
}

/** What a client asks for beside the block and window size. */
export interface Wanted {
  transferSize?: number;
  /** The integrity check asked for (SUM after the last DAT). */
  checksum?: ChecksumName;
  kind?: boolean;
  mtime?: number;
  offset?: number;
  mkdir?: boolean;
  digests?: boolean;
  /** A read: the data may follow the OACK without an ACK 0. */
  eager?: boolean;
  /** A read: no ACK at all, requests sent ahead of answers. */
  pipeline?: boolean;
}

/** The OPT a client sends for what it wants. */
export function optPairs(params: TransferParams, wanted: Wanted = {}): OptionPairs {
  const out: OptionPairs = [
    ["blksize", String(params.blockSize)],
    ["windowsize", String(params.windowSize)],
  ];
  if (wanted.transferSize !== undefined) out.push(["tsize", String(wanted.transferSize)]);
  if (wanted.checksum) out.push([wanted.checksum, "1"]);
  if (wanted.kind) out.push(["kind", "0"]);
  if (wanted.mtime !== undefined) out.push(["mtime", String(wanted.mtime)]);
  if (wanted.offset !== undefined) out.push(["offset", String(wanted.offset)]);
  if (wanted.mkdir) out.push(["mkdir", "1"]);
  if (wanted.digests) out.push(["digests", "1"]);
  if (wanted.eager) out.push(["eager", "1"]);
  if (wanted.pipeline) out.push(["pipeline", "1"]);
  return out;
}

/** The client's reading of an OACK: what applies now, and the size if told; a server raising a value is refused. */
export function readOack(wanted: TransferParams, oack: OptionPairs): Granted {
  const answered = parseAsked(oack);
  const blockSize = answered.blockSize ?? BLOCK_SIZE;
  const windowSize = answered.windowSize ?? 1;
  if (blockSize > wanted.blockSize || windowSize > wanted.windowSize) {
    throw new ProtocolError(
      ErrorCode.OPTION_REFUSED,
      "option negotiation failed: the server raised a value",
    );
  }
  if (answered.sha256 && answered.crc32) {
    throw new ProtocolError(
      ErrorCode.OPTION_REFUSED,
      "option negotiation failed: the server granted two checksums",
    );
  }
  const kind = answered.kind === KIND.file
    ? "file"
    : answered.kind === KIND.listing
    ? "listing"
    : undefined;
  return {
    blockSize,
    windowSize,
    size: answered.transferSize,
    checksum: checksumOf(answered),
    kind,
    mtime: answered.mtime || undefined, // 0: the server knows none
    offset: answered.offset,
    mkdir: answered.mkdir ?? false,
    digests: answered.digests ?? false,
    eager: answered.eager ?? false,
    pipeline: answered.pipeline ?? false,
  };
}
