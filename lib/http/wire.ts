/**
 * HTTP/1.1 on one accepted connection, so that fsd, not the runtime, owns
 * every connection of the HTTP face: it is counted in the limits from
 * accept to close (idle keep-alive ones too), its request head must be
 * whole within the request timeout, a keep-alive wait ends after the idle
 * timeout, and while a request runs the connection must move at least the
 * minimum rate. `Deno.serve` has none of these deadlines and hides its
 * connections, hence this small server: request heads parsed strictly
 * (one Content-Length or chunked, never both; bounded size and count),
 * bodies as streams (100-continue sent when the body is first read),
 * responses written as they come (Content-Length or chunked), pipelining
 * and keep-alive. Requests and responses stay the web's `Request` and
 * `Response`, so the routes do not know which server runs them.
 */

import type { StreamConn } from "../net/stream_conn.ts";
import { writeResponse } from "./wire_response.ts";
import { BadRequest, findHeadEnd, type Head, MAX_HEAD, parseHead } from "./wire_head.ts";
import { after, every, type Timer } from "../timer.ts";

export { BadRequest, type Head, keepsAlive, MAX_HEAD, parseHead } from "./wire_head.ts";

/** The block a body is read into from the socket, a read at a time. */
const BODY_CHUNK = 1024 * 1024;
/** Below this much room left, a new block is taken. */
const MIN_READ = 64 * 1024;
const LATIN1 = new TextDecoder("latin1");

export interface WireConfig {
  scheme: "http" | "https";
  /** A request head, once its first byte came (the first: from accept), must be whole within this (0: no limit). */
  requestTimeoutMs: number;
  /** A keep-alive connection waits this long for its next request. */
  idleTimeoutMs: number;
  /** While a request runs, bytes a second in and out together, measured over `windowMs` (0: no floor). */
  minRate: { bytesPerSecond: number; windowMs: number };
}

/** A deadline of this connection cut it; the message says which. */
export class ConnectionCut extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConnectionCut";
  }
}

/** One connection's requests, one after the other. */
export class WireConn {
  readonly conn: StreamConn;
  #config: WireConfig;
  #buffer = new Uint8Array(MAX_HEAD);
  #start = 0;
  #end = 0;
  #spare = new Uint8Array(0);
  #closed = false;
  #cutReason: string | undefined;
  #deadline: Timer | undefined;
  #rateTimer: Timer | undefined;
  #moved = 0;
  #requests = 0;
  /** False once the connection cannot carry another request. */
  reusable = true;

  constructor(conn: StreamConn, config: WireConfig) {
    this.conn = conn;
    this.#config = config;
    conn.setNoDelay?.(true);
  }

