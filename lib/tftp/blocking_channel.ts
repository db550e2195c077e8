/**
 * A TFTP transfer's channel over lib/net's BlockingUdp: the same rules as
 * `UdpChannel` (the peer's transfer ID learned from its first answer,
 * ERROR 5 to anyone else, an ERROR never answered), but each wait blocks
 * this thread (after a spin of SPIN_MS while answers come that fast), in
 * slices: between slices, and at least every YIELD_MS
 * while datagrams keep coming, the event loop turns, so timers (progress)
 * and signal listeners (an interrupt closes the channel) still run. A
 * client's, and a server's only on a thread of its own
 * (lib/tftp/send_pool.ts): a wait must never hold up other transfers.
 */

import type { Endpoint } from "../net/endpoint.ts";
import { BlockingUdp } from "../net/blocking_udp.ts";
import { MAX_DATAGRAM } from "../net/udp.ts";
import { type DatagramTap, PeerChannel } from "./channel.ts";
import { sleep } from "../timer.ts";

/**
 * Longest one blocking wait lasts, and longest the event loop waits for a
 * turn while datagrams keep coming: a turn costs about a millisecond (a
 * timer's least delay), so one every 100 ms costs a transfer 1%, and an
 * interrupt or a progress line waits for it at most that long.
 */
const SLICE_MS = 50;

/**
 * How long a wait first asks the socket without sleeping, while answers come
 * that fast: a sleeping thread's wake-up, which the peer waits for too, costs
 * more than the wait (curl's lock-step 1 GiB download from fsd's server took
 * 1.1 s sleeping at once and 0.55 s spinning first, with less CPU in all:
 * docs/PERFORMANCE.md, session 41). An answer slower than this turns the spin
 * off until one comes this fast again, so a slow or distant peer costs none.
 */
const SPIN_MS = 0.05;
const YIELD_MS = 100;

/** One turn of the event loop (a timer's turn: listeners and other timers run). */
const turn = () => sleep(0);

export class BlockingChannel extends PeerChannel<BlockingUdp> {
  readonly #buffer = new Uint8Array(MAX_DATAGRAM);
  #turned = performance.now();
  /** The last answer came within SPIN_MS: the next wait spins first. */
  #spins = true;

  /**
   * A client's channel to `peer` (whose port answers may change), or a
   * server's (`peerKnown`: the client's request named its transfer ID);
   * undefined where BlockingUdp is not offered. `receiveBuffer`: the
   * receive buffer to ask for (bytes).
   */
  static open(
    localHost: string,
    peer: Endpoint,
    options: { tap?: DatagramTap; peerKnown?: boolean; receiveBuffer?: number } = {},
  ): BlockingChannel | undefined {
    const socket = BlockingUdp.open(localHost, peer, options.receiveBuffer);
    return socket && new BlockingChannel(socket, peer, options.peerKnown ?? false, options.tap);
  }

  /** Whether the next wait spins first (the last answer came within SPIN_MS). */
  get spinning(): boolean {
    return this.#spins;
  }

  get receiveBuffer(): number {
    return this.socket.receiveBuffer;
  }

  async receive(deadline: number): Promise<Uint8Array | null> {
    // The wait starts once the caller's own synchronous work after this call is done: a sender
    // reads the next window ahead while the ACK is on its way, not after it came.
    await undefined;
    let started: number | undefined;
    for (let spin = this.#spins;; spin = false) {
      let now = performance.now();
      if (now - this.#turned >= YIELD_MS) {
        // Datagrams that keep coming, spun for or slept on, must not starve the event loop.
        await turn();
        now = this.#turned = performance.now();
      }
      started ??= now;
      if (deadline - now <= 0 || this.socket.closed) return null;
      if (spin) {
        const bytes = this.#spin(started);
        if (bytes) return bytes;
        continue;
      }
      const got = this.socket.receive(this.#buffer, Math.min(deadline - now, SLICE_MS));
      if (got === null) {
        await turn();
        this.#turned = performance.now();
        continue;
      }
      const bytes = this.admit(got[0], got[1]);
      if (bytes) {
        this.#spins = performance.now() - started < SPIN_MS;
        return bytes;
      }
    }
  }

  /** The peer's datagram if one comes within SPIN_MS of `started`, asked for without sleeping. */
  #spin(started: number): Uint8Array | null {
    do {
      const got = this.socket.receiveNow(this.#buffer);
      const bytes = got && this.admit(got[0], got[1]);
      if (bytes) return bytes;
    } while (performance.now() - started < SPIN_MS);
    return null;
  }

  close(): void {
    this.socket.close();
  }
}
