/**
 * The HTTP face of a served directory: HTTP/1.1 (keep-alive) on fsd's own
 * connection handling (wire.ts), HTTPS with a certificate, through the same
 * `FileStore` as fsd/1 and TFTP. The server owns the listener, the limits
 * (every connection, idle keep-alive ones too, counts against
 * --max-clients and --max-per-ip, with fsd/1's connections when they
 * share one `Limits`), the deadlines (request head, keep-alive idle,
 * minimum rate), the log line of every request and of every cut, and
 * shutdown; routes.ts answers the requests.
 */

import { errorMessage } from "../bytes/mod.ts";
import { AcceptLoop } from "../net/accept_loop.ts";
import { type Cidr, inCidr } from "../net/ip.ts";
import { forwardedClient } from "../net/proxied.ts";
import { ConnectionLimits } from "../net/limits.ts";
import type { Limits } from "../net/shared_limits.ts";
import { DEFAULT_HOST } from "../net/listen.ts";
import type { StreamConn, StreamListener } from "../net/stream_conn.ts";
import type { TlsServerConfig } from "../net/tls.ts";
import { listenServer, TlsServerConn } from "../net/tls_listener.ts";
import type { FileStore } from "../store/file_store.ts";
import type { ServerEvent } from "../store/log.ts";
import { type HttpAccounts, HttpLogins } from "./auth.ts";
import { textReply } from "./respond.ts";
import { type Handled, Routes } from "./routes.ts";
import { cutEvent, requestEvent } from "./request_log.ts";
import type { HttpActivity, LiveView } from "./live.ts";
import {
  BadRequest,
  ConnectionCut,
  type Head,
  keepsAlive,
  type WireConfig,
  WireConn,
} from "./wire.ts";
import { BodyStream } from "./wire_body.ts";
import { toRequest } from "./wire_head.ts";
import { CONTINUE } from "./wire_response.ts";
import { after, type Timer } from "../timer.ts";

export interface HttpServerConfig {
  /** TCP port; 0 lets the system choose. */
  port: number;
  hostname?: string;
  tls?: TlsServerConfig;
  /** A keep-alive connection waits this long for its next request; a request body silent this long is dropped with 408 (default 60 s). */
  idleTimeoutMs?: number;
  /** A request head must be whole within this long of its first byte (the first request: of accept; default 10 s; 0: no limit). */
  requestTimeoutMs?: number;
  /** While a request runs, the connection moves at least this many bytes a second over each request timeout (default 100; 0: no floor). */
  minRate?: number;
  maxClients?: number;
  maxPerIp?: number;
  /** Limits kept with another server (fsd/1's), instead of maxClients and maxPerIp here. */
  limits?: Limits;
  accounts?: HttpAccounts;
  log?: (event: ServerEvent) => void;
  /** The live page's data (fsd serve --live): serves /.live/ and hears of every transfer. */
  live?: LiveView & HttpActivity;
  /**
   * Proxies (--trusted-proxy) whose X-Forwarded-For names the client, who then
   * counts for the logs, --max-per-ip and the login throttle.
   */
  forwardedBy?: Cidr[];
}

export const HTTP_DEFAULTS = {
  idleTimeoutMs: 60_000,
  requestTimeoutMs: 10_000,
  minRate: 100,
  maxClients: 1000,
  maxPerIp: 100,
} as const;

/** How long a refused connection is given to take its 503 before it is closed. */
const REFUSAL_MS = 1000;
/** After a refusal whose body was not read: how long, and how much of it, is read and dropped. */
const LINGER_MS = 2000;
const LINGER_BYTES = 64 * 1024 * 1024;

/**
 * A running HTTP face; `shutdown()` stops it gracefully, `close()` at once.
 * Each connection is admitted by the limits when accepted and released
 * when closed, whether a request is running on it or it is waiting idle.
 */
export class HttpServer {
  readonly addr: Deno.NetAddr;
  readonly tls: boolean;
  #accepting: AcceptLoop<StreamConn>;
  #limits: Limits;
  #routes: Routes;
  #log: (event: ServerEvent) => void;
  #forwardedBy?: Cidr[];
  #nextId: number;
  #wire: WireConfig;
  /** Every connection, with the way to cut the request running on it (none: idle). */
  #conns = new Map<WireConn, { running?: AbortController }>();
  #graceTimer: Timer | undefined;

