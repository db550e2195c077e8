/**
 * Directory listings on the server: reading a directory into entries, at
 * most MAX_LISTING_ENTRIES of them (more is a refusal), and the listing as a
 * source of bytes, its text made as it is sent, digests included, so a
 * client that hangs up stops the work. The lines themselves, which the
 * client parses too, are lib/store/listing_lines.ts's (re-exported here).
 */

import { join } from "../path.ts";
import type { ByteSource } from "../bytes/source_sink.ts";
import { ErrorCode, ProtocolError } from "./errors.ts";
import type { Opened } from "./opened.ts";
import { isListableName, type Sandbox } from "./sandbox.ts";
import { formatListing, type ListingEntry, sortByName } from "./listing_lines.ts";

export * from "./listing_lines.ts";

const encoder = new TextEncoder();

/** Most entries a directory may have to be listed (the listing bomb of issue 18). */
export const MAX_LISTING_ENTRIES = 10_000;

/** A stand-in digest, as long as a real one: a listing's size is known before any file is hashed. */
const DIGEST_SHAPE = "0".repeat(64);

/**
 * The listing of `entries` as a source of bytes, made line by line as it is
 * read, and its size. With `digests`, each file's SHA-256 comes from
 * `digestOf` only when its line is read; a file that no longer hashes to a
 * line of the announced length ends the listing with ERR 0.
 */
export function listingSource(
  entries: ListingEntry[],
  digests: boolean,
  digestOf: (entry: ListingEntry) => Promise<string>,
): { source: ByteSource; size: number } {
  const shaped = (entry: ListingEntry) =>
    entry.kind === "f" && digests && entry.sha256 === undefined
      ? { ...entry, sha256: DIGEST_SHAPE }
      : entry;
  const lengths = entries.map((entry) =>
    encoder.encode(formatListing([shaped(entry)], digests)).length
  );
  const size = lengths.reduce((sum, n) => sum + n, 0);
  let next = 0;
  let pending = new Uint8Array(0);
  const source: ByteSource = {
    async read(buffer) {
      let filled = 0;
      while (filled < buffer.length) {
        if (pending.length === 0) {
          if (next === entries.length) break;
          const entry = entries[next];
          if (digests && entry.kind === "f" && entry.sha256 === undefined) {
            entry.sha256 = await digestOf(entry);
          }
          pending = encoder.encode(formatListing([entry], digests));
          if (pending.length !== lengths[next]) {
            throw new ProtocolError(ErrorCode.OTHER, `listing changed while sent: ${entry.name}`);
          }
          next++;
        }
        const n = Math.min(pending.length, buffer.length - filled);
        buffer.set(pending.subarray(0, n), filled);
        pending = pending.subarray(n);
        filled += n;
      }
      return filled === 0 ? null : filled;
    },
  };
  return { source, size };
}

/**
 * The entries of the directory at real path `directory`. Symlinks count as
 * what they point to when that lies inside the sandbox and are left out
 * otherwise; so are names the protocol cannot carry, staging files, and
 * anything that is neither a file nor a directory.
 */
export async function readListing(sandbox: Sandbox, directory: Opened): Promise<ListingEntry[]> {
  const found: Deno.DirEntry[] = [];
  const entries: ListingEntry[] = [];
  const flush = async () => {
    const described = await Promise.all(found.map((entry) => describe(sandbox, directory, entry)));
    for (const entry of described) if (entry) entries.push(entry);
    found.length = 0;
  };
  let seen = 0;
  for await (const entry of Deno.readDir(directory.path)) {
    if (++seen > MAX_LISTING_ENTRIES) {
      throw new ProtocolError(
        ErrorCode.OTHER,
        `directory too large to list: more than ${MAX_LISTING_ENTRIES} entries`,
      );
    }
    if (!isListableName(entry.name)) continue;
    found.push(entry);
    if (found.length === STAT_BATCH) await flush();
  }
  await flush();
  return sortByName(entries);
}

/** Entries whose metadata is read at once: one round of async calls instead of one each. */
const STAT_BATCH = 64;

/** One directory entry as a listing shows it; undefined for what a client could not fetch. */
async function describe(
  sandbox: Sandbox,
  directory: Opened,
  entry: Deno.DirEntry,
): Promise<ListingEntry | undefined> {
  const path = `${directory.path}/${entry.name}`;
  let info: Deno.FileInfo;
  try {
    if (entry.isSymlink) {
      // What the link leads to, opened and checked: nothing outside shows, even under a race.
      const target = await sandbox.openInside(path);
      if (!target) return undefined;
      try {
        info = await sandbox.calls.stat(target.path);
      } finally {
        target.close();
      }
    } else {
      // Out of reach all the same: another account's home.
      if (!sandbox.contains(join(directory.real, entry.name))) return undefined;
      info = await sandbox.calls.lstat(path);
    }
  } catch {
    return undefined; // vanished, dangling or unreadable: not something a client could fetch
  }
  if (!info.isFile && !info.isDirectory) return undefined;
  return {
    kind: info.isDirectory ? "d" : "f",
    size: info.isDirectory ? 0 : info.size,
    mtime: info.mtime ?? new Date(0),
    name: entry.name,
  };
}
