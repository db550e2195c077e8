/**
 * A TLS listener on node:net and node:tls, seen as the part of a Deno.Listener the
 * accept loop uses (accept, close, addr). Why not Deno.listenTls: its
 * connections cannot turn off Nagle's algorithm, and a window of fsd/1
 * blocks then ends in a small TLS record the kernel holds back until the
 * client's delayed ACK, a stall of milliseconds per window (measured on
 * 127.0.0.1: 139 MiB/s with Nagle, 1,167 MiB/s without). Connections come
 * out with the handshake done and TCP_NODELAY set; failed or stalled
 * handshakes (after `handshakeTimeoutMs`) go to `onHandshakeError`.
 *
 * A handshake holds a slot of the server's `limits` from accept: a connection
 * is admitted before its handshake starts (and the slot given back if it
 * fails), so stalled handshakes count in `--max-clients` and `--max-per-ip`.
 * One over the limits still gets a handshake (at most `maxHandshakes` are in
 * progress in all), so that it can be told why; it comes out as a
 * `TlsServerConn` whose `admission` says it was refused.
 *
 * node:net in Deno 2.9.6 stops accepting for good after one failed accept
 * (out of descriptors): an AcceptWatchdog notices and listens again.
 */

import type { Server, Socket } from "node:net";
import type { SecureContext } from "node:tls";
import { AcceptWatchdog, type ProbeBoard } from "./accept_watchdog.ts";
import { errorMessage } from "../bytes/source_sink.ts";
import { ListenError, listenError, listenTcp } from "./listen.ts";
import type { TlsServerConfig } from "./tls.ts";
import { certificateDer, TlsError } from "./tls_identity.ts";
import { NodeSocketConn } from "./node_socket_conn.ts";
import type { Admission, Limits } from "./shared_limits.ts";
import type { StreamListener } from "./stream_conn.ts";
import { after } from "../timer.ts";

let net: typeof import("node:net");
let tls: typeof import("node:tls");

export interface TlsListenerConfig {
  hostname: string;
  port: number;
  /** Share the port with other listeners that set it too (SO_REUSEPORT: `--workers`). */
  reusePort?: boolean;
  /** With reusePort: the probe board the listeners of the port share (their watchdogs'). */
  probes?: ProbeBoard;
  cert: string;
  key: string;
  handshakeTimeoutMs: number;
  /** Most handshakes in progress at once; past it a new connection is dropped (default 64). */
  maxHandshakes?: number;
  /** The server's limits, asked before a handshake starts; without them every connection is let through unadmitted. */
  limits?: Limits;
  onHandshakeError?(message: string, peer: { hostname: string; port: number }): void;
  /** The port stopped accepting and listens again, or is out of descriptors (said once each). */
  onAcceptTrouble?(message: string): void;
}

/** A connection whose handshake is done, with what the limits said when it arrived. */
export class TlsServerConn extends NodeSocketConn {
  /** Undefined without limits; refused: the server tells the client why and closes. */
  readonly admission: Admission | undefined;

  constructor(socket: Socket, peer: { hostname: string; port: number }, admission?: Admission) {
    super(socket, peer);
    this.admission = admission;
  }
}

export class NodeTlsListener implements StreamListener<TlsServerConn> {
  readonly addr: Deno.NetAddr;
  #config: TlsListenerConfig;
  #context: SecureContext;
  #server: Server;
  #watchdog: AcceptWatchdog | undefined;
  #handshakes = 0;
  #ready: TlsServerConn[] = [];
  #waiting: ((conn: TlsServerConn | null) => void)[] = [];
  #closed = false;