  private constructor(
    listener: StreamListener & { readonly addr: Deno.NetAddr },
    store: FileStore,
    config: HttpServerConfig,
    limits: Limits,
    firstId: number,
  ) {
    this.#log = config.log ?? (() => {});
    this.#nextId = firstId;
    this.#forwardedBy = config.forwardedBy;
    this.tls = config.tls !== undefined;
    this.addr = listener.addr;
    this.#limits = limits;
    const idleTimeoutMs = config.idleTimeoutMs ?? HTTP_DEFAULTS.idleTimeoutMs;
    const requestTimeoutMs = config.requestTimeoutMs ?? HTTP_DEFAULTS.requestTimeoutMs;
    this.#wire = {
      scheme: this.tls ? "https" : "http",
      idleTimeoutMs,
      requestTimeoutMs,
      minRate: {
        bytesPerSecond: config.minRate ?? HTTP_DEFAULTS.minRate,
        windowMs: requestTimeoutMs || HTTP_DEFAULTS.requestTimeoutMs,
      },
    };
    this.#routes = new Routes({
      store,
      logins: new HttpLogins(store, config.accounts, this.tls),
      bodyTimeoutMs: idleTimeoutMs,
      live: config.live,
    });
    this.#accepting = new AcceptLoop(listener, {
      handle: (conn) => this.#serve(conn),
      onAcceptError: (error) => this.#log({ event: "accept-error", message: errorMessage(error) }),
    });
  }

  /** Starts serving `store`; request ids in the log start at `firstId`. */
  static async start(
    store: FileStore,
    config: HttpServerConfig,
    firstId = 1,
  ): Promise<HttpServer> {
    const where = { hostname: config.hostname ?? DEFAULT_HOST, port: config.port };
    const limits = config.limits ?? new ConnectionLimits({
      maxClients: config.maxClients ?? HTTP_DEFAULTS.maxClients,
      maxPerIp: config.maxPerIp ?? HTTP_DEFAULTS.maxPerIp,
    });
    // Over TLS a connection holds its slot from accept, its handshake included.
    const listener = await listenServer(where, config.tls, limits, config.log);
    return new HttpServer(listener, store, config, limits, firstId);
  }

  /** The URLs a person can open, for the start line. */
  urls(): string[] {
    const scheme = this.tls ? "https" : "http";
    const host = this.addr.hostname;
    const shown = host === "0.0.0.0"
      ? "127.0.0.1"
      : host === "::"
      ? "[::1]"
      : host.includes(":")
      ? `[${host}]`
      : host;
    return [`${scheme}://${shown}:${this.addr.port}/`];
  }

  /** Stops taking connections and closes idle ones; requests in progress may finish within `graceMs`, then are cut. */
  async shutdown(graceMs: number): Promise<void> {
    if (!this.#accepting.stopping) {
      this.#accepting.stop();
      const busy = [...this.#conns.values()].filter((c) => c.running).length;
      this.#log({ event: "shutdown", graceMs, connections: busy });
      for (const [wire, state] of this.#conns) if (!state.running) wire.close();
      this.#graceTimer = after(graceMs, () => this.#closeAll());
    }
    await this.#accepting.settled();
    this.#graceTimer?.cancel();
  }

  /** Stops at once: every connection is cut. */
  async close(): Promise<void> {
    this.#accepting.stop();
    this.#closeAll();
    await this.#accepting.settled();
    this.#graceTimer?.cancel();
  }

  #closeAll(): void {
    for (const [wire, state] of this.#conns) {
      state.running?.abort();
      wire.close();
    }
  }

  /** One connection: admitted, then its requests one after the other, then released. */
  async #serve(conn: StreamConn): Promise<void> {
    const peer = conn.remoteAddr as Deno.NetAddr;
    const address = peer.hostname;
    // A trusted proxy's connection carries many clients: each request counts as its own client.
    const viaProxy = this.#forwardedBy?.some((range) => inCidr(address, range)) ?? false;
    // A TLS connection was admitted when it arrived: its handshake held the slot.
    const held = conn instanceof TlsServerConn ? conn.admission : undefined;
    const admission = held ?? (viaProxy ? undefined : await this.#limits.admit(address));
    if (admission && !admission.admitted) {
      return await this.#refuse(conn, peer, admission.reason);
    }
    const wire = new WireConn(conn, this.#wire);
    const state: { running?: AbortController } = {};
    this.#conns.set(wire, state);
    try {
      while (!this.#accepting.stopping) {
        let head: Head | null;
        try {
          head = await wire.readHead();
        } catch (error) {
          await this.#badHead(wire, peer, error);
          break;
        }
        if (head === null) {
          if (wire.cutReason) this.#log(cutEvent(this.#nextId++, peer, wire.cutReason));
          break;
        }
        state.running = new AbortController();
        try {
          if (viaProxy) await this.#forwarded(wire, head, peer, state.running);
          else await this.#request(wire, head, peer.hostname, state.running);
        } finally {
          state.running.abort(); // what still listens for the request's end (an event stream) stops
          state.running = undefined;
        }
        if (!wire.reusable) break;
      }
    } finally {
      this.#conns.delete(wire);
      wire.close();
      if (admission) this.#limits.release(address);
    }
  }

  /**
   * A request through a trusted proxy (--trusted-proxy): its client is the
   * one X-Forwarded-For names, who counts for the limits while the request
   * runs, the logs and the login throttle.
   */
  async #forwarded(
    wire: WireConn,
    head: Head,
    peer: Deno.NetAddr,
    running: AbortController,
  ): Promise<void> {
    const forwarded = head.headers.get("x-forwarded-for");
    const address = forwardedClient(peer.hostname, forwarded, this.#forwardedBy);
    const admission = await this.#limits.admit(address);
    if (!admission.admitted) {
      const id = this.#nextId++;
      const { reason } = admission;
      this.#log({ event: "rejected", id, address, port: peer.port, code: 503, message: reason });
      const busy = textReply(503, reason, { "retry-after": "5" });
      await wire.respond(busy, head, true).catch(() => {});
      return;
    }
    try {
      await this.#request(wire, head, address, running);
    } finally {
      this.#limits.release(address);
    }
  }

  /** One request on `wire` from `address`: answered, written, logged. */
  async #request(
    wire: WireConn,
    head: Head,
    address: string,
    running: AbortController,
  ): Promise<void> {
    const signal = running.signal;
    const id = this.#nextId++;
    const started = performance.now();
    wire.minimumRate(true);
    const expects = /^100-continue$/i.test(head.headers.get("expect") ?? "");
    const body = head.method === "GET" || head.method === "HEAD"
      ? undefined
      : BodyStream.of(head.headers, wire, {
        onFirstRead: expects ? () => wire.write(CONTINUE) : undefined,
        // Once the body is in, committing it (fsync) moves no bytes: no floor then.
        onEnd: () => wire.minimumRate(false),
      });
    // A GET or HEAD that sends a body: answered, and the connection closed after it.
    const unread = body === undefined && BodyStream.of(head.headers, wire) !== undefined;
    const request = toRequest(head, body?.stream, this.#wire.scheme);
    let handled: Handled;
    if (request === undefined) {
      handled = {
        response: textReply(405, `method not allowed: ${head.method}`),
        op: "GET",
        name: "",
        message: `method not allowed: ${head.method}`,
        bytes: () => 0,
      };
    } else handled = await this.#routes.answer(request, id, address, signal);
    // Server-sent events stay open with little traffic: no floor for them, and they end when
    // the client goes (not at the next event).
    if (/^text\/event-stream/.test(handled.response.headers.get("content-type") ?? "")) {
      wire.minimumRate(false);
      void wire.untilClientCloses().then(() => running.abort());
    }
    const close = unread || this.#accepting.stopping || !keepsAlive(head) ||
      /\bclose\b/i.test(handled.response.headers.get("connection") ?? "");
    let failure: unknown;
    // A body left unread (a refusal before it was read) cannot be skipped: the connection ends.
    const leftover = unread || (body !== undefined && !body.complete);
    try {
      await wire.respond(handled.response, head, close || leftover);
    } catch (error) {
      failure = wire.cutReason ? new ConnectionCut(wire.cutReason) : error;
      wire.reusable = false;
    }
    wire.minimumRate(false);
    this.#log(requestEvent(id, address, performance.now() - started, handled, failure));
    if (leftover && failure === undefined) await wire.linger(LINGER_MS, LINGER_BYTES);
  }

  /** A request head that broke the rules (answered, then closed) or took too long (closed). */
  async #badHead(wire: WireConn, peer: Deno.NetAddr, error: unknown): Promise<void> {
    const id = this.#nextId++;
    if (error instanceof BadRequest) {
      this.#log({
        event: "close",
        id,
        reason: "error",
        code: error.status,
        message: error.message,
      });
      await wire.respond(textReply(error.status, error.message), undefined, true).catch(() => {});
    } else if (error instanceof ConnectionCut) {
      this.#log(cutEvent(id, peer, error.message));
    } else if (!wire.closed) {
      this.#log({ event: "close", id, reason: "failure", message: errorMessage(error) });
    }
  }

  /** Over a limit: a 503 with the reason, a moment to read it, then closed. */
  async #refuse(conn: StreamConn, peer: Deno.NetAddr, reason: string): Promise<void> {
    this.#log({
      event: "rejected",
      id: this.#nextId++,
      address: peer.hostname,
      port: peer.port,
      code: 503,
      message: reason,
    });
    const wire = new WireConn(conn, { ...this.#wire, requestTimeoutMs: REFUSAL_MS });
    const timer = after(REFUSAL_MS, () => wire.close());
    try {
      // The request is read first, so that the client is not reset while still sending it.
      await wire.readHead().catch(() => {});
      await wire.respond(textReply(503, reason, { "retry-after": "5" }), undefined, true);
      await conn.closeWrite();
    } catch {
      // gone: nothing to tell
    } finally {
      timer.cancel();
      wire.close();
    }
  }
}
