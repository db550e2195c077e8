/**
 * The TFTP server (RFC 1350 with options): requests arrive on one UDP
 * socket; each admitted transfer gets a socket of its own (its TID), from
 * `portRange` when one is given, and runs as a `Transfer`. The files go
 * through the same FileStore as fsd/1's, so the rules exist once.
 */

import { errorMessage, sameBytes } from "../bytes/source_sink.ts";
import { ConnectionLimits } from "../net/limits.ts";
import { DEFAULT_HOST } from "../net/listen.ts";
import { bindUdp, bindUdpInRange, MAX_DATAGRAM, type UdpSocket } from "../net/udp.ts";
import { ErrorCode, ProtocolError } from "../store/errors.ts";
import { Access, type Files } from "../store/access.ts";
import { FileStore } from "../store/file_store.ts";
import type { ServerEvent } from "../store/log.ts";
import { encodeError, Opcode, parsePacket, type Request } from "./codec.ts";
import { BLKSIZE_RANGE, MAX_GRANTED_TIMEOUT } from "./options.ts";
import { type DatagramTap, type Endpoint, isError, UdpChannel } from "./channel.ts";
import { Transfer, type TransferContext } from "./transfer.ts";
import { SendPool } from "./send_pool.ts";
import { after, type Timer } from "../timer.ts";

export interface TftpServerConfig {
  /** The directory to serve. */
  root: string;
  /** UDP port for requests (69 is TFTP's); 0 lets the system choose. */
  port: number;
  hostname?: string;
  /** Transfer sockets from this range of ports (firewalls, NAT); default any free port. */
  portRange?: [number, number];
  /** Largest block granted (default and most 65464). */
  maxBlockSize?: number;
  /** Largest window granted (default 64). */
  maxWindowSize?: number;
  /** Retransmission timeout when the client asks for none (default 1 s). */
  timeoutMs?: number;
  /** Timeouts in a row before a transfer is given up (default 5). */
  retries?: number;
  /** Longest timeout granted to a client, in seconds (default 10; more is not acknowledged). */
  maxTimeoutSeconds?: number;
  /**
   * Longest wait for a client's first answer (its first ACK or DATA),
   * whatever the timeout and retries, so a forged request holds its slot
   * no longer (default 10 s).
   */
  firstAnswerMs?: number;
  readOnly?: boolean;
  /** Refuse uploads (ERROR 2) while fsd/1 may still take them. */
  noUpload?: boolean;
  maxUploadBytes?: number;
  /**
   * Who may read and write what: TFTP has no login, so every client is
   * anonymous under it (default: no accounts, everyone reads and writes).
   */
  access?: Access;
  /** Serve each client from DIR/ADDRESS/ (its IP address), like dnsmasq's --tftp-unique-root. */
  uniqueRoot?: boolean;
  /**
   * Transfers at once, and from one address (default 1000 and 100; 0: no
   * limit). One address never gets more than half of maxClients, so it
   * cannot take every slot.
   */
  maxClients?: number;
  maxPerIp?: number;
  log?: (event: ServerEvent) => void;
  /** Sees the datagrams of transfer `id`, its request first (the live page). */
  datagramTap?: (id: number) => DatagramTap;
  /**
   * Runs downloads of regular files on sender threads (lib/tftp/send_pool.ts)
   * running this module (main.ts), where Deno grants --allow-ffi and the store
   * opens race-free (--allow-all); not with a
   * `portRange` or a `datagramTap` (a sender's socket takes any port, and its
   * datagrams are not seen here).
   */
  senderModule?: string | URL;
}

export const TFTP_DEFAULTS = {
  maxBlockSize: BLKSIZE_RANGE[1],
  maxWindowSize: 64,
  timeoutMs: 1000,
  retries: 5,
  maxTimeoutSeconds: MAX_GRANTED_TIMEOUT,
  firstAnswerMs: 10_000,
  maxClients: 1000,
  maxPerIp: 100,
} as const;

/** The limits on transfers: one address gets at most half of the slots (at least 1). */
export function tftpLimits(
  config: { maxClients?: number; maxPerIp?: number },
): { maxClients: number; maxPerIp: number } {
  const maxClients = config.maxClients ?? TFTP_DEFAULTS.maxClients;
  const asked = config.maxPerIp ?? TFTP_DEFAULTS.maxPerIp;
  if (maxClients === 0) return { maxClients, maxPerIp: asked };
  const half = Math.max(1, Math.floor(maxClients / 2));
  return { maxClients, maxPerIp: asked === 0 ? half : Math.min(asked, half) };
}

