/**
 * A TCP relay between clients and one target, both ways, with faults.
 *
 * Each direction is a pipe that reads with `read()` and writes with
 * `write()`, so backpressure holds (a slow side slows the other) and
 * half-close works: when one side finishes sending, the other side's write
 * half is shut with `closeWrite()` and the rest still flows. Faults are
 * named as toxiproxy names them and apply per direction: "up" is client to
 * target, "down" is target to client.
 */

import { AcceptLoop } from "../net/accept_loop.ts";
import { listenTcp } from "../net/listen.ts";
import { ConnectionLimits } from "../net/limits.ts";
import { IdleTimer } from "../net/idle.ts";

import type { Faults } from "./faults.ts";
import { Pipe } from "./pipe.ts";
import { closeQuietly } from "../bytes/source_sink.ts";
import { after, type Timer } from "../timer.ts";

export type Direction = "up" | "down";

export type RelayEvent =
  | { event: "connection"; id: number; address: string; port: number }
  | { event: "refused"; id: number; reason: string }
  | { event: "connect-failed"; id: number; message: string }
  | {
    event: "close";
    id: number;
    /** Bytes passed on in each direction. */
    up: number;
    down: number;
    /** Socket writes made in each direction (slices show here). */
    upWrites: number;
    downWrites: number;
    reason: string;
  };

export interface RelayOptions {
  /** Port to listen on (0: any). */
  port: number;
  /** Address to listen on (default 0.0.0.0). */
  hostname?: string;
  targetHost: string;
  targetPort: number;
  faults?: Partial<Record<Direction, Faults>>;
  /** Called with every chunk as it arrives, before any fault; `chunk` is only valid during the call. */
  onData?: (id: number, direction: Direction, chunk: Uint8Array) => void;
  log?: (event: RelayEvent) => void;
  /** Sees what the relay passes on: for recording connections (pcap). */
  tap?: RelayTap;
  /** Most client connections at once, and from one address (RELAY_DEFAULTS; 0: no limit). */
  maxClients?: number;
  maxPerIp?: number;
  /** A connection that moves no byte either way for this long is closed (0: never). */
  idleTimeoutMs?: number;
}

/** The relay's limits unless told otherwise. */
export const RELAY_DEFAULTS = { maxClients: 1000, maxPerIp: 100, idleTimeoutMs: 300_000 };

/** What a relay does to each connection, in order, as it does it. */
export interface RelayTap {
  /** Both sides are connected; data starts to flow. */
  open(id: number): void;
  /** `chunk` is being written on in `direction` (after the faults); only valid during the call. */
  write(id: number, direction: Direction, chunk: Uint8Array): void;
  /** The end of the stream in `direction` was passed on (half-close). */
  end(id: number, direction: Direction): void;
  /** The connection is closed. */
  close(id: number): void;
}

export class Relay {
  readonly addr: Deno.NetAddr;
  #accepting: AcceptLoop;
  #options: RelayOptions;
  #connections = new Set<Connection>();
  /**
   * A target that is the very address a client reached us on is refused at
   * once. Through a name or another address of this host, a loop shows when
   * one of our own connections to the target arrives as a client: the local
   * ends of those, and the remote ends of the clients, meet (seen by
   * whichever of the two gets there second; a backstop, a few connections
   * late).
   */
  #outgoing = new Set<string>();
  #clients = new Set<string>();
  #limits: ConnectionLimits;

