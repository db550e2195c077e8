/**
 * A UDP relay that drops, duplicates and reorders datagrams, for testing
 * protocols over UDP (TFTP) under loss. Each client address and port gets
 * an upstream socket of its own; datagrams from the client go to the
 * target, and to wherever the target last answered from (a TFTP server
 * answers from a new port, its transfer ID); the target's answers go back
 * to the client from the relay's own port.
 *
 * Only the target may answer: an upstream socket takes datagrams from the
 * target's address alone (any port of it, for TFTP's transfer IDs), so a
 * third party cannot redirect a relayed client by writing to its port.
 */

import { bindUdp, type Endpoint, type UdpSocket } from "../net/udp.ts";
import { isLoopback, plainAddress } from "../net/ip.ts";
import { after, Deadline, type Timer } from "../timer.ts";

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
  /** Sees every datagram relayed (a capture file): `up` from the client, `down` from the target. */
  tap?: UdpRelayTap;
}

/** What a capture sees of a relay: each datagram, with both ends' real ports. */
export interface UdpRelayTap {
  datagram(direction: "up" | "down", client: Endpoint, target: Endpoint, bytes: Uint8Array): void;
}

export type UdpRelayEvent =
  | { event: "client"; id: number; address: string; port: number }
  | { event: "idle"; id: number; up: number; down: number; dropped: number }
  | { event: "stranger"; id: number; address: string; port: number };

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
  #held: { bytes: Uint8Array; timer: Timer } | undefined;
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
      this.#held = { bytes, timer: after(HOLD_MS, () => this.#release()) };
      return;
    }
    for (let i = 0; i < copies; i++) this.#send(bytes);
    this.#release();
  }

  #release(): void {
    const held = this.#held;
    if (!held) return;
    this.#held = undefined;
    held.timer.cancel();
    this.#send(held.bytes);
  }

  close(): void {
    this.#held?.timer.cancel();
    this.#held = undefined;
  }
}

interface Client {
  id: number;
  from: Endpoint;
  upstream: UdpSocket;
  /** Where the target last answered from: its request port, then its transfer ports. */
  target: Endpoint;
  up: FaultyPath;
  down: FaultyPath;
  counts: { up: number; down: number };
  strangers: number;
  /** Forgets the client when it has been silent for the idle time. */
  idle?: Deadline;
  reading?: Promise<void>;
}

/** Largest datagram read: the UDP maximum over IPv4. */
const MAX_DATAGRAM = 65507;

export class UdpRelay {
  readonly #socket: UdpSocket;
  readonly #config: UdpRelayConfig;
  /** The target's address as datagrams show it (a name resolved once). */
  readonly #targetAddress: string;
  readonly #clients = new Map<string, Client>();
  readonly #random: () => number;
  #nextId = 1;
  #closed = false;
  #receiving: Promise<void>;

  private constructor(socket: UdpSocket, config: UdpRelayConfig, targetAddress: string) {
    this.#socket = socket;
    this.#config = config;
    this.#targetAddress = targetAddress;
    this.#random = generator(config.seed ?? Math.floor(Math.random() * 0xffffffff));
    this.#receiving = this.#receiveFromClients();
  }

  static async start(config: UdpRelayConfig): Promise<UdpRelay> {
    const { lookup } = await import("node:dns/promises"); // loaded only when a name is looked up
    const targetAddress = plainAddress((await lookup(config.targetHost)).address);
    const socket = await bindUdp(config.hostname ?? "0.0.0.0", config.port);
    return new UdpRelay(socket, config, targetAddress);
  }

  get addr(): { hostname: string; port: number } {
    return this.#socket.local;
  }

  /** Datagrams dropped so far, both ways, by clients still known. */
  get dropped(): number {
    let n = 0;
    for (const client of this.#clients.values()) n += client.up.dropped + client.down.dropped;
    return n;
  }

  async #receiveFromClients(): Promise<void> {
    const buffer = new Uint8Array(MAX_DATAGRAM);
    while (!this.#closed) {
      let data: Uint8Array, from: Endpoint;
      try {
        [data, from] = await this.#socket.receive(buffer);
      } catch {
        if (this.#closed) return;
        continue; // an ICMP error for an earlier send
      }
      await this.#fromClient(data.slice(), from);
    }
  }

  async #fromClient(bytes: Uint8Array, from: Endpoint): Promise<void> {
    const key = `${from.hostname} ${from.port}`;
    let client = this.#clients.get(key);
    if (!client) {
      if (this.#clients.size >= MAX_CLIENTS || this.#closed) return;
      client = await this.#open(key, from).catch(() => undefined);
      if (!client) return;
    }
    this.#touch(key, client);
    client.counts.up++;
    this.#config.tap?.datagram("up", from, client.target, bytes);
    client.up.push(bytes);
  }

  async #open(key: string, from: Endpoint): Promise<Client> {
    const id = this.#nextId++;
    // Upstream sockets face the target only: on loopback when it is there.
    const target = { hostname: this.#targetAddress, port: this.#config.targetPort };
    const wildcard = target.hostname.includes(":") ? "::" : "0.0.0.0";
    const upstream = await bindUdp(isLoopback(target.hostname) ? target.hostname : wildcard, 0);
    const faults = this.#config.faults ?? {};
    const client: Client = {
      id,
      from,
      upstream,
      target,
      strangers: 0,
      counts: { up: 0, down: 0 },
      up: new FaultyPath(faults.up ?? {}, this.#random, (b) => {
        if (!this.#closed) upstream.send(b, client.target).catch(() => {});
      }),
      down: new FaultyPath(faults.down ?? {}, this.#random, (b) => {
        if (!this.#closed) this.#socket.send(b, from).catch(() => {});
      }),
    };
    client.reading = this.#receiveFromTarget(key, client);
    this.#clients.set(key, client);
    this.#config.log?.({ event: "client", id, address: from.hostname, port: from.port });
    return client;
  }

  async #receiveFromTarget(key: string, client: Client): Promise<void> {
    const buffer = new Uint8Array(MAX_DATAGRAM);
    for (;;) {
      let data: Uint8Array, source: Endpoint;
      try {
        [data, source] = await client.upstream.receive(buffer);
      } catch {
        if (this.#closed || !this.#clients.has(key)) return;
        continue;
      }
      if (plainAddress(source.hostname) !== this.#targetAddress) {
        // Not the target: never followed, never relayed; logged once per client.
        if (client.strangers++ === 0) {
          this.#config.log?.({
            event: "stranger",
            id: client.id,
            address: source.hostname,
            port: source.port,
          });
        }
        continue;
      }
      client.target = { hostname: this.#targetAddress, port: source.port };
      this.#touch(key, client);
      client.counts.down++;
      const bytes = data.slice();
      this.#config.tap?.datagram("down", client.from, client.target, bytes);
      client.down.push(bytes);
    }
  }

  #touch(key: string, client: Client): void {
    client.idle ??= new Deadline(() => this.#forget(key, client));
    client.idle.in(this.#config.idleMs ?? 30_000);
  }

  #forget(key: string, client: Client): void {
    this.#clients.delete(key);
    client.idle?.stop();
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

  async close(): Promise<void> {
    this.#closed = true;
    const clients = [...this.#clients];
    for (const [key, client] of clients) this.#forget(key, client);
    this.#socket.close();
    await this.#receiving;
    await Promise.all(clients.map(([, c]) => c.reading));
  }
}
