/**
 * The fsd/1 file server: serves one directory to many TCP clients at once.
 *
 * The server owns the listening socket, the limits and shutdown; each
 * connection is a `Session` of its own, whose failures (violations,
 * timeouts, bugs, broken sockets) end that connection only. Limits refuse
 * with ERR before any data moves.
 */

import { errorMessage } from "../bytes/mod.ts";
import { AcceptLoop } from "../net/accept_loop.ts";
import type { ProbeBoard } from "../net/accept_watchdog.ts";
import { ConnectionLimits } from "../net/limits.ts";
import type { Limits } from "../net/shared_limits.ts";
import { DEFAULT_HOST } from "../net/listen.ts";
import { isLoopback } from "../net/ip.ts";
import type { TlsServerConfig } from "../net/tls.ts";
import { listenServer, TlsServerConn } from "../net/tls_listener.ts";
import type { StreamConn, StreamListener } from "../net/stream_conn.ts";
import type { AccountLine } from "../auth/accounts.ts";
import { Authenticator } from "../auth/authenticator.ts";
import type { LoginChecker } from "./remote_login.ts";
import type { LoginPolicy } from "./login.ts";
import { type ProxyProtocolConfig, resolvePeer } from "../net/proxied.ts";
import type { Endpoint } from "../net/proxy_header.ts";
import { ErrorCode } from "../store/errors.ts";
import { accessFor } from "../store/access.ts";
import { DEFAULT_MAX_UPLOAD_BYTES, FileStore } from "../store/file_store.ts";
import type { ServerEvent } from "../store/log.ts";
import { BLOCK_SIZE } from "./codec.ts";
import { type ConnTap, PacketConn } from "./packet_conn.ts";
import { Session, type SessionContext } from "./session.ts";
import { after, type Timer } from "../timer.ts";

export interface ServerConfig {
  /** The directory to serve. */
  root: string;
  /** TCP port; 0 lets the system choose. */
  port: number;
  /** Address to listen on (default 0.0.0.0). */
  hostname?: string;
  /** Close a connection after this long with nothing from the client (default 60 s). */
  idleTimeoutMs?: number;
  /** A packet whose first byte arrived must be whole within this long (default 10 s; 0: no limit). */
  requestTimeoutMs?: number;
  /** With accounts, no anonymous access: close a connection not logged in after this long (default 30 s; 0: never). */
  loginGraceMs?: number;
  /** During a transfer, close a connection moving fewer bytes per second, over each requestTimeoutMs (default 100; 0: no floor). */
  minRate?: number;
  /** Who the greeting says this is (default: the host name, or "fsd" if that cannot be read). */
  name?: string;
  /** Most connections served at once; more are refused with ERR 0 (default 1000; 0: no limit). */
  maxClients?: number;
  /** Most connections from one address at once (default 100; 0: no limit). */
  maxPerIp?: number;
  /** Largest upload in bytes; a larger one ends with ERR 3 (default 8 GiB; 0: no limit). */
  maxUploadBytes?: number;
  /** Refuse every WRQ with ERR 2, and touch nothing on disk. */
  readOnly?: boolean;
  /** Speak only fsd/1: OPT is an unknown opcode (ERR 4), as in a server without the extension. */
  fsd1Only?: boolean;
  /** Expect a PROXY protocol header on every connection, only from these proxies. */
  proxyProtocol?: ProxyProtocolConfig;
  /** Share the port with other servers listening with it too (`--workers`; Linux). */
  reusePort?: boolean;
  /** With reusePort: the board their TLS listeners' watchdogs share (accept_watchdog.ts). */
  probes?: ProbeBoard;
  /** Limits kept elsewhere (a coordinator of workers), instead of maxClients and maxPerIp here. */
  limits?: Limits;
  /** Connection ids in the log: first, first + step, ... (default 1, 2, ...). */
  connectionIds?: { first: number; step: number };
  /** Where events go (default: nowhere). */
  log?: (event: ServerEvent) => void;
  /** Serve over TLS with this certificate chain and key (PEM). */
  tls?: TlsServerConfig;
  /** Accounts: only clients that log in are served (docs/PROTOCOL.md, "Login"). */
  accounts?: AccountsConfig;
  /** Sees the bytes of connection `id` (the live page). */
  tap?: (id: number) => ConnTap;
}