/** The address a per-client root is named after: IPv4-mapped IPv6 as plain IPv4. */
export function clientRootName(address: string): string {
  return address.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, "");
}

const NO_ACCOUNTS = new Access({ accounts: false });

export class TftpServer {
  readonly #socket: UdpSocket;
  readonly #store: FileStore;
  readonly #config: TftpServerConfig;
  readonly #limits: ConnectionLimits;
  readonly #log: (event: ServerEvent) => void;
  /** Running transfers by the client's endpoint: a repeated request must not start another. */
  readonly #running = new Map<string, Running>();
  readonly #receiving: Promise<void>;
  readonly #senders: SendPool | undefined;
  #nextId = 1;
  #stopping = false;
  #graceTimer: Timer | undefined;

  private constructor(socket: UdpSocket, store: FileStore, config: TftpServerConfig) {
    this.#socket = socket;
    this.#store = store;
    this.#config = config;
    this.#log = config.log ?? (() => {});
    this.#limits = new ConnectionLimits(tftpLimits(config));
    // A sender reads the descriptor of a race-free open: without those (narrow permissions) no
    // download could go to a thread, and none is started.
    const module = config.portRange || config.datagramTap || !store.raceFree
      ? undefined
      : config.senderModule;
    this.#senders = module ? SendPool.create(module, config.hostname ?? DEFAULT_HOST) : undefined;
    this.#receiving = this.#receiveRequests();
  }

  /** Opens the store (removing stale uploads unless `store` is shared) and binds the port. */
  static async start(config: TftpServerConfig, shared?: FileStore): Promise<TftpServer> {
    let store = shared;
    if (!store) {
      store = await FileStore.open(config);
      const removed = await store.removeStaleStaging();
      if (removed > 0) config.log?.({ event: "cleanup", removed, directory: store.root });
    }
    const socket = await bindUdp(config.hostname ?? DEFAULT_HOST, config.port);
    return new TftpServer(socket, store, config);
  }

  get addr(): { hostname: string; port: number } {
    return this.#socket.local;
  }

  /** Transfers running now. */
  get transfers(): number {
    return this.#running.size;
  }

  /** Stops taking requests; running transfers may finish within `graceMs`, then are stopped. */
  async shutdown(graceMs: number): Promise<void> {
    if (!this.#stopping) {
      this.#stopping = true;
      this.#socket.close();
      this.#graceTimer = after(graceMs, () => this.#abortAll());
    }
    await this.#settle();
  }

  /** Stops everything now. */
  async close(): Promise<void> {
    this.#stopping = true;
    this.#socket.close();
    this.#abortAll();
    await this.#settle();
  }

