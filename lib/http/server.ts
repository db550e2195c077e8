/**
 * The HTTP face of a served directory: HTTP/1.1 (keep-alive) on
 * `Deno.serve`, HTTPS with a certificate, through the same `FileStore` as
 * fsd/1 and TFTP. The server owns the listener, the limits (requests in
 * progress count against --max-clients and --max-per-ip, with fsd/1's
 * connections when they share one `Limits`), the log line of
 * every request, and shutdown; routes.ts answers the requests.
 */

import { errorMessage } from "../bytes/mod.ts";
import { ConnectionLimits } from "../net/limits.ts";
import type { Limits } from "../net/shared_limits.ts";
import type { Cidr } from "../net/ip.ts";
import { DEFAULT_HOST, listenError } from "../net/listen.ts";
import { forwardedClient } from "../net/proxied.ts";
import type { TlsServerConfig } from "../net/tls.ts";
import type { FileStore } from "../store/file_store.ts";
import type { ServerEvent } from "../store/log.ts";
import { type HttpAccounts, HttpLogins } from "./auth.ts";
import { textReply } from "./respond.ts";
import { type Handled, Routes } from "./routes.ts";
import type { HttpActivity, LiveView } from "./live.ts";

export interface HttpServerConfig {
  /** TCP port; 0 lets the system choose. */
  port: number;
  hostname?: string;
  tls?: TlsServerConfig;
  /** A request body silent this long is dropped with 408 (default 60 s). */
  idleTimeoutMs?: number;
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

export const HTTP_DEFAULTS = { idleTimeoutMs: 60_000, maxClients: 1000, maxPerIp: 100 } as const;

/** A running HTTP face; `shutdown()` stops it gracefully, `close()` at once. */
export class HttpServer {
  readonly addr: Deno.NetAddr;
  readonly tls: boolean;
  #server: Deno.HttpServer<Deno.NetAddr>;
  #abort = new AbortController();
  #stopped = false;
  #limits: Limits;
  #routes: Routes;
  #log: (event: ServerEvent) => void;
  #forwardedBy?: Cidr[];
  #nextId: number;
  /** Requests in progress, each with the way to cut it. */
  #active = new Map<number, AbortController>();

  private constructor(store: FileStore, config: HttpServerConfig, firstId: number) {
    this.#log = config.log ?? (() => {});
    this.#nextId = firstId;
    this.#forwardedBy = config.forwardedBy;
    this.tls = config.tls !== undefined;
    this.#limits = config.limits ?? new ConnectionLimits({
      maxClients: config.maxClients ?? HTTP_DEFAULTS.maxClients,
      maxPerIp: config.maxPerIp ?? HTTP_DEFAULTS.maxPerIp,
    });
    this.#routes = new Routes({
      store,
      logins: new HttpLogins(store, config.accounts, this.tls),
      bodyTimeoutMs: config.idleTimeoutMs ?? HTTP_DEFAULTS.idleTimeoutMs,
      live: config.live,
    });
    const where = { hostname: config.hostname ?? DEFAULT_HOST, port: config.port };
    try {
      this.#server = Deno.serve({
        ...where,
        ...(config.tls && { cert: config.tls.cert, key: config.tls.key }),
        signal: this.#abort.signal,
        onListen: () => {},
        onError: (error) => textReply(500, `internal error: ${errorMessage(error)}`),
      }, (request, info) => this.#handle(request, info));
    } catch (error) {
      throw listenError(error, where.hostname, where.port);
    }
    this.addr = this.#server.addr;
  }

  /** Starts serving `store`; request ids in the log start at `firstId`. */
  static start(store: FileStore, config: HttpServerConfig, firstId = 1): Promise<HttpServer> {
    return Promise.resolve(new HttpServer(store, config, firstId));
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

  /** Stops taking requests; those in progress may finish within `graceMs`, then are cut. */
  async shutdown(graceMs: number): Promise<void> {
    this.#log({ event: "shutdown", graceMs, connections: this.#active.size });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<boolean>((resolve) =>
      timer = setTimeout(() => resolve(false), graceMs)
    );
    const done = await Promise.race([this.#server.shutdown().then(() => true), late]);
    clearTimeout(timer);
    // Aborting a server that shut down already throws inside Deno: only cut what is left.
    if (!done) await this.close();
    else this.#stopped = true;
  }

  /** Stops at once: every request in progress is cut. */
  async close(): Promise<void> {
    for (const cut of this.#active.values()) cut.abort();
    if (!this.#stopped) {
      this.#stopped = true;
      this.#abort.abort();
    }
    await this.#server.finished;
  }

  async #handle(request: Request, info: Deno.ServeHandlerInfo<Deno.NetAddr>): Promise<Response> {
    const id = this.#nextId++;
    const forwarded = request.headers.get("x-forwarded-for");
    const address = forwardedClient(info.remoteAddr.hostname, forwarded, this.#forwardedBy);
    const admission = await this.#limits.admit(address);
    if (!admission.admitted) {
      this.#log({
        event: "rejected",
        id,
        address,
        port: info.remoteAddr.port,
        code: 503,
        message: admission.reason,
      });
      return textReply(503, admission.reason, { "retry-after": "5", connection: "close" });
    }
    const cut = new AbortController();
    this.#active.set(id, cut);
    const started = performance.now();
    const handled: Handled = await this.#routes.answer(request, id, address, cut.signal);
    const finish = (failure?: unknown) => {
      this.#active.delete(id);
      this.#limits.release(address);
      this.#logRequest(id, address, started, handled, failure);
    };
    info.completed.then(() => finish(), (error) => finish(error));
    return handled.response;
  }

  #logRequest(
    id: number,
    address: string,
    started: number,
    handled: Handled,
    failure: unknown,
  ): void {
    const ms = performance.now() - started;
    const status = handled.response.status;
    const base = {
      event: "request" as const,
      id,
      op: handled.op,
      name: handled.name,
      address,
      transport: "http" as const,
      ...(handled.user && { user: handled.user }),
    };
    if (failure !== undefined && status < 400) {
      this.#log({
        event: "close",
        id,
        reason: "client",
        op: handled.op,
        name: handled.name,
        bytes: handled.bytes(),
        ms,
        message: "the client went away before the response was sent",
      });
    } else if (status >= 400) {
      this.#log({
        ...base,
        outcome: "refused",
        bytes: 0,
        ms,
        code: status,
        message: handled.message,
      });
    } else {
      this.#log({ ...base, outcome: "ok", kind: handled.kind, bytes: handled.bytes(), ms, status });
    }
  }
}
