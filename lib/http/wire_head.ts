/**
 * An HTTP/1.1 request head, by the rules of RFC 9112 and no looser: the
 * request line, header lines as tokens and values, one Content-Length or
 * `chunked` (never both: request smuggling), a Host on HTTP/1.1, a bounded
 * size and count; what breaks a rule is a BadRequest with its status.
 */

/** Longest request head (request line and headers) read. */
export const MAX_HEAD = 16 * 1024;
/** Most header lines in one request. */
const MAX_HEADERS = 100;
const LATIN1 = new TextDecoder("latin1");

/** The request head could not be used: answered with `status` and the connection closed. */
export class BadRequest extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
    this.name = "BadRequest";
  }
}

export interface Head {
  method: string;
  /** The raw request target, origin-form. */
  target: string;
  version: "1.0" | "1.1";
  headers: Headers;
}

/** The index just past the first CRLFCRLF at or after `from`, or -1. */
export function findHeadEnd(buffer: Uint8Array, from: number, end: number): number {
  for (let i = from; i + 3 < end; i++) {
    if (buffer[i] === 13 && buffer[i + 1] === 10 && buffer[i + 2] === 13 && buffer[i + 3] === 10) {
      return i + 4;
    }
  }
  return -1;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** A request head's bytes (ending in CRLFCRLF) as a Head, by the rules of RFC 9112. */
export function parseHead(bytes: Uint8Array): Head {
  // Latin-1: every byte is one character, so nothing is lost before the checks below.
  const text = LATIN1.decode(bytes);
  const lines = text.slice(0, -4).split("\r\n");
  const match = /^([A-Z]{1,20}) (\S+) HTTP\/1\.([01])$/.exec(lines[0]);
  if (!match) throw new BadRequest(400, "bad request line");
  const [, method, rawTarget, minor] = match;
  if (lines.length - 1 > MAX_HEADERS) {
    throw new BadRequest(431, `too many header lines: at most ${MAX_HEADERS}`);
  }
  const headers = new Headers();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    const name = line.slice(0, colon);
    if (colon <= 0 || !TOKEN.test(name)) throw new BadRequest(400, "bad header line");
    const value = line.slice(colon + 1).trim();
    try {
      headers.append(name, value);
    } catch {
      throw new BadRequest(400, "bad header value");
    }
  }
  const lengths = headers.get("content-length");
  if (lengths !== null && !/^\d{1,15}$/.test(lengths)) {
    // Repeated lengths come joined by ", ": any repeat is refused (RFC 9112 6.3).
    throw new BadRequest(400, "bad content-length");
  }
  const coding = headers.get("transfer-encoding");
  if (coding !== null) {
    if (lengths !== null) {
      throw new BadRequest(400, "both content-length and transfer-encoding: refused");
    }
    if (coding.toLowerCase() !== "chunked") {
      throw new BadRequest(501, `transfer-encoding not supported: ${coding}`);
    }
  }
  const version = minor === "1" ? "1.1" : "1.0";
  if (version === "1.1" && headers.get("host") === null) {
    throw new BadRequest(400, "no host header");
  }
  // Absolute-form (a proxy's): the path and query only.
  const absolute = /^https?:\/\/[^/?#]*/i.exec(rawTarget);
  const target = absolute ? rawTarget.slice(absolute[0].length) || "/" : rawTarget;
  if (!target.startsWith("/")) throw new BadRequest(400, "request target is not a path");
  return { method, target, version, headers };
}

/** Whether the client wants the connection kept after this request. */
export function keepsAlive(head: Head): boolean {
  const connection = (head.headers.get("connection") ?? "").toLowerCase();
  if (head.version === "1.0") return /\bkeep-alive\b/.test(connection);
  return !/\bclose\b/.test(connection);
}

/** The web's Request for `head` (its raw target kept as its url); undefined for a method fetch forbids. */
export function toRequest(
  head: Head,
  body: ReadableStream<Uint8Array> | undefined,
  scheme: string,
): Request | undefined {
  const host = head.headers.get("host") ?? "localhost";
  const url = `${scheme}://${/^[\w.:\[\]-]+$/.test(host) ? host : "localhost"}${head.target}`;
  let request: Request;
  try {
    request = new Request(`${scheme}://localhost/`, {
      method: head.method,
      headers: head.headers,
      ...(body && { body, duplex: "half" }),
    } as RequestInit);
  } catch {
    return undefined; // CONNECT, TRACE, TRACK
  }
  // The target as sent: parseTarget checks it byte for byte (a URL would resolve ".." first).
  Object.defineProperty(request, "url", { value: url });
  return request;
}