/** A server's accounts and how it takes logins. */
export interface AccountsConfig {
  /** An Authenticator; in a worker of `--workers`, the parent's, asked over a channel. */
  authenticator: LoginChecker;
  /** Clients without an account may download and list all of DIR but the homes. */
  anonymousRead?: boolean;
  /** A directory directly under DIR that everyone reads, anonymous clients too (lib/store/access.ts). */
  public?: string;
  /** Take logins in plain text (no TLS) from addresses other than loopback too. */
  allowPlaintextLogin?: boolean;
  /**
   * Most connections at once that must log in and have not yet, in all and
   * from one address (default 64 and 8, as OpenSSH's MaxStartups); past
   * them a connection is refused with ERR 0 before its greeting.
   */
  maxUnauthenticated?: number;
  maxUnauthenticatedPerIp?: number;
}

export const SERVER_DEFAULTS = {
  idleTimeoutMs: 60_000,
  requestTimeoutMs: 10_000,
  loginGraceMs: 30_000,
  minRate: 100,
  maxClients: 1000,
  maxPerIp: 100,
  maxUploadBytes: DEFAULT_MAX_UPLOAD_BYTES,
} as const;

const encoder = new TextEncoder();

/** A running server; `shutdown()` stops it gracefully, `close()` at once. */
export class FileServer {
  readonly addr: Deno.NetAddr;
  readonly root: string;
  #accepting: AcceptLoop<StreamConn>;
  #limits: Limits;
  #context: SessionContext;
  /** Connections that must log in and have not yet (MaxStartups), with accounts and no anonymous reads. */
  #loginWaiting: ConnectionLimits | undefined;
  #idleTimeoutMs: number;
  #requestTimeoutMs: number;
  #proxyProtocol: ProxyProtocolConfig | undefined;
  #sessions = new Set<Session>();
  #graceTimer: Timer | undefined;
  #tap: ((id: number) => ConnTap) | undefined;

