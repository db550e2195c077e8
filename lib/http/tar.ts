/**
 * `?tar`: a directory tree as a tar archive (ustar; a pax header for a
 * name over 100 bytes or a file of 8 GiB or more), built while it is sent:
 * one listing and one open file at a time, chunks of a fixed size, never a
 * temporary file. Every name and file comes through the FileStore.
 */

import type { Files } from "../store/access.ts";
import type { ListingEntry } from "../store/listing.ts";
import { readEntries } from "./listing.ts";

const BLOCK = 512;
const CHUNK = 256 * 1024;
const MAX_OCTAL_SIZE = 0o77777777777;
const encoder = new TextEncoder();

/** The tree under `name` ("" is the root) as a stream of tar bytes; `top` prefixes every path. */
export function tarStream(
  store: Files,
  name: string,
  top: string,
  onProgress?: (bytes: number) => void,
): ReadableStream<Uint8Array> {
  const parts = walk(store, name, top);
  let sent = 0;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const next = await parts.next();
      if (next.done) return controller.close();
      sent += next.value.length;
      onProgress?.(sent);
      controller.enqueue(next.value);
    },
    async cancel() {
      await parts.return(undefined);
    },
  }, { highWaterMark: 1 });
}

async function* walk(store: Files, name: string, top: string): AsyncGenerator<Uint8Array> {
  const pending: { name: string; path: string }[] = [{ name, path: top }];
  while (pending.length > 0) {
    const dir = pending.shift()!;
    const entries: ListingEntry[] = await readEntries(store, dir.name).catch(() => []);
    for (const entry of entries) {
      const child = dir.name === "" ? entry.name : `${dir.name}/${entry.name}`;
      const path = `${dir.path}/${entry.name}`;
      if (entry.kind === "d") {
        yield header(path + "/", 0, entry.mtime, "5");
        pending.push({ name: child, path });
        continue;
      }
      let file;
      try {
        file = await store.openRead(child);
      } catch {
        continue; // gone or refused since the listing: left out
      }
      try {
        if (file.kind !== "file") continue;
        yield header(path, file.size, file.mtime ?? entry.mtime, "0");
        let left = file.size;
        while (left > 0) {
          const chunk = new Uint8Array(Math.min(CHUNK, left));
          let filled = 0;
          while (filled < chunk.length) {
            const n = await file.source.read(chunk.subarray(filled));
            if (n === null) break; // shrank meanwhile: the rest stays zeros, the archive stays whole
            filled += n;
          }
          left -= chunk.length;
          yield chunk;
        }
        const pad = (BLOCK - file.size % BLOCK) % BLOCK;
        if (pad > 0) yield new Uint8Array(pad);
      } finally {
        file.close();
      }
    }
  }
  yield new Uint8Array(BLOCK * 2);
}

/** A header block, preceded by a pax header when ustar cannot hold the name or size. */
export function header(path: string, size: number, mtime: Date, type: "0" | "5"): Uint8Array {
  const name = encoder.encode(path);
  const records: string[] = [];
  if (name.length > 100) records.push(paxRecord("path", path));
  if (size > MAX_OCTAL_SIZE) records.push(paxRecord("size", String(size)));
  const seconds = Math.max(0, Math.floor(mtime.getTime() / 1000));
  const block = ustar(
    name.length > 100 ? encoder.encode(shortName(path)) : name,
    size > MAX_OCTAL_SIZE ? 0 : size,
    seconds,
    type,
  );
  if (records.length === 0) return block;
  const body = encoder.encode(records.join(""));
  const padded = new Uint8Array(Math.ceil(body.length / BLOCK) * BLOCK);
  padded.set(body);
  const pax = ustar(encoder.encode("PaxHeader"), body.length, seconds, "x");
  const out = new Uint8Array(BLOCK + padded.length + BLOCK);
  out.set(pax);
  out.set(padded, BLOCK);
  out.set(block, BLOCK + padded.length);
  return out;
}

/** `LEN key=value\n`, LEN counting itself. */
function paxRecord(key: string, value: string): string {
  const rest = ` ${key}=${value}\n`;
  const restLength = encoder.encode(rest).length;
  let length = restLength + 1;
  while (String(length).length + restLength > length) length++;
  return `${length}${rest}`;
}

/** The ustar name of a long path, for readers without pax: its last 100 bytes' worth. */
function shortName(path: string): string {
  let short = path;
  while (encoder.encode(short).length > 100) short = short.slice(1);
  return short;
}

function ustar(name: Uint8Array, size: number, mtime: number, type: string): Uint8Array {
  const block = new Uint8Array(BLOCK);
  block.set(name.subarray(0, 100), 0);
  const octal = (value: number, width: number, at: number) =>
    block.set(encoder.encode(value.toString(8).padStart(width - 1, "0") + "\0"), at);
  octal(type === "5" ? 0o755 : 0o644, 8, 100);
  octal(0, 8, 108);
  octal(0, 8, 116);
  octal(size, 12, 124);
  octal(mtime, 12, 136);
  block.set(encoder.encode("        "), 148);
  block[156] = type.charCodeAt(0);
  block.set(encoder.encode("ustar\u000000"), 257);
  let sum = 0;
  for (const byte of block) sum += byte;
  block.set(encoder.encode(sum.toString(8).padStart(6, "0") + "\0 "), 148);
  return block;
}