  private constructor(config: TlsListenerConfig, context: SecureContext, server: Server) {
    this.#config = config;
    this.#context = context;
    this.#server = server;
    const address = server.address() as { address: string; port: number };
    this.addr = { transport: "tcp", hostname: address.address, port: address.port };
    if (!config.reusePort || config.probes) {
      this.#watchdog = AcceptWatchdog.start({
        hostname: config.hostname,
        port: address.port,
        rearm: () => this.#rearm(),
        onTrouble: (message) => config.onAcceptTrouble?.(message),
        board: config.probes,
      });
    }
  }

  /** Listens; a failure to bind is a ListenError, a certificate or key that cannot be used throws. */
  static async listen(config: TlsListenerConfig): Promise<NodeTlsListener> {
    // node:net and node:tls are loaded here, not at start-up: only a server with --tls pays for them.
    [net, tls] = await Promise.all([import("node:net"), import("node:tls")]);
    const context = tls.createSecureContext({ cert: config.cert, key: config.key });
    // Connections arrive in later turns of the event loop, once the listener below exists.
    const made: { listener?: NodeTlsListener } = {};
    const server = await bind(config, config.port, (raw) => {
      if (made.listener) void made.listener.#arrived(raw);
      else raw.destroy();
    });
    made.listener = new NodeTlsListener(config, context, server);
    return made.listener;
  }

  /** A new TCP connection: admitted (or refused) first, then its handshake. */
  async #arrived(raw: Socket): Promise<void> {
    const peer = { hostname: raw.remoteAddress ?? "", port: raw.remotePort ?? 0 };
    if (await this.#watchdog?.accepted({ address: raw.remoteAddress, port: raw.remotePort })) {
      return void raw.destroy();
    }
    const maxHandshakes = this.#config.maxHandshakes ?? 64;
    if (this.#closed || this.#handshakes >= maxHandshakes) {
      if (!this.#closed) {
        this.#config.onHandshakeError?.(
          `too many TLS handshakes in progress (${maxHandshakes}); dropped`,
          peer,
        );
      }
      return void raw.destroy();
    }
    this.#handshakes++;
    let settled = false;
    raw.on("error", () => {}); // the TLS socket reports it
    raw.setNoDelay(true); // before TLS takes the socket over: after, it may not reach it
    let admission: Admission | undefined;
    try {
      admission = await this.#config.limits?.admit(peer.hostname);
    } catch {
      this.#handshakes--;
      return void raw.destroy(); // the limits are gone (a worker's coordinator): so is the server
    }
    const fail = (message: string) => {
      if (settled) return;
      settled = true;
      this.#handshakes--;
      timer.cancel();
      if (admission?.admitted) this.#config.limits?.release(peer.hostname);
      this.#config.onHandshakeError?.(message, peer);
      socket.destroy();
      raw.destroy();
    };
    const socket = new tls.TLSSocket(raw, { isServer: true, secureContext: this.#context });
    const timer = after(this.#config.handshakeTimeoutMs, () => fail("TLS handshake timeout"));
    socket.on("error", (error: Error) => fail(error.message));
    socket.once("close", () => fail("the client closed the connection"));
    socket.once("secure", () => {
      if (settled) return;
      settled = true;
      this.#handshakes--;
      timer.cancel();
      socket.removeAllListeners("error");
      socket.removeAllListeners("close");
      socket.setNoDelay(true);
      this.#deliver(new TlsServerConn(socket as unknown as Socket, peer, admission));
    });
    if (this.#closed) return fail("server shutting down");
    if (raw.destroyed) return fail("the client closed the connection");
    raw.resume();
  }

  #deliver(conn: TlsServerConn): void {
    if (this.#closed) return this.#drop(conn);
    const waiter = this.#waiting.shift();
    if (waiter) waiter(conn);
    else this.#ready.push(conn);
  }

  /** Listens again on the same port, the old server having stopped accepting. */
  async #rearm(): Promise<void> {
    if (this.#closed) return;
    this.#server.close();
    try {
      this.#server = await bind(this.#config, this.addr.port, (raw) => this.#arrived(raw));
    } catch (error) {
      this.#config.onAcceptTrouble?.(`cannot listen again: ${(error as Error).message}`);
    }
    if (this.#closed) this.#server.close();
  }

  accept(): Promise<TlsServerConn> {
    const conn = this.#ready.shift();
    if (conn) return Promise.resolve(conn);
    if (this.#closed) return Promise.reject(new Deno.errors.BadResource("listener closed"));
    return new Promise((resolve, reject) =>
      this.#waiting.push((c) =>
        c ? resolve(c) : reject(new Deno.errors.BadResource("listener closed"))
      )
    );
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#watchdog?.stop();
    this.#server.close();
    for (const waiter of this.#waiting.splice(0)) waiter(null);
    for (const conn of this.#ready.splice(0)) this.#drop(conn);
  }

  /** Closes a connection nobody will serve, giving back its slot. */
  #drop(conn: TlsServerConn): void {
    if (conn.admission?.admitted) this.#config.limits?.release(conn.remoteAddr.hostname);
    conn.close();
  }
}

/** A node:net server on `port` whose connections arrive paused (nothing read before admission). */
async function bind(
  config: TlsListenerConfig,
  port: number,
  arrived: (raw: Socket) => void,
): Promise<Server> {
  const server = net.createServer({ pauseOnConnect: true }, (raw: Socket) => void arrived(raw));
  await new Promise<void>((resolve, reject) => {
    server.once("error", (error) => reject(listenError(error, config.hostname, port)));
    server.listen({ port, host: config.hostname, reusePort: config.reusePort }, () => resolve());
  });
  // Later errors (an accept that failed, where node:net reports one) are said; the watchdog re-arms.
  server.on("error", (error: Error) => config.onAcceptTrouble?.(error.message));
  return server;
}

/** Longest a TLS handshake may take before the connection is dropped. */
export const TLS_HANDSHAKE_TIMEOUT_MS = 10_000;

/** Where a server listens; `reusePort` and `probes` for a port its workers share. */
export type ListenWhere = Pick<TlsListenerConfig, "hostname" | "port" | "reusePort" | "probes">;

/**
 * A server's TLS listener (fsd/1's, HTTPS's): the certificate checked
 * first, handshakes bounded by TLS_HANDSHAKE_TIMEOUT_MS and holding slots
 * of `limits` from accept, failures told to the handlers; a certificate or
 * key that cannot be used is a TlsError.
 */
export async function listenTlsServer(
  where: ListenWhere,
  certified: TlsServerConfig,
  options: Pick<TlsListenerConfig, "limits" | "onHandshakeError" | "onAcceptTrouble">,
): Promise<NodeTlsListener> {
  try {
    certificateDer(certified.cert);
  } catch {
    throw new TlsError("cannot use the certificate: no PEM certificate found");
  }
  return await NodeTlsListener.listen({
    ...where,
    ...certified,
    ...options,
    handshakeTimeoutMs: TLS_HANDSHAKE_TIMEOUT_MS,
  }).catch((error) => {
    if (error instanceof ListenError) throw error;
    throw new TlsError(`cannot use the certificate and key: ${errorMessage(error)}`, {
      cause: error,
    });
  });
}

/** What listening tells a server's log: an accept in trouble, a failed handshake. */
export type ListenEvent =
  | { event: "accept-error"; message: string }
  | { event: "tls-failed"; address: string; port: number; message: string };

/**
 * A server's listener (fsd/1's, HTTP's): TLS when `tls` is given, each
 * connection holding a slot of `limits` from accept, its handshake included;
 * plain TCP otherwise. Failed handshakes and accept trouble go to `log`.
 */
export async function listenServer(
  where: ListenWhere,
  tls: TlsServerConfig | undefined,
  limits: Limits,
  log?: (event: ListenEvent) => void,
): Promise<NodeTlsListener | Deno.TcpListener> {
  if (!tls) return listenTcp(where);
  return await listenTlsServer(where, tls, {
    limits,
    onHandshakeError: (message, peer) =>
      log?.({ event: "tls-failed", address: peer.hostname, port: peer.port, message }),
    onAcceptTrouble: (message) => log?.({ event: "accept-error", message }),
  });
}
