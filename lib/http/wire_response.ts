/**
 * A `Response` written as HTTP/1.1: the status line and headers, then the
 * body as it comes, with its Content-Length or chunked. The small pieces of
 * each chunk are gathered into one reused buffer (the head goes with the
 * first chunk, a chunk with its framing); large chunks go to the socket as
 * they are, and a byte stream
 * (a download) is read into one reused buffer: no copy and no allocation
 * per chunk.
 */

/** Where a response goes. */
export interface ResponseSink {
  write(bytes: Uint8Array): Promise<void>;
}

const REASONS: Record<number, string> = {
  100: "Continue",
  200: "OK",
  201: "Created",
  204: "No Content",
  206: "Partial Content",
  301: "Moved Permanently",
  302: "Found",
  303: "See Other",
  304: "Not Modified",
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  408: "Request Timeout",
  409: "Conflict",
  411: "Length Required",
  413: "Content Too Large",
  416: "Range Not Satisfiable",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  501: "Not Implemented",
  503: "Service Unavailable",
  507: "Insufficient Storage",
};

/** Headers of one hop: the wire decides them, not the response. */
const HOP = new Set(["connection", "keep-alive", "transfer-encoding", "date"]);

/** Gathered bytes are written once this many are waiting. */
const GATHER = 64 * 1024;
/** The reused buffer a byte stream is read into. */
const READ_CHUNK = 1024 * 1024;

/** The interim answer to `Expect: 100-continue`, sent when the body is first read. */
export const CONTINUE = latin1("HTTP/1.1 100 Continue\r\n\r\n");

/**
 * Writes `response` to `sink` (`head`: no body); returns the body bytes
 * written. `http10`: the client speaks HTTP/1.0, which knows no chunks: a
 * body of unknown length is sent as it is, ended by closing (`close` must be set).
 */
export async function writeResponse(
  sink: ResponseSink,
  response: Response,
  head: boolean,
  close: boolean,
  http10 = false,
): Promise<number> {
  const status = response.status;
  const noBody = status < 200 || status === 204 || status === 304;
  const lines = [`HTTP/1.1 ${status} ${REASONS[status] ?? (response.statusText || "Status")}`];
  let length: number | undefined;
  for (const [name, value] of response.headers) {
    if (name === "set-cookie" || HOP.has(name)) continue;
    if (name === "content-length") length = Number(value);
    lines.push(`${name}: ${value}`);
  }
  for (const cookie of response.headers.getSetCookie()) lines.push(`set-cookie: ${cookie}`);
  lines.push(`date: ${new Date().toUTCString()}`);
  const body = noBody || head ? null : response.body;
  if (noBody || head) await response.body?.cancel().catch(() => {});
  const chunked = body !== null && length === undefined && !http10;
  if (!noBody && length === undefined && response.body === null) lines.push("content-length: 0");
  if (chunked) lines.push("transfer-encoding: chunked");
  lines.push(close ? "connection: close" : "connection: keep-alive");
  const out = new Gather(sink);
  await out.put(latin1(lines.join("\r\n") + "\r\n\r\n"));
  let sent = 0;
  if (body !== null) {
    try {
      for await (const chunk of chunks(body)) {
        if (length !== undefined && sent + chunk.length > length) {
          throw new Error(`the response body is longer than its content-length ${length}`);
        }
        if (chunked) await out.put(latin1(`${chunk.length.toString(16)}\r\n`));
        await out.put(chunk);
        if (chunked) await out.put(CRLF);
        // Sent now: a stream that pauses (server-sent events) must not wait in the buffer.
        await out.flush();
        sent += chunk.length;
      }
    } catch (error) {
      await body.cancel(error).catch(() => {});
      throw error;
    }
    if (chunked) await out.put(LAST_CHUNK);
    if (length !== undefined && sent < length) {
      throw new Error(`the response body ended at ${sent} of its ${length} bytes`);
    }
  }
  await out.flush();
  return sent;
}

const CRLF = latin1("\r\n");
const LAST_CHUNK = latin1("0\r\n\r\n");

/** The chunks of `body`; a byte stream is read into one reused buffer (valid until the next). */
async function* chunks(body: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
  let byob: ReadableStreamBYOBReader | undefined;
  try {
    byob = body.getReader({ mode: "byob" });
  } catch {
    // Not a byte stream.
  }
  if (!byob) {
    const reader = body.getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        if (value.length > 0) yield value;
      }
    } finally {
      reader.releaseLock();
    }
  }
  let buffer: ArrayBuffer = new ArrayBuffer(READ_CHUNK);
  try {
    for (;;) {
      const { done, value } = await byob.read(new Uint8Array(buffer));
      if (done || value === undefined) return;
      buffer = value.buffer as ArrayBuffer;
      if (value.length > 0) yield value;
    }
  } finally {
    byob.releaseLock();
  }
}

/** Small writes gathered into one reused buffer; large ones passed straight through. */
class Gather {
  #sink: ResponseSink;
  #buffer = new Uint8Array(GATHER);
  #used = 0;

  constructor(sink: ResponseSink) {
    this.#sink = sink;
  }

  async put(bytes: Uint8Array): Promise<void> {
    if (this.#used + bytes.length <= this.#buffer.length) {
      this.#buffer.set(bytes, this.#used);
      this.#used += bytes.length;
      return;
    }
    await this.flush();
    if (bytes.length >= this.#buffer.length / 2) await this.#sink.write(bytes);
    else {
      this.#buffer.set(bytes);
      this.#used = bytes.length;
    }
  }

  async flush(): Promise<void> {
    if (this.#used === 0) return;
    const n = this.#used;
    this.#used = 0;
    await this.#sink.write(this.#buffer.subarray(0, n));
  }
}

/** Text whose characters are all below 256, one byte each. */
function latin1(text: string): Uint8Array {
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return bytes;
}
