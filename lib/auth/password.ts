/**
 * Password hashes: scrypt (node:crypto) with a random 16-byte salt, stored
 * with its parameters in the PHC string format, and verified in constant
 * time:
 *
 *   $scrypt$ln=14,r=8,p=5$<salt, base64>$<32-byte hash, base64>
 *
 * ln is log2 of scrypt's cost N. The default (N=2^14, r=8, p=5: 16 MiB and
 * about 0.2 s per check on a 2020s core) is one of OWASP's recommended
 * scrypt settings, the one with the least memory per check.
 */

// node:crypto is loaded by the first hash or check, not at start-up (a command without accounts never needs it).
const nodeCrypto = () => import("node:crypto");
import type { Buffer } from "node:buffer";

export interface ScryptParams {
  /** log2 of the cost N. */
  ln: number;
  /** Block size. */
  r: number;
  /** Parallelism. */
  p: number;
}

export const DEFAULT_SCRYPT: ScryptParams = { ln: 14, r: 8, p: 5 };

/** Bounds on what a hash string may ask for, so that one line cannot exhaust memory or time. */
const LIMITS = { ln: [10, 20], r: [1, 32], p: [1, 16] } as const;
const SALT_BYTES = 16;
const HASH_BYTES = 32;
/** Longest password hashed or checked (the wire carries at most 1024 bytes per string). */
export const MAX_PASSWORD_BYTES = 1024;

const encoder = new TextEncoder();

/** A hash string for `password`, with a fresh random salt. */
export async function hashPassword(
  password: string,
  params: ScryptParams = DEFAULT_SCRYPT,
): Promise<string> {
  checkParams(params);
  const salt = crypto.getRandomValues(new Uint8Array(SALT_BYTES));
  const hash = await derive(encoder.encode(password), salt, params, HASH_BYTES);
  return formatHash(params, salt, hash);
}

/** A parsed hash string. */
export interface ParsedHash {
  params: ScryptParams;
  salt: Uint8Array;
  hash: Uint8Array;
}

/** Reads a hash string; throws on anything that is not one this module writes. */
export function parseHash(text: string): ParsedHash {
  const match =
    /^\$scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d{1,2})\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$/
      .exec(text);
  if (!match) throw new Error("not an scrypt hash: expected $scrypt$ln=N,r=N,p=N$SALT$HASH");
  const params = { ln: Number(match[1]), r: Number(match[2]), p: Number(match[3]) };
  checkParams(params);
  const salt = fromBase64(match[4]);
  const hash = fromBase64(match[5]);
  if (salt.length < 8 || hash.length < 16 || hash.length > 64) {
    throw new Error("scrypt hash: salt or hash of a wrong length");
  }
  return { params, salt, hash };
}

/**
 * Whether `password` matches `hash`. The
 * comparison takes the same time wherever the first difference is.
 */
export async function verifyPassword(password: string, hash: ParsedHash): Promise<boolean> {
  const bytes = encoder.encode(password);
  if (bytes.length > MAX_PASSWORD_BYTES) {
    // Still do the work, so a too-long password costs what a wrong one does.
    await derive(bytes.subarray(0, MAX_PASSWORD_BYTES), hash.salt, hash.params, hash.hash.length);
    return false;
  }
  const derived = await derive(bytes, hash.salt, hash.params, hash.hash.length);
  return (await nodeCrypto()).timingSafeEqual(derived, hash.hash);
}

/** A hash of a random password nobody knows, with `params`: what unknown names are checked against. */
export async function dummyHash(params: ScryptParams = DEFAULT_SCRYPT): Promise<ParsedHash> {
  return parseHash(
    await hashPassword(toBase64(crypto.getRandomValues(new Uint8Array(18))), params),
  );
}

function checkParams(params: ScryptParams): void {
  for (const key of ["ln", "r", "p"] as const) {
    const [min, max] = LIMITS[key];
    const value = params[key];
    if (!Number.isInteger(value) || value < min || value > max) {
      throw new Error(`scrypt parameter ${key}=${value} out of range: ${min} to ${max}`);
    }
  }
}

async function derive(
  password: Uint8Array,
  salt: Uint8Array,
  params: ScryptParams,
  length: number,
): Promise<Buffer> {
  const N = 2 ** params.ln;
  // scrypt needs 128 * N * r bytes; allow that plus slack (node's default cap is 32 MiB).
  const maxmem = 128 * N * params.r + 16 * 1024 * 1024;
  const { scrypt } = await nodeCrypto();
  return await new Promise((resolve, reject) =>
    scrypt(
      password,
      salt,
      length,
      { N, r: params.r, p: params.p, maxmem },
      (error, key) => error ? reject(error) : resolve(key),
    )
  );
}

function formatHash(params: ScryptParams, salt: Uint8Array, hash: Uint8Array): string {
  return `$scrypt$ln=${params.ln},r=${params.r},p=${params.p}$${toBase64(salt)}$${toBase64(hash)}`;
}

function toBase64(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes)).replace(/=+$/, "");
}

function fromBase64(text: string): Uint8Array {
  const padded = text + "=".repeat((4 - (text.length % 4)) % 4);
  try {
    return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
  } catch {
    throw new Error("scrypt hash: invalid base64");
  }
}
