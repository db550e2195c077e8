/**
 * A UDP relay that drops, duplicates and reorders datagrams, for testing
 * protocols over UDP (TFTP) under loss. Each client address and port gets
 * an upstream socket of its own. What the client sends to the relay's port
 * goes to the target's port; the target's answers from that port come back
 * from the relay's port. A TFTP server answers a request from a new port
 * (its transfer ID): the relay answers from a new port of its own too, one
 * per port of the target's (its mirror), and what the client sends there
 * goes to that port of the target's. So every request, a session's second
 * `get` too, goes to the target's request port, and every acknowledgement
 * to the transfer it belongs to, as without the relay.
 *
 * Only the target may answer: an upstream socket takes datagrams from the
 * target's address alone (any port of it, for TFTP's transfer IDs), and a
 * mirror from its client's address and port alone, so a third party can
 * neither redirect a relayed client nor write into its transfer.
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

/** Applies faults to one direction's datagrams, each with where it goes (`to`), before `send`. */
class FaultyPath<To> {
  readonly #faults: UdpFaults;
  readonly #random: () => number;
  readonly #send: (bytes: Uint8Array, to: To) => void;
  #held: { bytes: Uint8Array; to: To; timer: Timer } | undefined;
  dropped = 0;

  constructor(
    faults: UdpFaults,
    random: () => number,
    send: (bytes: Uint8Array, to: To) => void,
  ) {
    this.#faults = faults;
    this.#random = random;
    this.#send = send;
  }

  push(bytes: Uint8Array, to: To): void {
    const { drop = 0, duplicate = 0, reorder = 0 } = this.#faults;
    if (this.#random() < drop) {
      this.dropped++;
      return;
    }
    const copies = this.#random() < duplicate ? 2 : 1;
    if (!this.#held && this.#random() < reorder) {
      this.#held = { bytes, to, timer: after(HOLD_MS, () => this.#release()) };
      return;
    }
    for (let i = 0; i < copies; i++) this.#send(bytes, to);
    this.#release();
  }

  #release(): void {
    const held = this.#held;
    if (!held) return;
    this.#held = undefined;
    held.timer.cancel();
    this.#send(held.bytes, held.to);
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
  /**
   * The target's transfer ports (other than its request port), each with its
   * mirror: a socket of the relay's standing in for it to this client; the latest last.
   */
  mirrors: Map<number, UdpSocket>;
  up: FaultyPath<Endpoint>;
  /** Down to the client, from the relay's port or a mirror's. */
  down: FaultyPath<UdpSocket>;
  counts: { up: number; down: number };
  strangers: number;
  /** Forgets the client when it has been silent for the idle time. */
  idle?: Deadline;
  reading?: Promise<void>;
}

/** Largest datagram read: the UDP maximum over IPv4. */
const MAX_DATAGRAM = 65507;
/**
 * Mirrors a client keeps: the transfer running and the one before it (whose
 * last retransmissions may still come); a newer port closes the oldest.
 */
const MAX_MIRRORS = 2;

/**
 * Reads `socket` into one reused buffer until `stopped()`, handing each
 * datagram (a view of that buffer) to `take`. A failed receive is the socket
 * closed (then `stopped()` says so) or an ICMP error for an earlier send.
 */
async function eachDatagram(
  socket: UdpSocket,
  stopped: () => boolean,
  take: (data: Uint8Array, from: Endpoint) => unknown,
): Promise<void> {
  const buffer = new Uint8Array(MAX_DATAGRAM);
  while (!stopped()) {
    let data: Uint8Array, from: Endpoint;
    try {
      [data, from] = await socket.receive(buffer);
    } catch {
      continue;
    }
    await take(data, from);
  }
}

export class UdpRelay {
  readonly #socket: UdpSocket;
  readonly #config: UdpRelayConfig;
  /** The target's address as datagrams show it (a name resolved once). */
  readonly #targetAddress: string;
  readonly #clients = new Map<string, Client>();
  /** Every mirror's receive loop still running (a replaced mirror's ends on its own). */
  readonly #mirrorReadings = new Set<Promise<void>>();
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

