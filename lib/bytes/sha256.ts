/**
 * A checksum of a transfer's bytes, computed beside the transfer: CRC-32
 * (the default integrity check: native in node:zlib, about 30 ms per GiB
 * here, in line) or SHA-256 (asked for: a cryptographic digest).
 *
 * Hashing costs about as much CPU as moving the bytes, so for a large
 * transfer it runs on a worker thread: each chunk is copied into a pooled
 * buffer and handed over, and the worker hands the buffer back once hashed.
 * At most MAX_IN_FLIGHT bytes wait for the worker (bounded memory); past
 * that, `update` waits. Small transfers hash in line: starting a worker
 * costs more than hashing a few megabytes.
 *
 * The worker comes from a data: URL, so it needs no file permission.
 */

import type { Hash } from "node:crypto";
import type { ByteSink, ByteSource } from "./source_sink.ts";

// node:zlib and node:crypto are loaded when first needed: loading either at
// start-up cost a client command tens of milliseconds it mostly never used.
let zlib: typeof import("node:zlib") | undefined;
let nodeCrypto: typeof import("node:crypto") | undefined;

async function newSha256(): Promise<Hash> {
  nodeCrypto ??= await import("node:crypto");
  return nodeCrypto.createHash("sha256");
}

/** The checksums a transfer can carry. */
export type ChecksumName = "crc32" | "sha256";

/** Bytes of each checksum's digest. */
export const DIGEST_SIZES: Readonly<Record<ChecksumName, number>> = { crc32: 4, sha256: 32 };

/** A running checksum (CRC-32 or SHA-256). */
export interface Hasher {
  update(bytes: Uint8Array): Promise<void>;
  /** The digest of everything updated; the hasher is finished afterwards. */
  digest(): Promise<Uint8Array>;
  /** Frees the hasher without a digest (a failed transfer). */
  close(): void;
}

/** Transfers at least this large hash on a worker thread. */
export const WORKER_THRESHOLD = 8 * 1024 * 1024;
const POOL_BUFFER = 1024 * 1024;
const MAX_IN_FLIGHT = 8 * POOL_BUFFER;

/** A hasher suited to a transfer of `size` bytes (unknown: in line). */
export function sha256For(size: number | undefined): Hasher {
  return size !== undefined && size >= WORKER_THRESHOLD ? new WorkerSha256() : new InlineSha256();
}

/** A hasher of `name` for a transfer of `size` bytes. */
export function hasherFor(name: ChecksumName, size: number | undefined): Hasher {
  return name === "crc32" ? new Crc32(size) : sha256For(size);
}

/**
 * Bytes this process computes CRC-32 of in JavaScript (a few ms per MiB)
 * before it loads node:zlib's native one (about 25 ms to load, then 30 ms
 * per GiB): a job of small files never loads it, a large file or a tree
 * loads it after its first MiB.
 */
const NATIVE_CRC_AFTER = 1024 * 1024;
let crcInJs = 0;

let loadingZlib: Promise<typeof import("node:zlib")> | undefined;
/** Bytes jobs have said they will check by CRC-32 (`expectCrc`). */
let crcExpected = 0;

/**
 * A job of several files (get -r, put -r) is about to check `bytes` more by CRC-32:
 * once what it expects passes NATIVE_CRC_AFTER, node:zlib starts loading at
 * once, while its first requests are on the wire, and its first MiB is not
 * checked at cold JavaScript's pace.
 */
export function expectCrc(bytes: number): void {
  crcExpected += bytes;
  if (!zlib && crcInJs + crcExpected > NATIVE_CRC_AFTER) nativeCrc().catch(() => {});
}

/** Whether node:zlib is loaded or loading in this process (for tests). */
export function nativeCrcStarted(): boolean {
  return loadingZlib !== undefined;
}

/** node:zlib, loaded once per process (its crc32 is native). */
function nativeCrc(): Promise<typeof import("node:zlib")> {
  return loadingZlib ??= import("node:zlib").then((module) => zlib = module);
}

