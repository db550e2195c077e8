/**
 * Directory listings: `KIND SIZE MTIME NAME` lines, sorted by name.
 * The server formats them, the client parses them; one definition for both.
 */

import { join } from "node:path";
import type { Opened } from "./opened.ts";
import { isListableName, type Sandbox } from "./sandbox.ts";

export interface ListingEntry {
  kind: "f" | "d";
  size: number;
  /** Whole seconds; listings carry no fractions. */
  mtime: Date;
  name: string;
  /** A file's SHA-256 in hex, in listings asked for with digests ("-" for a directory). */
  sha256?: string;
}

const encoder = new TextEncoder();

/** Code-point (= UTF-8 byte) order, the same on every platform. */
function compareNames(a: string, b: string): number {
  const x = encoder.encode(a);
  const y = encoder.encode(b);
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i++) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}

function formatTime(date: Date | null): string {
  return (date ?? new Date(0)).toISOString().slice(0, 19) + "Z";
}

/** Listing lines; with `digests`, each file's SHA-256 (or "-") comes before its name. */
export function formatListing(entries: ListingEntry[], digests = false): string {
  return entries.map((e) => {
    const digest = digests ? `${e.sha256 ?? "-"} ` : "";
    return `${e.kind} ${e.size} ${formatTime(e.mtime)} ${digest}${e.name}\n`;
  }).join("");
}

const LINE = /^([fd]) (\d+) (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ) (.+)$/;
const DIGEST = /^([0-9a-f]{64}|-) (.+)$/;

/** Parses listing text (with `digests`: the SHA-256 column too); throws SyntaxError on a line that is not an entry. */
export function parseListing(text: string, digests = false): ListingEntry[] {
  const entries: ListingEntry[] = [];
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const match = LINE.exec(line);
    const digest = match && digests ? DIGEST.exec(match[4]) : undefined;
    if (!match || digest === null) {
      throw new SyntaxError(`not a listing line: ${JSON.stringify(line.slice(0, 80))}`);
    }
    entries.push({
      kind: match[1] as "f" | "d",
      size: Number(match[2]),
      mtime: new Date(match[3]),
      name: digest ? digest[2] : match[4],
      ...(digest && digest[1] !== "-" && { sha256: digest[1] }),
    });
  }
  return entries;
}

/** `entries` (sorted) with `extra` put in: an extra entry replaces one of the same name. */
export function mergeEntries(entries: ListingEntry[], extra: ListingEntry[]): ListingEntry[] {
  if (extra.length === 0) return entries;
  const names = new Set(extra.map((entry) => entry.name));
  return entries.filter((entry) => !names.has(entry.name)).concat(extra)
    .sort((a, b) => compareNames(a.name, b.name));
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
  for await (const entry of Deno.readDir(directory.path)) {
    if (!isListableName(entry.name)) continue;
    found.push(entry);
    if (found.length === STAT_BATCH) await flush();
  }
  await flush();
  return entries.sort((a, b) => compareNames(a.name, b.name));
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
        info = await Deno.stat(target.path);
      } finally {
        target.close();
      }
    } else {
      // Out of reach all the same: another account's home.
      if (!sandbox.contains(join(directory.real, entry.name))) return undefined;
      info = await Deno.lstat(path);
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