  /** Why a deadline cut the connection, if one did. */
  get cutReason(): string | undefined {
    return this.#cutReason;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Whether a request has begun arriving (bytes buffered past the last request). */
  get midRequest(): boolean {
    return this.#end > this.#start;
  }

  /**
   * The next request's head; null when the client closed between requests
   * (or the idle timeout did: see cutReason). BadRequest for a head that
   * breaks the rules; ConnectionCut when the head took too long.
   */
  async readHead(): Promise<Head | null> {
    const first = this.#requests++ === 0;
    const { requestTimeoutMs, idleTimeoutMs } = this.#config;
    const whole = requestTimeoutMs / 1000;
    // The first request is due within the request timeout of accept; later ones may wait idle.
    if (first || this.midRequest) {
      this.#deadlineIn(
        requestTimeoutMs,
        `request timeout: no whole request head within ${whole} s`,
      );
    } else {
      this.#deadlineIn(
        idleTimeoutMs,
        `idle timeout: no request for ${idleTimeoutMs / 1000} s on a keep-alive connection`,
      );
    }
    let scanned = this.#start;
    try {
      for (;;) {
        const end = findHeadEnd(this.#buffer, scanned, this.#end);
        if (end >= 0) {
          const head = parseHead(this.#buffer.subarray(this.#start, end));
          this.#start = end;
          return head;
        }
        scanned = Math.max(this.#start, this.#end - 3);
        if (this.#end - this.#start >= MAX_HEAD) {
          throw new BadRequest(431, `request head too large: at most ${MAX_HEAD} bytes`);
        }
        const wasEmpty = !this.midRequest;
        const before = this.#start;
        const n = await this.#fill();
        scanned -= before - this.#start; // the buffer may have been compacted
        if (n === null) {
          if (wasEmpty && this.#cutReason === undefined) return null;
          if (this.#cutReason !== undefined) throw new ConnectionCut(this.#cutReason);
          throw new BadRequest(400, "the connection ended inside a request head");
        }
        if (wasEmpty && !first) {
          this.#deadlineIn(
            requestTimeoutMs,
            `request timeout: a request head took over ${whole} s to arrive`,
          );
        }
      }
    } finally {
      this.#clearDeadline();
    }
  }

  /** Writes `response` to the request `head` and says how many body bytes went. */
  async respond(response: Response, head: Head | undefined, close: boolean): Promise<number> {
    if (close || head?.version === "1.0") this.reusable = false;
    const bodiless = head?.method === "HEAD";
    return await writeResponse(this, response, bodiless, !this.reusable, head?.version === "1.0");
  }

  /**
   * Resolves once the client closes its side (or the connection ends); the
   * connection then closes. For a response that stays open with little
   * traffic (server-sent events), whose writes alone would notice late. Reads
   * ahead into the buffer meanwhile, so no other read may run: the
   * connection carries no request after this one.
   */
  async untilClientCloses(): Promise<void> {
    this.reusable = false;
    while (!this.#closed && this.#end < this.#buffer.length) {
      if ((await this.#fill().catch(() => null)) === null) break;
    }
    this.close();
  }

  /**
   * After answering a request whose body was not read (a refusal): the
   * client may still be sending it, and closing now would reset the
   * connection and lose the answer. So, as nginx's lingering close: our side
   * is shut, and what still comes is read and dropped, for at most `ms` and
   * `maxBytes`; then the connection closes.
   */
  async linger(ms: number, maxBytes: number): Promise<void> {
    this.reusable = false;
    const timer = after(ms, () => this.close());
    try {
      await this.conn.closeWrite();
      let total = 0;
      while (!this.#closed && total < maxBytes) {
        const n = await this.conn.read(this.#buffer).catch(() => null);
        if (n === null) break;
        total += n;
      }
    } catch {
      // gone already
    } finally {
      timer.cancel();
      this.close();
    }
  }

  /** Starts (or, with `on` false, stops) the minimum rate for a request in progress. */
  minimumRate(on: boolean): void {
    this.#rateTimer?.cancel();
    this.#rateTimer = undefined;
    this.#moved = 0;
    const { bytesPerSecond, windowMs } = this.#config.minRate;
    if (!on || bytesPerSecond <= 0 || windowMs <= 0 || this.#closed) return;
    const floor = bytesPerSecond * windowMs / 1000;
    this.#rateTimer = every(windowMs, () => {
      if (this.#moved < floor) {
        this.cut(`too slow: under ${bytesPerSecond} bytes/s for ${windowMs / 1000} s`);
      }
      this.#moved = 0;
    });
  }

  /** Buffered bytes (up to `max`) or, with none buffered, one read from the socket; null at the end. */
  async readSome(max: number): Promise<Uint8Array | null> {
    if (this.#end > this.#start) {
      const n = Math.min(max, this.#end - this.#start);
      const bytes = this.#buffer.slice(this.#start, this.#start + n);
      this.#start += n;
      return bytes;
    }
    // Nothing buffered: straight from the socket into the unused rest of a spare block (the
    // chunks handed out are never written again, and no byte of the block is wasted).
    if (this.#spare.length < MIN_READ) this.#spare = new Uint8Array(BODY_CHUNK);
    const room = this.#spare.subarray(0, Math.min(max, this.#spare.length));
    const n = this.#closed ? null : await this.conn.read(room).catch((error) => {
      if (this.#closed) return null;
      throw error;
    });
    if (n === null) {
      if (this.#cutReason !== undefined) throw new ConnectionCut(this.#cutReason);
      return null;
    }
    this.#moved += n;
    const chunk = this.#spare.subarray(0, n);
    this.#spare = this.#spare.subarray(n);
    return chunk;
  }

  /** One line (without its CRLF) of at most `max` bytes, as Latin-1; null at the end. */
  async readLine(max: number): Promise<string | null> {
    let scanned = this.#start;
    for (;;) {
      for (let i = scanned; i + 1 < this.#end; i++) {
        if (this.#buffer[i] === 13 && this.#buffer[i + 1] === 10) {
          const line = LATIN1.decode(this.#buffer.subarray(this.#start, i));
          this.#start = i + 2;
          return line;
        }
      }
      if (this.#end - this.#start > max) {
        throw new BadRequest(400, "line too long in a chunked body");
      }
      scanned = Math.max(this.#start, this.#end - 1);
      const before = this.#start;
      if ((await this.#fill()) === null) {
        if (this.#cutReason !== undefined) throw new ConnectionCut(this.#cutReason);
        return null;
      }
      scanned -= before - this.#start; // the buffer may have been compacted
    }
  }

  /** Writes all of `bytes`. */
  async write(bytes: Uint8Array): Promise<void> {
    let at = 0;
    try {
      while (at < bytes.length) at += await this.conn.write(bytes.subarray(at));
    } catch (error) {
      if (this.#cutReason !== undefined) throw new ConnectionCut(this.#cutReason);
      throw error;
    } finally {
      this.#moved += at;
    }
  }

  /** Ends the connection because of `reason` (a deadline). */
  cut(reason: string): void {
    if (this.#closed) return;
    this.#cutReason = reason;
    this.close();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.reusable = false;
    this.#clearDeadline();
    this.minimumRate(false);
    try {
      this.conn.close();
    } catch {
      // already closed
    }
  }

  /** Reads more into the buffer (compacting it first); null at the end or once closed. */
  async #fill(): Promise<number | null> {
    if (this.#closed) return null;
    if (this.#start === this.#end) this.#start = this.#end = 0;
    else if (this.#end === this.#buffer.length) {
      this.#buffer.copyWithin(0, this.#start, this.#end);
      this.#end -= this.#start;
      this.#start = 0;
    }
    let n: number | null;
    try {
      n = await this.conn.read(this.#buffer.subarray(this.#end));
    } catch (error) {
      if (this.#closed) return null;
      throw error;
    }
    if (n === null) return null;
    this.#end += n;
    this.#moved += n;
    return n;
  }

  #deadlineIn(ms: number, reason: string): void {
    this.#clearDeadline();
    if (ms > 0) this.#deadline = after(ms, () => this.cut(reason));
  }

  #clearDeadline(): void {
    this.#deadline?.cancel();
    this.#deadline = undefined;
  }
}
