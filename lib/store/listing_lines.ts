/**
 * Listing lines: `KIND SIZE MTIME NAME`, sorted by name. The server formats
 * them, the client parses them; one definition for both. Imports nothing of
 * the server's (its sandbox, its file calls), so that a client loads only
 * this (lib/store/listing.ts is the server's side: reading a directory, the
 * bound on entries, the listing as a source of bytes).
 */

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

/** An entry as `fsd ls --json` and the HTTP face's `?json` show it: one shape for both. */
export function entryJson(entry: ListingEntry, digests = false) {
  return {
    name: entry.name,
    kind: entry.kind === "d" ? "directory" : "file",
    size: entry.size,
    mtime: entry.mtime.toISOString(),
    ...(digests && entry.kind === "f" && { sha256: entry.sha256 }),
  };
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
  return sortByName(entries.filter((entry) => !names.has(entry.name)).concat(extra));
}

/** Sorts `entries` by name in code-point order, each name encoded once. */
export function sortByName(entries: ListingEntry[]): ListingEntry[] {
  const keyed = entries.map((entry) => ({ key: encoder.encode(entry.name), entry }));
  keyed.sort((a, b) => compareBytes(a.key, b.key));
  return keyed.map(({ entry }) => entry);
}

/** UTF-8 bytes in order, which is code-point order (node:buffer's compare, without loading it). */
function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    if (a[i] !== b[i]) return a[i] - b[i];
  }
  return a.length - b.length;
}