/**
 * The CRC-32 tables (IEEE polynomial, reflected) for slicing by 8, for the
 * JavaScript CRC of small transfers: table k holds the CRC of a byte followed
 * by k zero bytes, so eight bytes are folded in with eight lookups and no
 * loop-carried dependence between them (2.7 times the byte-at-a-time loop's
 * speed here: 0.090 against 0.247 ms for 100 KiB).
 */
const CRC_TABLES = (() => {
  const tables = new Int32Array(8 * 256);
  // A byte's CRC is linear in its bits: the eight one-bit bytes' by the bit loop, then each byte's
  // as the XOR of its lowest bit's and the rest's (at every process's start: 0.6 against 1.3 ms,
  // medians of 15 fresh processes, for the bit loop over all 256).
  for (let bit = 1; bit < 256; bit <<= 1) {
    let c = bit;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    tables[bit] = c;
  }
  for (let n = 3; n < 256; n++) tables[n] = tables[n & (n - 1)] ^ tables[n & -n];
  for (let i = 256; i < 8 * 256; i++) {
    const c = tables[i - 256];
    tables[i] = tables[c & 0xff] ^ (c >>> 8);
  }
  return tables;
})();

/** zlib's crc32(bytes, crc), in JavaScript: the same value, for the same running CRC. */
export function crc32Js(bytes: Uint8Array, crc = 0): number {
  const t = CRC_TABLES;
  let c = ~crc;
  let i = 0;
  for (const end = bytes.length - 7; i < end; i += 8) {
    const lo = c ^ (bytes[i] | bytes[i + 1] << 8 | bytes[i + 2] << 16 | bytes[i + 3] << 24);
    c = t[1792 + (lo & 0xff)] ^ t[1536 + ((lo >>> 8) & 0xff)] ^
      t[1280 + ((lo >>> 16) & 0xff)] ^ t[1024 + (lo >>> 24)] ^
      t[768 + bytes[i + 4]] ^ t[512 + bytes[i + 5]] ^ t[256 + bytes[i + 6]] ^ t[bytes[i + 7]];
  }
  for (; i < bytes.length; i++) c = t[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

/**
 * CRC-32 (IEEE, as gzip and zip), in line: hashing a GiB costs about 30 ms
 * with node:zlib's, loaded once this process has checked its first MiB (in
 * JavaScript), or at once for a transfer known to be larger than that (its
 * loading then overlaps the request's round trip, and no MiB is checked at
 * JavaScript's pace). The digest is 4 bytes, big-endian.
 */
export class Crc32 implements Hasher {
  #value = 0;

  constructor(size?: number) {
    if (!zlib && size !== undefined && size > NATIVE_CRC_AFTER) nativeCrc().catch(() => {});
  }

  async update(bytes: Uint8Array): Promise<void> {
    if (!zlib && !loadingZlib && crcInJs + bytes.length <= NATIVE_CRC_AFTER) {
      crcInJs += bytes.length;
      this.#value = crc32Js(bytes, this.#value);
      return;
    }
    zlib ??= await nativeCrc();
    this.#value = zlib.crc32(bytes, this.#value);
  }

  digest(): Promise<Uint8Array> {
    const out = new Uint8Array(4);
    new DataView(out.buffer).setUint32(0, this.#value >>> 0);
    return Promise.resolve(out);
  }

  close(): void {}
}

/** Lower-case hex. */
export function toHex(bytes: Uint8Array): string {
  let hex = "";
  for (const byte of bytes) hex += HEX[byte];
  return hex;
}

const HEX = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, "0"));

/** 64 hex digits to 32 bytes, or undefined if it is not that. */
export function fromHex(text: string): Uint8Array | undefined {
  if (!/^[0-9a-fA-F]{64}$/.test(text)) return undefined;
  return Uint8Array.from(text.match(/../g)!, (pair) => parseInt(pair, 16));
}

/** Hashes on the calling thread. */
export class InlineSha256 implements Hasher {
  #hash: Hash | undefined;

  async update(bytes: Uint8Array): Promise<void> {
    (this.#hash ??= await newSha256()).update(bytes);
  }

  async digest(): Promise<Uint8Array> {
    return new Uint8Array((this.#hash ??= await newSha256()).digest());
  }

  close(): void {}
}

const WORKER_SOURCE = `
import { createHash } from "node:crypto";
const hash = createHash("sha256");
self.onmessage = (event) => {
  const message = event.data;
  if (message.buffer) {
    hash.update(new Uint8Array(message.buffer, 0, message.length));
    self.postMessage({ buffer: message.buffer }, [message.buffer]);
  } else {
    self.postMessage({ digest: new Uint8Array(hash.digest()) });
  }
};`;

const WORKER_URL = `data:text/javascript,${encodeURIComponent(WORKER_SOURCE)}`;

/** Hashes on a worker thread, beside the transfer. */
export class WorkerSha256 implements Hasher {
  #worker = new Worker(WORKER_URL, { type: "module" });
  #free: ArrayBuffer[] = [];
  #inFlight = 0;
  #waiting: (() => void)[] = [];
  #digest: ((digest: Uint8Array) => void) | undefined;
  #closed = false;

  constructor() {
    this.#worker.onmessage = (event: MessageEvent) => {
      const message = event.data;
      if (message.buffer) {
        this.#free.push(message.buffer);
        this.#inFlight -= POOL_BUFFER;
        this.#waiting.shift()?.();
      } else {
        this.#digest?.(message.digest);
      }
    };
  }

  async update(bytes: Uint8Array): Promise<void> {
    for (let at = 0; at < bytes.length; at += POOL_BUFFER) {
      const part = bytes.subarray(at, at + POOL_BUFFER);
      while (this.#inFlight + POOL_BUFFER > MAX_IN_FLIGHT) {
        await new Promise<void>((resolve) => this.#waiting.push(resolve));
      }
      const buffer = this.#free.pop() ?? new ArrayBuffer(POOL_BUFFER);
      new Uint8Array(buffer).set(part);
      this.#inFlight += POOL_BUFFER;
      this.#worker.postMessage({ buffer, length: part.length }, [buffer]);
    }
  }

  async digest(): Promise<Uint8Array> {
    const digest = new Promise<Uint8Array>((resolve) => this.#digest = resolve);
    this.#worker.postMessage({});
    try {
      return await digest;
    } finally {
      this.close();
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#worker.terminate();
    for (const wake of this.#waiting.splice(0)) wake();
  }
}

/** `source`, with every byte read also hashed (no hash: `source` itself). */
export function hashingSource(source: ByteSource, hash: Hasher | undefined): ByteSource {
  if (!hash) return source;
  return {
    regularFile: source.regularFile,
    async read(buffer) {
      const n = await source.read(buffer);
      if (n !== null) await hash.update(buffer.subarray(0, n));
      return n;
    },
  };
}

/** `sink`, with every byte written also hashed (no hash: `sink` itself). */
export function hashingSink(sink: ByteSink, hash: Hasher | undefined): ByteSink {
  if (!hash) return sink;
  return {
    regularFile: sink.regularFile,
    async write(bytes) {
      const n = await sink.write(bytes);
      await hash.update(bytes.subarray(0, n));
      return n;
    },
  };
}

/** Hashes the first `length` bytes of `file` from where it is positioned (a resumed transfer's start). */
export async function hashPrefix(file: Deno.FsFile, length: number, hash: Hasher): Promise<void> {
  const buffer = new Uint8Array(Math.min(POOL_BUFFER, Math.max(length, 1)));
  for (let left = length; left > 0;) {
    const n = await file.read(buffer.subarray(0, Math.min(buffer.length, left)));
    if (n === null) throw new Deno.errors.UnexpectedEof("file shorter than its resumed part");
    await hash.update(buffer.subarray(0, n));
    left -= n;
  }
}
