/**
 * Notices a node:net listener that has stopped accepting. Deno 2.9.6's node:net server stops
 * accepting for good after one accept fails (EMFILE: out of descriptors) and emits no error to
 * re-arm on, while the kernel goes on queueing connections. So, while no connection has arrived
 * for a second, the watchdog connects to the listener itself over loopback (a probe the listener
 * recognises by its port and closes at once, unlogged and uncounted); a probe not accepted within
 * `deadlineMs` means the listener is stuck, and `rearm` is called (the owner listens again on the
 * same port), as nginx pauses and retries after a failed accept. A probe that cannot even be
 * opened (still out of descriptors) is tried again a second later.
 *
 * It needs net permission to connect to the listener's own address (queried, never prompted):
 * without it there is no watchdog. With a port shared by several listeners (SO_REUSEPORT,
 * `--workers`) the kernel may hand a probe to any of them, so their watchdogs share a
 * `ProbeBoard`: each writes its probe's port there, whichever listener accepts a probe marks it
 * accepted, and a probe nobody accepted in time means a stuck listener. Each watchdog then listens
 * again with its own (one of them may have been healthy: its queue is lost, once); out of
 * descriptors, the process's listeners are all stuck alike.
 */

import { closeQuietly } from "../bytes/source_sink.ts";
import { sleep } from "../timer.ts";

export interface WatchdogConfig {
  /** Where the listener listens. */
  hostname: string;
  port: number;
  /** How often to look (default 1 s) and how long a probe may wait to be accepted (default 2 s). */
  intervalMs?: number;
  deadlineMs?: number;
  /** The listener is stuck: listen again. */
  rearm(): Promise<void>;
  /** Said once per episode: out of descriptors, or listening again. */
  onTrouble(message: string): void;
  /** Shared with the other listeners of the port (`--workers`), and this one's slot in it. */
  board?: ProbeBoard;
}

/**
 * The probes of the listeners sharing a port, in memory shared by their workers: per slot, the
 * probe's local port (0: none, -1: connecting) and whether some listener has accepted it.
 */
export interface ProbeBoard {
  cells: Int32Array;
  slot: number;
}

/** A board for `listeners` listeners; each gets it with its own `slot`. */
export function probeBoard(listeners: number): Int32Array {
  return new Int32Array(new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT * 2 * listeners));
}

/** How long an accepted loopback connection waits for a probe still connecting to be written. */
const CONNECTING_WAIT_MS = 100;

export class AcceptWatchdog {
  #config: WatchdogConfig;
  #timer: ReturnType<typeof setInterval>;
  #sawConnection = false;
  #probe: { conn: Deno.TcpConn; port: number; since: number } | undefined;
  /** A probe's connect in flight: the listener may see the connection before it resolves. */
  #connecting: Promise<void> | undefined;
  #outOfDescriptors = false;
  #rearming = false;
  #stopped = false;

  private constructor(config: WatchdogConfig) {
    this.#config = config;
    this.#timer = setInterval(() => void this.#tick(), config.intervalMs ?? 1000);
    Deno.unrefTimer(this.#timer);
  }

  /** A watchdog for the listener at `config`'s address, or undefined where it cannot probe. */
  static start(config: WatchdogConfig): AcceptWatchdog | undefined {
    const host = `${probeHost(config.hostname)}:${config.port}`;
    if (Deno.permissions.querySync({ name: "net", host }).state !== "granted") return undefined;
    return new AcceptWatchdog(config);
  }

  /**
   * Call on every accepted connection; true when it is the watchdog's own probe, which the
   * caller then closes and forgets.
   */
  async accepted(remote: { address?: string; port?: number }): Promise<boolean> {
    this.#sawConnection = true;
    if (!isLoopback(remote.address ?? "")) return false;
    await this.#connecting;
    const probe = this.#probe;
    if (probe && remote.port === probe.port) {
      this.#endProbe();
      return true;
    }
    const board = this.#config.board;
    return board !== undefined && remote.port !== undefined &&
      await acceptedOnBoard(board.cells, remote.port);
  }

  stop(): void {
    this.#stopped = true;
    clearInterval(this.#timer);
    this.#endProbe();
  }

  async #tick(): Promise<void> {
    if (this.#rearming || this.#connecting) return;
    const probe = this.#probe;
    if (probe) {
      const board = this.#config.board;
      if (board && Atomics.load(board.cells, 2 * board.slot + 1) === 1) {
        return this.#endProbe(); // another listener of the port took it
      }
      if (Date.now() - probe.since < (this.#config.deadlineMs ?? 2000)) return;
      this.#endProbe();
      this.#config.onTrouble(
        "the TLS port stopped accepting (out of descriptors?); listening again",
      );
      this.#rearming = true;
      try {
        await this.#config.rearm();
      } finally {
        this.#rearming = false;
      }
      return;
    }
    if (this.#sawConnection) {
      this.#sawConnection = false;
      return;
    }
    this.#connecting = this.#connect();
    await this.#connecting;
    this.#connecting = undefined;
  }

  async #connect(): Promise<void> {
    const board = this.#config.board;
    if (board) this.#mark(-1, 0);
    try {
      const conn = await Deno.connect({
        hostname: probeHost(this.#config.hostname),
        port: this.#config.port,
      });
      this.#outOfDescriptors = false;
      if (this.#stopped) {
        this.#mark(0, 0);
        return conn.close();
      }
      this.#probe = { conn, port: conn.localAddr.port, since: Date.now() };
      this.#mark(conn.localAddr.port, 0);
    } catch (error) {
      this.#mark(0, 0);
      // Nobody listens (listening again failed): try again.
      if (error instanceof Deno.errors.ConnectionRefused) return await this.#config.rearm();
      if (!this.#outOfDescriptors && /too many open files|os error 24/i.test(String(error))) {
        this.#outOfDescriptors = true;
        this.#config.onTrouble("out of descriptors: waiting for some to be freed");
      }
    }
  }

  #endProbe(): void {
    closeQuietly(this.#probe?.conn);
    this.#probe = undefined;
    this.#mark(0, 0);
  }

  /** Writes this listener's probe on the board: its port (0 none, -1 connecting), accepted. */
  #mark(port: number, accepted: number): void {
    const board = this.#config.board;
    if (!board) return;
    Atomics.store(board.cells, 2 * board.slot + 1, accepted);
    Atomics.store(board.cells, 2 * board.slot, port);
  }
}

/**
 * Whether a loopback connection from `port` is the probe of another listener of the port (marked
 * accepted, then). A probe still connecting may not be written yet: waited for, briefly.
 */
async function acceptedOnBoard(cells: Int32Array, port: number): Promise<boolean> {
  const until = Date.now() + CONNECTING_WAIT_MS;
  for (;;) {
    let connecting = false;
    for (let slot = 0; slot < cells.length / 2; slot++) {
      const probe = Atomics.load(cells, 2 * slot);
      if (probe === port) {
        Atomics.store(cells, 2 * slot + 1, 1);
        return true;
      }
      connecting ||= probe === -1;
    }
    if (!connecting || Date.now() >= until) return false;
    await sleep(5);
  }
}

/** The address a probe connects to: loopback for a wildcard listener. */
function probeHost(hostname: string): string {
  if (hostname === "0.0.0.0" || hostname === "") return "127.0.0.1";
  if (hostname === "::" || hostname === "[::]") return "::1";
  return hostname.replace(/^\[|\]$/g, "");
}

function isLoopback(address: string): boolean {
  return /^(::ffff:)?127\./.test(address) || address === "::1";
}
