/**
 * One UDP socket for every protocol (TFTP, `echo --udp`, `proxy --udp`),
 * on Deno's own `Deno.listenDatagram` (a lock-step round trip costs about a
 * third of node:dgram's). Binding asks for the permission first, so a
 * missing `--allow-net` or `--unstable-net` is one clean UdpBindError
 * (a ListenError), never a prompt or an uncaught NotCapable.
 */

import type { Endpoint } from "./endpoint.ts";
import { ListenError, listenError } from "./listen.ts";

export type { Endpoint };

/** The largest UDP payload; a receive buffer this size never truncates a datagram. */
export const MAX_DATAGRAM = 65_536;

export interface UdpSocket {
  readonly local: Endpoint;
  /**
   * Waits for one datagram. The bytes are a view of `into` (reused by the
   * caller; without it, a fresh buffer of MAX_DATAGRAM bytes), valid until
   * `into` is used again. Only one receive may wait at a time; it rejects
   * once the socket is closed.
   */
  receive(into?: Uint8Array): Promise<[Uint8Array, Endpoint]>;
  /**
   * Sends one datagram; callers on hot paths need not await it (a failure
   * then goes unheard, as UDP's own losses do). `data` must not change
   * until the promise settles.
   */
  send(data: Uint8Array, to: Endpoint): Promise<number>;
  /** Whether close() was called. */
  readonly closed: boolean;
  /** Closes the socket (after the sends already handed over); idempotent. */
  close(): void;
}

/** The UDP socket could not be bound: the message says why (and which flag is missing). */
export class UdpBindError extends ListenError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = "UdpBindError";
  }
}

type DatagramConn = {
  readonly addr: { hostname: string; port: number };
  receive(p?: Uint8Array): Promise<[Uint8Array, { hostname: string; port: number }]>;
  send(p: Uint8Array, addr: { transport: "udp"; hostname: string; port: number }): Promise<number>;
  close(): void;
};
type ListenDatagram = (options: {
  transport: "udp";
  hostname: string;
  port: number;
}) => DatagramConn;

/**
 * Binds UDP on `hostname` port `port` (0: any free port). Queries
 * --allow-net first and throws UdpBindError instead of a prompt or
 * NotCapable; a taken port or a foreign address is a UdpBindError too.
 */
export async function bindUdp(hostname: string, port: number): Promise<UdpSocket> {
  const listen = (Deno as unknown as { listenDatagram?: ListenDatagram }).listenDatagram;
  if (typeof listen !== "function") {
    throw new UdpBindError(
      `cannot bind UDP ${hostname} port ${port}: needs Deno's --unstable-net flag`,
    );
  }
  const permission = await Deno.permissions.query({ name: "net", host: `${hostname}:${port}` });
  if (permission.state !== "granted") {
    throw new UdpBindError(
      `cannot bind UDP ${hostname} port ${port}: needs --allow-net=${hostname}`,
    );
  }
  let conn: DatagramConn;
  try {
    conn = listen({ transport: "udp", hostname, port });
  } catch (error) {
    throw new UdpBindError(listenError(error, hostname, port).message, { cause: error });
  }
  return new DenoUdpSocket(conn);
}

/** Binds a free port in `lo`..`hi`, tried from a random start; UdpBindError when none is. */
export async function bindUdpInRange(
  hostname: string,
  [lo, hi]: [number, number],
): Promise<UdpSocket> {
  const count = hi - lo + 1;
  const start = Math.floor(Math.random() * count);
  for (let i = 0; i < count; i++) {
    try {
      return await bindUdp(hostname, lo + (start + i) % count);
    } catch (error) {
      if (!(error instanceof UdpBindError) || !(error.cause instanceof Deno.errors.AddrInUse)) {
        throw error;
      }
    }
  }
  throw new UdpBindError(`cannot bind UDP ${hostname}: no free port in ${lo}:${hi}`);
}

class DenoUdpSocket implements UdpSocket {
  readonly local: Endpoint;
  readonly #conn: DatagramConn;
  #closed = false;
  #released = false;
  /** Sends not yet settled: closing waits for them, or they could be lost. */
  #sending = 0;

  constructor(conn: DatagramConn) {
    this.#conn = conn;
    this.local = { hostname: conn.addr.hostname, port: conn.addr.port };
  }

  get closed(): boolean {
    return this.#closed;
  }

  async receive(into?: Uint8Array): Promise<[Uint8Array, Endpoint]> {
    if (this.#closed) throw new Deno.errors.BadResource("the UDP socket is closed");
    const [bytes, from] = await this.#conn.receive(into ?? new Uint8Array(MAX_DATAGRAM));
    return [bytes, { hostname: from.hostname, port: from.port }];
  }

  send(data: Uint8Array, to: Endpoint): Promise<number> {
    if (this.#closed) return Promise.resolve(0);
    this.#sending++;
    const sent = this.#conn.send(data, { transport: "udp", hostname: to.hostname, port: to.port });
    const settled = () => {
      if (--this.#sending === 0 && this.#closed) this.#release();
    };
    sent.then(settled, settled);
    return sent;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#sending === 0) this.#release();
  }

  #release(): void {
    if (this.#released) return;
    this.#released = true;
    try {
      this.#conn.close();
    } catch {
      // already gone
    }
  }
}