  #receiveFromClients(): Promise<void> {
    return eachDatagram(
      this.#socket,
      () => this.#closed,
      (data, from) => this.#fromClient(data.slice(), from),
    );
  }

  async #fromClient(bytes: Uint8Array, from: Endpoint): Promise<void> {
    const key = `${from.hostname} ${from.port}`;
    let client = this.#clients.get(key);
    if (!client) {
      if (this.#clients.size >= MAX_CLIENTS || this.#closed) return;
      client = await this.#open(key, from).catch(() => undefined);
      if (!client) return;
    }
    this.#toTarget(key, client, bytes, this.#config.targetPort);
  }

  /** A datagram of the client's, to the target's `port`. */
  #toTarget(key: string, client: Client, bytes: Uint8Array, port: number): void {
    this.#touch(key, client);
    client.counts.up++;
    const to = { hostname: this.#targetAddress, port };
    this.#config.tap?.datagram("up", client.from, to, bytes);
    client.up.push(bytes, to);
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
      mirrors: new Map(),
      strangers: 0,
      counts: { up: 0, down: 0 },
      up: new FaultyPath<Endpoint>(faults.up ?? {}, this.#random, (b, to) => {
        if (!this.#closed) upstream.send(b, to).catch(() => {});
      }),
      down: new FaultyPath<UdpSocket>(faults.down ?? {}, this.#random, (b, socket) => {
        if (!this.#closed && !socket.closed) socket.send(b, from).catch(() => {});
      }),
    };
    this.#clients.set(key, client);
    client.reading = this.#receiveFromTarget(key, client);
    this.#config.log?.({ event: "client", id, address: from.hostname, port: from.port });
    return client;
  }

  #receiveFromTarget(key: string, client: Client): Promise<void> {
    return eachDatagram(
      client.upstream,
      () => this.#closed || this.#clients.get(key) !== client,
      (data, source) => this.#fromTarget(key, client, data, source),
    );
  }

  async #fromTarget(key: string, client: Client, data: Uint8Array, source: Endpoint) {
    if (plainAddress(source.hostname) !== this.#targetAddress) {
      this.#stranger(client, source); // not the target: never relayed
      return;
    }
    const bytes = data.slice();
    const port = source.port;
    const from = port === this.#config.targetPort
      ? this.#socket
      : await this.#mirror(key, client, port).catch(() => undefined);
    if (!from || this.#clients.get(key) !== client) return;
    this.#touch(key, client);
    client.counts.down++;
    this.#config.tap?.datagram("down", client.from, { hostname: this.#targetAddress, port }, bytes);
    client.down.push(bytes, from);
  }

  /** The client's mirror of the target's `port`: the one it has (now the latest), or a new one. */
  async #mirror(key: string, client: Client, port: number): Promise<UdpSocket> {
    const known = client.mirrors.get(port);
    if (known) {
      client.mirrors.delete(port);
      client.mirrors.set(port, known);
      return known;
    }
    const socket = await bindUdp(this.#socket.local.hostname, 0);
    if (this.#closed || this.#clients.get(key) !== client) {
      socket.close();
      throw new Error("relay closed");
    }
    for (const [oldPort, old] of client.mirrors) {
      if (client.mirrors.size < MAX_MIRRORS) break;
      client.mirrors.delete(oldPort);
      old.close();
    }
    const reading = this.#receiveAtMirror(key, client, socket, port);
    this.#mirrorReadings.add(reading);
    reading.finally(() => this.#mirrorReadings.delete(reading)).catch(() => {});
    client.mirrors.set(port, socket);
    return socket;
  }

  /** What arrives at a mirror from its client goes to the target's `port`; from anyone else, nowhere. */
  #receiveAtMirror(key: string, client: Client, socket: UdpSocket, port: number): Promise<void> {
    return eachDatagram(socket, () => socket.closed, (data, source) => {
      if (
        plainAddress(source.hostname) !== plainAddress(client.from.hostname) ||
        source.port !== client.from.port
      ) {
        this.#stranger(client, source);
      } else {
        this.#toTarget(key, client, data.slice(), port);
      }
    });
  }

  /** A datagram from neither the target nor the client: dropped, logged once per client. */
  #stranger(client: Client, source: Endpoint): void {
    if (client.strangers++ > 0) return;
    this.#config.log?.({
      event: "stranger",
      id: client.id,
      address: source.hostname,
      port: source.port,
    });
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
    for (const mirror of client.mirrors.values()) mirror.close();
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
    await Promise.all([...clients.map(([, c]) => c.reading), ...this.#mirrorReadings]);
  }
}
