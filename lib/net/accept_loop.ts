/**
 * The accept loop every server runs: accept, hand each connection to its
 * handler as a task of its own, keep going after transient failures (out of
 * descriptors and the like: pausing 500 ms between tries, as nginx does, and
 * saying so once per run of them), and on stop close the listener and wait
 * for every task. Written once for `serve`, `proxy` and `echo`.
 */

import { closeQuietly } from "../bytes/source_sink.ts";
import type { StreamConn, StreamListener } from "./stream_conn.ts";
import { sleep } from "../timer.ts";

export interface AcceptHandlers<C extends StreamConn> {
  /** Serves one connection; its failure ends that connection only (it must not reject). */
  handle(conn: C, id: number): Promise<void>;
  /**
   * An accept failed while still running (out of descriptors, mostly); the loop pauses and goes
   * on. Called once per run of failures (one ends after a minute without any), not for each.
   */
  onAcceptError?(error: unknown): void;
}

/** How long to wait after a failed accept before the next (nginx's pause). */
const PAUSE_MS = 500;
/** A failed accept this long after the last one starts a new run, said again. */
const QUIET_MS = 60_000;

export class AcceptLoop<C extends StreamConn = Deno.TcpConn> {
  readonly addr: Deno.Addr;
  #listener: StreamListener<C>;
  #handlers: AcceptHandlers<C>;
  #tasks = new Set<Promise<void>>();
  #nextId = 1;
  #stopping = false;
  #loop: Promise<void>;

  constructor(listener: StreamListener<C>, handlers: AcceptHandlers<C>) {
    this.#listener = listener;
    this.#handlers = handlers;
    this.addr = listener.addr;
    this.#loop = this.#run();
  }

  /** True once `stop()` was called. */
  get stopping(): boolean {
    return this.#stopping;
  }

  /** Stops accepting; connections already accepted go on. */
  stop(): void {
    if (this.#stopping) return;
    this.#stopping = true;
    closeQuietly(this.#listener);
  }

  /** Resolves once the loop has ended and every connection's task has finished. */
  async settled(): Promise<void> {
    await this.#loop;
    while (this.#tasks.size > 0) await Promise.all(this.#tasks);
  }

  async #run(): Promise<void> {
    let lastFailure = -Infinity;
    while (!this.#stopping) {
      let conn: C;
      try {
        conn = await this.#listener.accept();
      } catch (error) {
        if (this.#stopping) return;
        // Accepts that fail again and again (one succeeding now and then) are one run.
        if (performance.now() - lastFailure > QUIET_MS) this.#handlers.onAcceptError?.(error);
        lastFailure = performance.now();
        await sleep(PAUSE_MS);
        continue;
      }
      const task = this.#handlers.handle(conn, this.#nextId++).catch(() => {});
      this.#tasks.add(task);
      task.finally(() => this.#tasks.delete(task));
    }
  }
}