  private constructor(
    listener: StreamListener & { readonly addr: Deno.NetAddr },
    store: FileStore,
    config: ServerConfig,
    limits: Limits,
  ) {
    this.addr = listener.addr;
    this.root = store.root;
    this.#idleTimeoutMs = config.idleTimeoutMs ?? SERVER_DEFAULTS.idleTimeoutMs;
    this.#requestTimeoutMs = config.requestTimeoutMs ?? SERVER_DEFAULTS.requestTimeoutMs;
    this.#proxyProtocol = config.proxyProtocol;
    this.#tap = config.tap;
    this.#limits = limits;
    const ids = config.connectionIds ?? { first: 1, step: 1 };
    const log = config.log ?? (() => {});
    this.#context = {
      store,
      access: accessFor(config.accounts),
      greeting: greeting(config.name ?? hostName()),
      fsd1Only: config.fsd1Only ?? false,
      log,
      stopping: () => this.#accepting.stopping,
      login: config.accounts && loginPolicy(config.accounts, config.tls !== undefined),
      loginGraceMs: mustLogIn(config.accounts)
        ? config.loginGraceMs ?? SERVER_DEFAULTS.loginGraceMs
        : 0,
      minRate: {
        bytesPerSecond: config.minRate ?? SERVER_DEFAULTS.minRate,
        windowMs: rateWindow(config),
      },
    };
    const accounts = config.accounts;
    if (mustLogIn(accounts)) {
      this.#loginWaiting = new ConnectionLimits({
        maxClients: accounts.maxUnauthenticated ?? 64,
        maxPerIp: accounts.maxUnauthenticatedPerIp ?? 8,
      });
    }

    this.#accepting = new AcceptLoop(listener, {
      handle: (conn, n) => this.#admit(conn, ids.first + (n - 1) * ids.step),
      onAcceptError: (error) => log({ event: "accept-error", message: errorMessage(error) }),
    });
  }

  /**
   * Checks the directory (and, when it is writable, that it keeps the
   * shared-directory rules: probeSharedDir), removes uploads an earlier run
   * left unfinished, binds the port and starts serving.
   */
  static async start(config: ServerConfig): Promise<FileServer> {
    const store = await FileStore.open(config);
    const writable = !store.readOnly && await store.writable();
    if (!store.readOnly && !writable) {
      config.log?.({
        event: "warning",
        message:
          `${store.root} is not writable: uploads will fail (serve it with --read-only to refuse them)`,
      });
    }
    // What sharing the directory relies on, checked before anything is written or served.
    const missing = writable ? await store.sharedDirProblem() : undefined;
    if (missing) throw new Deno.errors.NotSupported(`cannot serve ${store.root}: ${missing}`);
    const removed = await store.removeStaleStaging();
    if (removed > 0) config.log?.({ event: "cleanup", removed, directory: store.root });
    const where = {
      hostname: config.hostname ?? DEFAULT_HOST,
      port: config.port,
      reusePort: config.reusePort,
      probes: config.probes,
    };
    if (config.tls && config.proxyProtocol) {
      throw new Error(
        "the PROXY protocol and TLS cannot be combined: the header would precede TLS",
      );
    }
    const limits = config.limits ?? new ConnectionLimits({
      maxClients: config.maxClients ?? SERVER_DEFAULTS.maxClients,
      maxPerIp: config.maxPerIp ?? SERVER_DEFAULTS.maxPerIp,
    });
    const listener = await listenServer(where, config.tls, limits, config.log);
    return new FileServer(listener, store, config, limits);
  }

  /** Connections being served right now. */
  get connections(): number {
    return this.#sessions.size;
  }

  /**
   * Stops accepting and closes idle connections at once; connections in the
   * middle of a request may finish it within `graceMs`, then everything is
   * closed. Unfinished uploads are discarded either way.
   */
  async shutdown(graceMs: number): Promise<void> {
    if (!this.#accepting.stopping) {
      this.#accepting.stop();
      const busy = [...this.#sessions].filter((s) => s.busy);
      this.#context.log({ event: "shutdown", graceMs, connections: busy.length });
      for (const session of this.#sessions) if (!session.busy) session.close();
      this.#graceTimer = after(graceMs, () => this.#closeAll());
    }
    await this.#settle();
  }

  /** Stops accepting, closes every connection and waits for their handlers. */
  async close(): Promise<void> {
    this.#accepting.stop();
    this.#closeAll();
    await this.#settle();
  }

  /** Ends every connection; one in the middle of a request hears ERR 0 "server shutting down". */
  #closeAll(): void {
    for (const session of this.#sessions) void session.cut("server shutting down");
  }

  async #settle(): Promise<void> {
    await this.#accepting.settled();
    this.#graceTimer?.cancel();
  }

  /** Serves the connection if the limits allow it, else refuses it. */
  async #admit(raw: StreamConn, id: number): Promise<void> {
    // Behind a proxy, the client its header names counts for the limits and the logs.
    const peer = await resolvePeer(raw, this.#proxyProtocol);
    if (!peer.ok) return await this.#reject(raw, id, peer.reason);
    const { client, proxy } = peer;
    // A TLS connection was admitted when it arrived: its handshake held the slot.
    const held = raw instanceof TlsServerConn ? raw.admission : undefined;
    // A directory that is no longer the one served (unmounted) refuses everyone, health checks too.
    const gone = await this.#context.store.rootChanged();
    if (gone) {
      if (held?.admitted) this.#limits.release(client.hostname);
      return await this.#reject(raw, id, gone, client);
    }
    const admission = held ?? await this.#limits.admit(client.hostname);
    if (!admission.admitted) return await this.#reject(raw, id, admission.reason, client);
    const waiting = this.#loginWaiting?.admit(client.hostname);
    if (waiting && !waiting.admitted) {
      this.#limits.release(client.hostname);
      return await this.#reject(
        raw,
        id,
        `try later: too many clients waiting to log in (${waiting.reason})`,
        client,
      );
    }
    let counted = waiting !== undefined;
    const loggedIn = () => {
      if (counted) this.#loginWaiting!.release(client.hostname);
      counted = false;
    };
    try {
      const conn = new PacketConn(raw, {
        timeoutMs: this.#idleTimeoutMs,
        requestTimeoutMs: this.#requestTimeoutMs,
        tap: this.#tap?.(id),
      });
      const session = new Session(id, conn, { ...this.#context, loggedIn });
      this.#sessions.add(session);
      try {
        await session.run(client, proxy);
      } finally {
        this.#sessions.delete(session);
      }
    } finally {
      loggedIn();
      this.#limits.release(client.hostname);
    }
  }

  /** Replaces the accounts (the file reread on SIGHUP); logins from now on use them. */
  async replaceAccounts(lines: AccountLine[]): Promise<void> {
    const authenticator = this.#context.login?.authenticator;
    if (authenticator instanceof Authenticator) await authenticator.replace(lines);
  }

  /** Over a limit, or not through a trusted proxy: ERR 0 instead of the greeting, then close. */
  async #reject(
    raw: StreamConn,
    id: number,
    message: string,
    peer: Endpoint = raw.remoteAddr as Deno.NetAddr,
  ): Promise<void> {
    this.#context.log({
      event: "rejected",
      id,
      address: peer.hostname,
      port: peer.port,
      code: ErrorCode.OTHER,
      message,
    });
    const conn = new PacketConn(raw, { timeoutMs: 1000 });
    await conn.sendError(ErrorCode.OTHER, message);
    conn.close();
  }
}