  #abortAll(): void {
    for (const running of this.#running.values()) {
      running.aborted = true;
      running.transfer?.abort();
    }
  }

  async #settle(): Promise<void> {
    while (this.#running.size > 0) {
      await Promise.all([...this.#running.values()].map((s) => s.done));
    }
    await this.#receiving;
    this.#senders?.close();
    this.#graceTimer?.cancel();
  }

  /** Takes requests until the socket closes; each is handled before the buffer is reused. */
  async #receiveRequests(): Promise<void> {
    const buffer = new Uint8Array(MAX_DATAGRAM);
    // A failed receive on an open socket (an ICMP error reported late) is passed over; a run of
    // them in a row ends the loop rather than spinning.
    for (let failures = 0; failures < 100;) {
      let datagram: [Uint8Array, Endpoint];
      try {
        datagram = await this.#socket.receive(buffer);
      } catch (error) {
        if (this.#socket.closed) return;
        this.#log({ event: "accept-error", message: errorMessage(error) });
        failures++;
        continue;
      }
      failures = 0;
      this.#onRequest(datagram[0], datagram[1]);
    }
  }

  #onRequest(bytes: Uint8Array, from: Endpoint): void {
    if (this.#stopping) return;
    const key = `${from.hostname} ${from.port}`;
    const current = this.#running.get(key);
    if (current) {
      // The same port again: its request repeated (by the client or the network), or its next one
      // (a tftp-hpa session's next get), which a client sends only after its last ACK. Kept, the
      // latest only, and served when the transfer ends: another request whenever that is, the same
      // one only if the transfer ends within REPEAT_GRACE_MS of it (else it was a repeat).
      const repeat = sameBytes(bytes, current.request);
      current.next = {
        bytes: bytes.slice(),
        from,
        until: repeat ? performance.now() + REPEAT_GRACE_MS : Infinity,
      };
      return;
    }
    const copy = bytes.slice(); // the request outlives the receive buffer
    let request: Request;
    try {
      const packet = parsePacket(copy);
      if (packet.op !== Opcode.RRQ && packet.op !== Opcode.WRQ) {
        if (packet.op === Opcode.ERROR) return; // never answer an ERROR (no error loops)
        throw new ProtocolError(
          ErrorCode.ILLEGAL_OPERATION,
          `illegal TFTP operation: opcode ${packet.op} is not a request`,
        );
      }
      request = packet;
    } catch (error) {
      // A truncated ERROR (atftpd's CVE-2019-11365) is not answered either.
      if (isError(bytes)) return;
      const coded = error as ProtocolError;
      this.#socket.send(encodeError(coded.code, coded.message), from);
      return;
    }
    const admission = this.#limits.admit(from.hostname);
    const id = this.#nextId++;
    if (!admission.admitted) {
      this.#log({
        event: "rejected",
        id,
        address: from.hostname,
        port: from.port,
        code: ErrorCode.OTHER,
        message: admission.reason,
      });
      this.#socket.send(encodeError(ErrorCode.OTHER, admission.reason), from);
      return;
    }
    this.#log({
      event: "connection",
      id,
      address: from.hostname,
      port: from.port,
      transport: "tftp",
    });
    const running: Running = { aborted: false, done: Promise.resolve(), request: copy };
    running.done = this.#serve(id, request, bytes, from, running).finally(() => {
      this.#running.delete(key);
      this.#limits.release(from.hostname);
      const next = running.next;
      if (next && performance.now() <= next.until) this.#onRequest(next.bytes, next.from);
    });
    this.#running.set(key, running);
  }

  /** Opens the transfer's own socket and runs it; never rejects. */
  async #serve(
    id: number,
    request: Request,
    requestBytes: Uint8Array,
    from: Endpoint,
    running: Running,
  ): Promise<void> {
    const tap = this.#config.datagramTap?.(id);
    tap?.(false, requestBytes, this.addr, from);
    const hostname = this.#config.hostname ?? DEFAULT_HOST;
    const range = this.#config.portRange;
    let socket: UdpSocket;
    try {
      socket = range ? await bindUdpInRange(hostname, range) : await bindUdp(hostname, 0);
    } catch (error) {
      const message = `no port for the transfer: ${errorMessage(error)}`;
      this.#socket.send(encodeError(ErrorCode.OTHER, message), from);
      this.#log({ event: "close", id, reason: "failure", message });
      return;
    }
    const transfer = new Transfer(
      id,
      new UdpChannel(socket, from, true, tap),
      request,
      this.#context(from),
    );
    running.transfer = transfer;
    if (running.aborted) transfer.abort();
    await transfer.run();
  }

  #context(from: Endpoint): TransferContext {
    const store = this.#store;
    const access = this.#config.access ?? NO_ACCOUNTS;
    const files = async (): Promise<Files> => {
      const root = this.#config.uniqueRoot
        ? await store.within(clientRootName(from.hostname))
        : store;
      return access.config.accounts ? access.view(root, undefined, { noLogin: true }) : root;
    };
    return {
      store: files,
      limits: {
        maxBlockSize: this.#config.maxBlockSize ?? TFTP_DEFAULTS.maxBlockSize,
        maxWindowSize: this.#config.maxWindowSize ?? TFTP_DEFAULTS.maxWindowSize,
        timeoutMs: this.#config.timeoutMs ?? TFTP_DEFAULTS.timeoutMs,
        maxTimeoutSeconds: this.#config.maxTimeoutSeconds ?? TFTP_DEFAULTS.maxTimeoutSeconds,
      },
      retries: this.#config.retries ?? TFTP_DEFAULTS.retries,
      firstAnswerMs: this.#config.firstAnswerMs ?? TFTP_DEFAULTS.firstAnswerMs,
      noUpload: this.#config.noUpload ?? false,
      log: this.#log,
      stopping: () => this.#stopping,
      offload: this.#senders && ((job, started) => this.#senders!.offer(job, started)),
    };
  }
}

/** A running transfer, as the server tracks it. */
interface Running {
  transfer?: Transfer;
  aborted: boolean;
  done: Promise<void>;
  /** The request that started it, to tell a repeat from the client's next one. */
  request: Uint8Array;
  /** The latest request from the same port while it ran: served when it ends, if not past `until`. */
  next?: { bytes: Uint8Array; from: Endpoint; until: number };
}

/**
 * How long after a request identical to the running one that transfer may end for the request
 * to count as the client's next (`get a` twice in one session), not a repeat of the first.
 */
const REPEAT_GRACE_MS = 500;
