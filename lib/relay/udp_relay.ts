/**
 * A UDP relay that drops, duplicates and reorders datagrams, for testing
 * protocols over UDP (TFTP) under loss. Each client address and port gets
 * an upstream socket of its own; datagrams from the client go to the
 * target, and to wherever the target last answered from (a TFTP server
 * answers from a new port, its transfer ID); the target's answers go back
 * to the client from the relay's own port.
 */

import dgram from "node:dgram";
import { listenError } from "../net/listen.ts";

export interface UdpFaults {
  /** Probability (0..1) that a datagram is dropped. */
  drop?: number;
  /** Probability that a datagram is sent twice. */
  duplicate?: number;
  /** Probability that a datagram is held back and sent after the next one (or after 20 ms). */
  reorder?: number;
}

export interface UdpRelayConfig {
  port: number;
  hostname?: string;
  targetHost: string;
  targetPort: number;
  faults?: { up?: UdpFaults; down?: UdpFaults };
  /** Seed of the fault generator, for runs that repeat (default: random). */
  seed?: number;
  /** Forget a client after this long without traffic (default 30 s). */
  idleMs?: number;
  log?: (event: UdpRelayEvent) => void;
}

export type UdpRelayEvent =
  | { event: "client"; id: number; address: string; port: number }
  | { event: "idle"; id: number; up: number; down: number; dropped: number };

const MAX_CLIENTS = 1000;
const HOLD_MS = 20;

/** xorshift32: the same faults for the same seed. */
function generator(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x1_0000_0000;
  };
}

/** Applies faults to one direction's datagrams before `send`. */
class FaultyPath {
  readonly #faults: UdpFaults;
  readonly #random: () => number;
  readonly #send: (bytes: Uint8Array) => void;
  #held: { bytes: Uint8Array; timer: ReturnType<typeof setTimeout> } | undefined;
  dropped = 0;

  constructor(faults: UdpFaults, random: () => number, send: (bytes: Uint8Array) => void) {
    this.#faults = faults;
    this.#random = random;
    this.#send = send;
  }

  push(bytes: Uint8Array): void {
    const { drop = 0, duplicate = 0, reorder = 0 } = this.#faults;
    if (this.#random() < drop) {
      this.dropped++;
      return;
    }
    const copies = this.#random() < duplicate ? 2 : 1;
    if (!this.#held && this.#random() < reorder) {
      this.#held = { bytes, timer: setTimeout(() => this.#release(), HOLD_MS) };
      return;
    }
    for (let i = 0; i < copies; i++) this.#send(bytes);
    this.#release();
  }

  #release(): void {
    const held = this.#held;
    if (!held) return;
    this.#held = undefined;
    clearTimeout(held.timer);
    this.#send(held.bytes);
  }

  close(): void {
    if (this.#held) clearTimeout(this.#held.timer);
    this.#held = undefined;
  }
}

interface Client {
  id: number;
  upstream: dgram.Socket;
  /** Where the target last answered from: its request port, then its transfer ports. */
  target: { address: string; port: number };
  up: FaultyPath;
  down: FaultyPath;
  counts: { up: number; down: number };
  idle?: ReturnType<typeof setTimeout>;
}

export class UdpRelay {
  readonly #socket: dgram.Socket;
  readonly #config: UdpRelayConfig;
  readonly #clients = new Map<string, Client>();
  readonly #random: () => number;
  #nextId = 1;
  #closed = false;

  private constructor(socket: dgram.Socket, config: UdpRelayConfig) {
    this.#socket = socket;
    this.#config = config;
    this.#random = generator(config.seed ?? Math.floor(Math.random() * 0xffffffff));
    socket.on(
      "message",
      (bytes: Uint8Array, from: dgram.RemoteInfo) => this.#fromClient(bytes, from),
    );
    socket.on("error", () => {});
  }

  static async start(config: UdpRelayConfig): Promise<UdpRelay> {
    const hostname = config.hostname ?? "0.0.0.0";
    const socket = dgram.createSocket(hostname.includes(":") ? "udp6" : "udp4");
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once("error", reject);
        socket.bind(config.port, hostname, () => {
          socket.off("error", reject);
          resolve();
        });
      });
    } catch (error) {
      socket.close();
      throw listenError(error, hostname, config.port);
    }
    return new UdpRelay(socket, config);
  }

  get addr(): { hostname: string; port: number } {
    const address = this.#socket.address();
    return { hostname: address.address, port: address.port };
  }

  /** Datagrams dropped so far, both ways, by clients still known. */
  get dropped(): number {
    let n = 0;
    for (const client of this.#clients.values()) n += client.up.dropped + client.down.dropped;
    return n;
  }

  #fromClient(bytes: Uint8Array, from: dgram.RemoteInfo): void {
    const key = `${from.address} ${from.port}`;
    let client = this.#clients.get(key);
    if (!client) {
      if (this.#clients.size >= MAX_CLIENTS || this.#closed) return;
      client = this.#open(key, from);
    }
    this.#touch(key, client);
    client.counts.up++;
    client.up.push(bytes);
  }

  #open(key: string, from: dgram.RemoteInfo): Client {
    const id = this.#nextId++;
    const upstream = dgram.createSocket(this.#config.targetHost.includes(":") ? "udp6" : "udp4");
    upstream.on("error", () => {});
    const target = { address: this.#config.targetHost, port: this.#config.targetPort };
    const faults = this.#config.faults ?? {};
    const client: Client = {
      id,
      upstream,
      target,
      counts: { up: 0, down: 0 },
      up: new FaultyPath(faults.up ?? {}, this.#random, (b) => {
        if (!this.#closed) upstream.send(b, client.target.port, client.target.address);
      }),
      down: new FaultyPath(faults.down ?? {}, this.#random, (b) => {
        if (!this.#closed) this.#socket.send(b, from.port, from.address);
      }),
    };
    upstream.on("message", (bytes: Uint8Array, source: dgram.RemoteInfo) => {
      client.target = { address: source.address, port: source.port };
      this.#touch(key, client);
      client.counts.down++;
      client.down.push(bytes);
    });
    this.#clients.set(key, client);
    this.#config.log?.({ event: "client", id, address: from.address, port: from.port });
    return client;
  }

  #touch(key: string, client: Client): void {
    clearTimeout(client.idle);
    client.idle = setTimeout(() => this.#forget(key, client), this.#config.idleMs ?? 30_000);
  }

  #forget(key: string, client: Client): void {
    this.#clients.delete(key);
    clearTimeout(client.idle);
    client.up.close();
    client.down.close();
    client.upstream.close();
    this.#config.log?.({
      event: "idle",
      id: client.id,
      up: client.counts.up,
      down: client.counts.down,
      dropped: client.up.dropped + client.down.dropped,
    });
  }

  close(): Promise<void> {
    this.#closed = true;
    for (const [key, client] of [...this.#clients]) this.#forget(key, client);
    return new Promise((resolve) => this.#socket.close(() => resolve()));
  }
}
