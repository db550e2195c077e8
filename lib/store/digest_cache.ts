/**
 * What a served file's bytes hash to, remembered by the file's version, so that a file sent again
 * unchanged (a lab's handout to thirty clients, a download resumed) is not read through the
 * checksum again: a CRC-32 costs the server about 60 ms of CPU a GiB, a SHA-256 about 600.
 *
 * A version is the file's device, inode, size, mtime and ctime. A write changes the mtime and the
 * ctime; a write whose mtime was put back (`touch -r`, `cp -p`) still changes the ctime, which no
 * program can set; a file replaced by a rename is another inode. Deno's stat gives the ctime in
 * whole seconds, so a change in the same second as the last would not show: a file gets a version
 * only when it was last changed 2 s or more before it was opened, and a digest is kept only when the
 * open file is that version still after the last byte was read (what was sent is what is on disk).
 */

import type { ChecksumName } from "../bytes/sha256.ts";

/** A file changed less than this long ago gets no version (its ctime could not show a change now). */
export const SETTLED_MS = 2_000;

/** Smaller files are not remembered: their checksum costs less than a lookup's bookkeeping is worth. */
export const DIGEST_CACHE_MIN_BYTES = 1024 * 1024;

/** Whether a file of `size` bytes is worth remembering (and its version worth making). */
export function worthRemembering(size: number): boolean {
  return size >= DIGEST_CACHE_MIN_BYTES;
}

/** Digests a process remembers at most (the least recently used go first): about 100 bytes each. */
export const DIGEST_CACHE_ENTRIES = 4096;

/** `info`'s version at `now`, or undefined when it has none (not a regular file, not settled, no times). */
export function fileVersion(info: Deno.FileInfo, now = Date.now()): string | undefined {
  const { mtime, ctime } = info;
  if (!info.isFile || !mtime || !ctime || info.dev === null || info.ino === null) return undefined;
  if (now - ctime.getTime() < SETTLED_MS) return undefined;
  return `${info.dev}:${info.ino}:${info.size}:${mtime.getTime()}:${ctime.getTime()}`;
}

/** An open file as the cache sees it (OpenedFile). */
export interface Versioned {
  size: number;
  /** Its version when opened (fileVersion), if it had one. */
  version?: string;
  /** Whether the open file is still that version. */
  unchanged?(): Promise<boolean>;
}

/** An open `file`, stat'ed as `info`, as the cache sees it (a small file has no version). */
export function versionOf(
  file: { stat(): Promise<Deno.FileInfo> },
  info: Deno.FileInfo,
): Versioned {
  const version = worthRemembering(info.size) ? fileVersion(info) : undefined;
  return {
    size: info.size,
    version,
    unchanged: async () => version !== undefined && fileVersion(await file.stat()) === version,
  };
}

/** Digests of whole files by checksum and version; bounded, least recently used out first. */
export class DigestCache {
  readonly #entries = new Map<string, Uint8Array>();
  readonly #capacity: number;

  constructor(capacity = DIGEST_CACHE_ENTRIES) {
    this.#capacity = capacity;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The digest `name` of `file`'s whole bytes, if remembered for its version. */
  get(name: ChecksumName, file: Versioned): Uint8Array | undefined {
    const key = keyOf(name, file);
    const digest = key === undefined ? undefined : this.#entries.get(key);
    if (digest === undefined) return undefined;
    this.#entries.delete(key!); // most recently used: last in the map's order
    this.#entries.set(key!, digest);
    return digest;
  }

  /** Remembers `digest` (of all of `file`'s bytes) if the open file is still the version it was opened as. */
  async remember(name: ChecksumName, file: Versioned, digest: Uint8Array): Promise<void> {
    const key = keyOf(name, file);
    if (key === undefined || !await file.unchanged?.()) return;
    this.#entries.delete(key);
    this.#entries.set(key, digest);
    if (this.#entries.size > this.#capacity) {
      this.#entries.delete(this.#entries.keys().next().value!);
    }
  }
}

function keyOf(name: ChecksumName, file: Versioned): string | undefined {
  if (file.version === undefined || !worthRemembering(file.size)) return undefined;
  return `${name} ${file.version}`;
}

/** The process's cache: every server in it shares the one file system. */
export const SERVED_DIGESTS = new DigestCache();
