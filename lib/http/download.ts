/**
 * Downloads: GET and HEAD of a file opened through the FileStore, with
 * Content-Length, a type by extension, Last-Modified, a strong ETag, one
 * Range (206, 416), If-None-Match / If-Modified-Since (304) and If-Range;
 * the bytes streamed from disk in reused chunks, never the whole file.
 */

import type { OpenedFile } from "../store/file_store.ts";
import { contentType } from "./mime.ts";
import { FILE_CSP, SECURITY_HEADERS } from "./respond.ts";

/** Bytes read from disk per chunk of a response body. */
const CHUNK = 1024 * 1024;

/** What a served download moved, for the log. */
export interface Sent {
  response: Response;
  /** Bytes the body will carry. */
  bytes: number;
  /** Settles when the body has been sent or abandoned; with the bytes really sent. */
  done: Promise<number>;
}

/** The strong validator of a file: its size and modification time. */
export function etagOf(file: { size: number; mtime?: Date }): string {
  return `"${file.size.toString(16)}-${(file.mtime?.getTime() ?? 0).toString(16)}"`;
}

/** Answers GET or HEAD of `file` (named `name`); closes `file` when the body ends. */
export async function sendFile(
  request: Request,
  file: OpenedFile,
  name: string,
  onProgress?: (bytes: number) => void,
): Promise<Sent> {
  const etag = etagOf(file);
  const mtime = file.mtime ?? new Date(0);
  const modified = new Date(Math.floor(mtime.getTime() / 1000) * 1000).toUTCString();
  const { type, download } = contentType(name);
  const base = name.slice(name.lastIndexOf("/") + 1);
  const headers: Record<string, string> = {
    ...SECURITY_HEADERS,
    "content-security-policy": FILE_CSP,
    "content-type": type,
    "last-modified": modified,
    etag,
    "accept-ranges": "bytes",
    "cache-control": "no-cache",
    ...(download && { "content-disposition": disposition(base) }),
  };
  const none = (status: number, extra: Record<string, string> = {}): Sent => {
    file.close();
    return {
      response: new Response(null, { status, headers: { ...headers, ...extra } }),
      bytes: 0,
      done: Promise.resolve(0),
    };
  };
  if (notModified(request.headers, etag, mtime)) return none(304);
  const range = wantedRange(request.headers, file.size, etag, mtime);
  if (range === "unsatisfiable") {
    return none(416, { "content-range": `bytes */${file.size}`, "content-length": "0" });
  }
  const [start, end] = range ?? [0, file.size];
  const length = end - start;
  headers["content-length"] = String(length);
  if (range) headers["content-range"] = `bytes ${start}-${end - 1}/${file.size}`;
  const status = range ? 206 : 200;
  if (request.method === "HEAD") return none(status, headers);
  if (start > 0) await file.skip(start);
  let sent = 0;
  let settle: (n: number) => void = () => {};
  const done = new Promise<number>((resolve) => settle = resolve);
  const finish = () => {
    file.close();
    settle(sent);
  };
  const body = new ReadableStream({
    type: "bytes",
    autoAllocateChunkSize: CHUNK,
    async pull(controller: ReadableByteStreamController) {
      const view = controller.byobRequest!.view as Uint8Array;
      const want = Math.min(view.byteLength, length - sent);
      const n = want === 0 ? null : await file.source.read(view.subarray(0, want));
      if (n === null) {
        finish();
        controller.close();
        controller.byobRequest!.respond(0);
        return;
      }
      sent += n;
      onProgress?.(sent);
      controller.byobRequest!.respond(n);
      if (sent === length) {
        finish();
        controller.close();
      }
    },
    cancel: finish,
  });
  return { response: new Response(body, { status, headers }), bytes: length, done };
}

/** `attachment; filename*=UTF-8''...` so the browser saves it under its name. */
export function disposition(name: string): string {
  const ascii = name.replace(/[^\x20-\x7e]|["\\]/g, "_");
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(name)}`;
}

function notModified(headers: Headers, etag: string, mtime: Date): boolean {
  const match = headers.get("if-none-match");
  if (match !== null) {
    return match.trim() === "*" || match.split(",").some((tag) => sameTag(tag, etag, true));
  }
  const since = headers.get("if-modified-since");
  if (since === null) return false;
  const when = Date.parse(since);
  return !Number.isNaN(when) && Math.floor(mtime.getTime() / 1000) * 1000 <= when;
}

/** Weak comparison (If-None-Match) ignores W/; strong (If-Range) does not match a weak tag. */
function sameTag(tag: string, etag: string, weak: boolean): boolean {
  const t = tag.trim();
  return weak ? t.replace(/^W\//, "") === etag : t === etag;
}

/**
 * The one range asked for, as [start, end): undefined for the whole file
 * (no Range, several ranges, a syntax we ignore, or an If-Range that does
 * not match), "unsatisfiable" for a range past the end.
 */
function wantedRange(
  headers: Headers,
  size: number,
  etag: string,
  mtime: Date,
): [number, number] | "unsatisfiable" | undefined {
  const header = headers.get("range");
  if (header === null) return undefined;
  const ifRange = headers.get("if-range");
  if (ifRange !== null) {
    const matches = ifRange.trim().startsWith('"')
      ? sameTag(ifRange, etag, false)
      : Date.parse(ifRange) === Math.floor(mtime.getTime() / 1000) * 1000;
    if (!matches) return undefined;
  }
  const match = /^bytes=(\d{0,19})-(\d{0,19})$/.exec(header.trim());
  if (!match || (match[1] === "" && match[2] === "")) return undefined;
  if (match[1] === "") {
    const suffix = Number(match[2]);
    if (suffix === 0) return "unsatisfiable";
    return [Math.max(0, size - suffix), size];
  }
  const start = Number(match[1]);
  const last = match[2] === "" ? size - 1 : Math.min(Number(match[2]), size - 1);
  if (start >= size) return "unsatisfiable";
  if (last < start) return undefined;
  return [start, last + 1];
}