  private constructor(listener: Deno.TcpListener, options: RelayOptions) {
    this.#options = options;
    this.#limits = new ConnectionLimits({
      maxClients: options.maxClients ?? RELAY_DEFAULTS.maxClients,
      maxPerIp: options.maxPerIp ?? RELAY_DEFAULTS.maxPerIp,
    });
    this.addr = listener.addr;
    this.#accepting = new AcceptLoop(listener, { handle: (client, id) => this.#relay(client, id) });
  }

  static start(options: RelayOptions): Relay {
    return new Relay(listenTcp({ hostname: options.hostname, port: options.port }), options);
  }

  /** Stops accepting and aborts every connection. */
  async close(): Promise<void> {
    this.#accepting.stop();
    for (const connection of this.#connections) connection.abort("proxy closed");
    await this.#accepting.settled();
  }

  async #relay(client: Deno.TcpConn, id: number): Promise<void> {
    const log = this.#options.log ?? (() => {});
    const peer = client.remoteAddr as Deno.NetAddr;
    log({ event: "connection", id, address: peer.hostname, port: peer.port });
    const admission = this.#limits.admit(peer.hostname);
    if (!admission.admitted) {
      log({ event: "refused", id, reason: admission.reason });
      client.close();
      return;
    }
    try {
      await this.#admitted(client, peer, id, log);
    } finally {
      this.#limits.release(peer.hostname);
    }
  }

  async #admitted(
    client: Deno.TcpConn,
    peer: Deno.NetAddr,
    id: number,
    log: (event: RelayEvent) => void,
  ): Promise<void> {
    const here = client.localAddr as Deno.NetAddr;
    const { targetHost, targetPort } = this.#options;
    const toHere = targetPort === here.port && targetHost === here.hostname;
    // Keyed by both ends: Linux lets one local port serve connections to different peers,
    // so a port alone could match a stranger's connection.
    const incoming = connectionKey(peer, here);
    if (toHere || this.#outgoing.has(incoming)) {
      log({ event: "connect-failed", id, message: SELF });
      client.close();
      return;
    }
    this.#clients.add(incoming);
    try {
      await this.#relayTo(client, id, log);
    } finally {
      this.#clients.delete(incoming);
    }
  }

  async #relayTo(client: Deno.TcpConn, id: number, log: (event: RelayEvent) => void) {
    let target: Deno.TcpConn;
    try {
      target = await Deno.connect({
        hostname: this.#options.targetHost,
        port: this.#options.targetPort,
      });
    } catch (error) {
      log({ event: "connect-failed", id, message: (error as Error).message });
      client.close();
      return;
    }
    const local = connectionKey(
      target.localAddr as Deno.NetAddr,
      target.remoteAddr as Deno.NetAddr,
    );
    if (this.#clients.has(local)) {
      log({ event: "connect-failed", id, message: SELF });
      target.close();
      client.close();
      return;
    }
    this.#outgoing.add(local);
    this.#options.tap?.open(id);
    const connection = new Connection(id, client, target, this.#options);
    this.#connections.add(connection);
    if (this.#accepting.stopping) connection.abort("proxy closed");
    const reason = await connection.run();
    this.#outgoing.delete(local);
    this.#options.tap?.close(id);
    this.#connections.delete(connection);
    const { up, down } = connection;
    log({
      event: "close",
      id,
      up: up.bytes,
      down: down.bytes,
      upWrites: up.writes,
      downWrites: down.writes,
      reason,
    });
  }
}

const SELF = "the target is this proxy itself";

function endpoint(addr: Deno.NetAddr): string {
  return `${addr.hostname} ${addr.port}`;
}

/** A TCP connection by both of its ends, as seen from the `from` side. */
function connectionKey(from: Deno.NetAddr, to: Deno.NetAddr): string {
  return `${endpoint(from)} > ${endpoint(to)}`;
}

/** One client and its target connection. */
class Connection {
  readonly up: Pipe;
  readonly down: Pipe;
  #client: Deno.TcpConn;
  #target: Deno.TcpConn;
  #closed = false;
  #reason = "done";
  #timers: Timer[] = [];
  #idle: IdleTimer;

  constructor(
    readonly id: number,
    client: Deno.TcpConn,
    target: Deno.TcpConn,
    options: RelayOptions,
  ) {
    this.#client = client;
    this.#target = target;
    for (const conn of [client, target]) conn.setNoDelay(true);
    const faults = options.faults ?? {};
    const trace = options.onData;
    const tap = options.tap;
    const idleMs = options.idleTimeoutMs ?? RELAY_DEFAULTS.idleTimeoutMs;
    this.#idle = new IdleTimer(idleMs, () => this.abort(`idle for ${idleMs / 1000} s`));
    const idle = this.#idle;
    const ends = (direction: Direction) => ({
      onData: (c: Uint8Array) => {
        idle.touch();
        trace?.(id, direction, c);
      },
      onWrite: tap && ((c: Uint8Array) => tap.write(id, direction, c)),
      onEnd: tap && (() => tap.end(id, direction)),
    });
    this.up = new Pipe(client, target, faults.up ?? {}, this, ends("up"));
    this.down = new Pipe(target, client, faults.down ?? {}, this, ends("down"));
    for (const toxic of [...this.up.toxics, ...this.down.toxics]) {
      if (toxic.abortAfterMs !== undefined) this.#after(toxic.abortAfterMs, toxic.name);
    }
  }

  async run(): Promise<string> {
    await Promise.all([this.up.run(), this.down.run()]);
    this.abort("done");
    this.#idle.stop();
    for (const timer of this.#timers) timer.cancel();
    return this.#reason;
  }

  /** Closes both sides at once; pending reads and writes end. */
  abort(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#reason = reason;
    for (const conn of [this.#client, this.#target]) {
      closeQuietly(conn);
    }
  }

  #after(ms: number, reason: string): void {
    this.#timers.push(after(ms, () => this.abort(reason)));
  }
}