/** With accounts and neither anonymous reads nor a public directory: every client must log in. */
function mustLogIn(accounts: AccountsConfig | undefined): accounts is AccountsConfig {
  return accounts !== undefined && !accounts.anonymousRead && accounts.public === undefined;
}

/** The minimum rate is measured over each request timeout (10 s if that is off). */
function rateWindow(config: ServerConfig): number {
  return config.requestTimeoutMs || SERVER_DEFAULTS.requestTimeoutMs;
}

/** The access model of a server with `accounts` (or without any): lib/store's, re-exported. */
export { accessFor };

/** Logins as the accounts say; without TLS, in plain text from loopback only unless allowed. */
function loginPolicy(accounts: AccountsConfig, tls: boolean): LoginPolicy {
  const plaintextAnywhere = tls || (accounts.allowPlaintextLogin ?? false);
  return {
    authenticator: accounts.authenticator,
    refuseFrom: plaintextAnywhere
      ? undefined
      : (address) =>
        isLoopback(address)
          ? undefined
          : "login refused: this server takes logins without TLS only from loopback",
  };
}

function greeting(name: string): Uint8Array {
  let bytes = encoder.encode(`Hello from ${name}'s fileserver`);
  // One DAT block, shorter than a full one, so the greeting is a single packet.
  while (bytes.length >= BLOCK_SIZE) {
    name = name.slice(0, -1);
    bytes = encoder.encode(`Hello from ${name}'s fileserver`);
  }
  return bytes;
}

/** The machine's name, or "fsd" without --allow-sys=hostname: asked first, so that Deno never prompts. */
function hostName(): string {
  if (Deno.permissions.querySync({ name: "sys", kind: "hostname" }).state !== "granted") {
    return "fsd";
  }
  try {
    return Deno.hostname();
  } catch {
    return "fsd";
  }
}
