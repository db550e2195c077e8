/**
 * A TLS listener on node:tls, seen as the part of a Deno.Listener the
 * accept loop uses (accept, close, addr). Why not Deno.listenTls: its
 * connections cannot turn off Nagle's algorithm, and a window of fsd/1
 * blocks then ends in a small TLS record the kernel holds back until the
 * client's delayed ACK, a stall of milliseconds per window (measured on
 * 127.0.0.1: 139 MiB/s with Nagle, 1,167 MiB/s without). Connections come
 * out with the handshake done and TCP_NODELAY set; failed or stalled
 * handshakes (after `handshakeTimeoutMs`) go to `onHandshakeError`.
 */

import tls from "node:tls";
import type { Socket } from "node:net";
import { errorMessage } from "../bytes/source_sink.ts";
import { ListenError, listenError } from "./listen.ts";
import { certificateDer, TlsError, type TlsServerConfig } from "./tls.ts";
import { NodeSocketConn } from "./node_socket_conn.ts";
import type { StreamListener } from "./stream_conn.ts";

export interface TlsListenerConfig {
  hostname: string;
  port: number;
  /** Share the port with other listeners that set it too (SO_REUSEPORT: `--workers`). */
  reusePort?: boolean;
  cert: string;
  key: string;
  handshakeTimeoutMs: number;
  /** Most handshakes in progress at once; past it a new connection is dropped (default 64). */
  maxHandshakes?: number;
  onHandshakeError?(message: string, peer: { hostname: string; port: number }): void;
}

export class NodeTlsListener implements StreamListener<NodeSocketConn> {
  readonly addr: Deno.NetAddr;
  #server: tls.Server;
  #ready: NodeSocketConn[] = [];
  #waiting: ((conn: NodeSocketConn | null) => void)[] = [];
  #closed = false;

  private constructor(server: tls.Server, addr: Deno.NetAddr) {
    this.#server = server;
    this.addr = addr;
    server.on("secureConnection", (socket: tls.TLSSocket) => {
      socket.setNoDelay(true);
      const conn = new NodeSocketConn(socket as unknown as Socket, {
        hostname: socket.remoteAddress ?? "",
        port: socket.remotePort ?? 0,
      });
      const waiter = this.#waiting.shift();
      if (waiter) waiter(conn);
      else this.#ready.push(conn);
    });
  }

  /** Listens; a failure to bind is a ListenError, a certificate or key that cannot be used throws. */
  static async listen(config: TlsListenerConfig): Promise<NodeTlsListener> {
    const server = tls.createServer({
      cert: config.cert,
      key: config.key,
      handshakeTimeout: config.handshakeTimeoutMs,
    });
    // The client's address is read from the TCP socket as it arrives: once a handshake has
    // failed, the TLS socket may have forgotten it.
    const peers = new WeakMap<Socket, { hostname: string; port: number }>();
    const maxHandshakes = config.maxHandshakes ?? 64;
    let handshakes = 0;
    const finished = new WeakMap<Socket, () => void>();
    server.on("connection", (raw: Socket) => {
      const peer = { hostname: raw.remoteAddress ?? "", port: raw.remotePort ?? 0 };
      if (handshakes >= maxHandshakes) {
        config.onHandshakeError?.(
          `too many TLS handshakes in progress (${maxHandshakes}); dropped`,
          peer,
        );
        raw.destroy();
        return;
      }
      handshakes++;
      peers.set(raw, peer);
      let counted = true;
      const done = () => {
        if (counted) handshakes--;
        counted = false;
      };
      raw.once("close", done);
      finished.set(raw, done);
    });
    server.on("secureConnection", (socket: tls.TLSSocket) => {
      const parent = (socket as unknown as { _parent?: Socket })._parent;
      if (parent) finished.get(parent)?.();
    });
    server.on("tlsClientError", (error: Error, socket: tls.TLSSocket) => {
      const parent = (socket as unknown as { _parent?: Socket })._parent;
      config.onHandshakeError?.(
        error.message,
        (parent && peers.get(parent)) ?? {
          hostname: socket.remoteAddress ?? "",
          port: socket.remotePort ?? 0,
        },
      );
      socket.destroy();
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", (error) => reject(listenError(error, config.hostname, config.port)));
      const where = { port: config.port, host: config.hostname, reusePort: config.reusePort };
      server.listen(where, () => resolve());
    });
    const address = server.address() as { address: string; port: number };
    return new NodeTlsListener(server, {
      transport: "tcp",
      hostname: address.address,
      port: address.port,
    });
  }

  accept(): Promise<NodeSocketConn> {
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
    this.#server.close();
    for (const waiter of this.#waiting.splice(0)) waiter(null);
    for (const conn of this.#ready.splice(0)) conn.close();
  }
}

/** Longest a TLS handshake may take before the connection is dropped. */
export const TLS_HANDSHAKE_TIMEOUT_MS = 10_000;

/**
 * A server's TLS listener (fsd/1's, HTTPS's): the certificate checked
 * first, handshakes bounded by TLS_HANDSHAKE_TIMEOUT_MS, failures told to
 * `onHandshakeError`; a certificate or key that cannot be used is a TlsError.
 */
export async function listenTlsServer(
  where: { hostname: string; port: number; reusePort?: boolean },
  certified: TlsServerConfig,
  onHandshakeError: TlsListenerConfig["onHandshakeError"],
): Promise<NodeTlsListener> {
  try {
    certificateDer(certified.cert);
  } catch {
    throw new TlsError("cannot use the certificate: no PEM certificate found");
  }
  return await NodeTlsListener.listen({
    ...where,
    ...certified,
    handshakeTimeoutMs: TLS_HANDSHAKE_TIMEOUT_MS,
    onHandshakeError,
  }).catch((error) => {
    if (error instanceof ListenError) throw error;
    throw new TlsError(`cannot use the certificate and key: ${errorMessage(error)}`, {
      cause: error,
    });
  });
}
