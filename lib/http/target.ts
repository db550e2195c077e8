/**
 * The request target of an HTTP request, read from the raw URL (never a
 * normalised one, which would quietly resolve `..` and turn `\` into `/`):
 * its path becomes a name under the store's rules, byte for byte, and its
 * query says what is asked (`?json`, `?tar`, `?sha256`).
 */

import { ErrorCode, ProtocolError } from "../store/errors.ts";
import { parseName } from "../store/sandbox.ts";

/** Longest request target read at all, in bytes of its text. */
const MAX_TARGET = 4096;

export interface Target {
  /** The name under the store's rules ("" is the root). */
  name: string;
  /** The path ended in "/": a directory is meant. */
  directory: boolean;
  /** The path as sent (for redirects and links), starting with "/". */
  path: string;
  query: URLSearchParams;
}

/** A rule the path broke: a 400 with the rule. */
export class BadTarget extends ProtocolError {
  constructor(message: string) {
    super(ErrorCode.ACCESS_VIOLATION, message);
  }
}

/** The path and query of `url` as Deno.serve passes it (scheme and host, then the raw target). */
export function parseTarget(url: string): Target {
  const start = url.indexOf("/", url.indexOf("//") + 2);
  const raw = start < 0 ? "/" : url.slice(start);
  if (raw.length > MAX_TARGET) {
    throw new BadTarget(`request target too long: at most ${MAX_TARGET}`);
  }
  const mark = raw.indexOf("?");
  const path = mark < 0 ? raw : raw.slice(0, mark);
  const query = new URLSearchParams(mark < 0 ? "" : raw.slice(mark + 1));
  if (!path.startsWith("/")) throw new BadTarget("request target is not a path");
  const directory = path.endsWith("/");
  const inner = path.slice(1, directory ? -1 : undefined);
  if (inner === "") return { name: "", directory: true, path, query };
  const parts = inner.split("/").map((part) => {
    const bytes = percentDecode(part);
    if (bytes.includes(0x2f)) throw new BadTarget("name contains an encoded slash");
    return bytes;
  });
  const joined = new Uint8Array(parts.reduce((n, p) => n + p.length + 1, -1));
  let at = 0;
  for (const [i, part] of parts.entries()) {
    if (i > 0) joined[at++] = 0x2f;
    joined.set(part, at);
    at += part.length;
  }
  try {
    return { name: parseName(joined), directory, path, query };
  } catch (error) {
    throw new BadTarget((error as Error).message);
  }
}

/** `%XX` escapes to bytes; anything else as its UTF-8. A broken escape is refused. */
export function percentDecode(text: string): Uint8Array {
  const bytes = new TextEncoder().encode(text);
  const out = new Uint8Array(bytes.length);
  let n = 0;
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] !== 0x25) {
      out[n++] = bytes[i];
      continue;
    }
    const hex = String.fromCharCode(bytes[i + 1] ?? 0, bytes[i + 2] ?? 0);
    if (!/^[0-9a-fA-F]{2}$/.test(hex)) throw new BadTarget("malformed percent-escape in path");
    out[n++] = parseInt(hex, 16);
    i += 2;
  }
  return out.subarray(0, n);
}

/** A name as a URL path: each part percent-encoded, "/" between them. */
export function encodePath(name: string): string {
  return name.split("/").map(encodeURIComponent).join("/");
}
