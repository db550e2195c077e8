/**
 * TFTP downloads on threads of their own. Deno's UDP API hands every wait
 * to the event loop and back, which holds a lock-step server below a C
 * one; a wait that blocks in the C library's recvfrom (BlockingUdp) does
 * not, but must never block the thread every other transfer and request
 * runs on. So a server whose Deno grants --allow-ffi (README's install
 * line) hands each download of a regular file of at least
 * MIN_OFFLOAD_BYTES to a sender thread (lib/tftp/sender.ts), one download
 * per thread at a time, at most one thread per core: the file is opened and
 * checked here, through the store's rules, and read there by the descriptor
 * held here until the download ends. When every thread is busy, or where
 * threads are not offered, the download runs on the event loop, as before.
 */

import { loadLibc } from "../net/libc.ts";
import type { Endpoint } from "../net/endpoint.ts";
import type { TransferParams } from "./options.ts";
import { TFTP_SENDER_NAME } from "./sender_name.ts";
import type { Failure } from "./failure.ts";

/** One download for a sender thread. */
export interface SendJob {
  id: number;
  /** The descriptor of the file (held open by the server until the outcome). */
  fd: number;
  peer: Endpoint;
  params: TransferParams;
  /** The OACK to send first, if options were granted. */
  oack?: Uint8Array;
  retries: number;
  /** How long, from the hand-off, the client's first answer may take. */
  firstAnswerMs: number;
}

/** How a download on a sender thread ended; `unavailable`: it did not start (run it here). */
export type SendOutcome =
  | { bytes: number; dataMoved: true }
  | { failure: Failure; dataMoved: boolean }
  | { unavailable: true };

export type ToSender =
  | { type: "send"; job: SendJob; hostname: string }
  | { type: "abort"; id: number };

export type FromSender =
  | { type: "ready" }
  | { type: "done"; id: number; outcome: SendOutcome };

interface Thread {
  worker: Worker;
  ready: Promise<void>;
  /** The download it runs now, and what hears its outcome. */
  job?: { id: number; settle: (outcome: SendOutcome) => void };
}

export class SendPool {
  readonly #module: string | URL;
  readonly #hostname: string;
  readonly #max: number;
  readonly #threads: Thread[] = [];
  #nextId = 1;
  #closed = false;

  private constructor(module: string | URL, hostname: string, max: number) {
    this.#module = module;
    this.#hostname = hostname;
    this.#max = max;
  }

  /**
   * A pool whose threads run `module` (main.ts: it starts `sendInWorker()`
   * in a thread named TFTP_SENDER_NAME) and bind on `hostname`; undefined
   * where blocking sockets are not offered (not Linux with glibc, or no
   * --allow-ffi). At most `max` threads (default: one per core, 1 to 8).
   */
  static create(module: string | URL, hostname: string, max?: number): SendPool | undefined {
    if (!loadLibc()) return undefined;
    const cores = navigator.hardwareConcurrency ?? 1;
    return new SendPool(module, hostname, max ?? Math.max(1, Math.min(8, cores)));
  }

  /** Threads started so far (each kept for the next download until `close`). */
  get threads(): number {
    return this.#threads.length;
  }

  /**
   * Runs `job` on a free thread (started now if there is room for one):
   * its outcome, or undefined when every thread is busy. `started` gets the
   * way to stop it (shutdown), which answers whether the thread tells the
   * peer (false: it had not begun, and the caller tells it).
   */
  offer(
    job: Omit<SendJob, "id">,
    started: (abort: () => boolean) => void,
  ): Promise<SendOutcome> | undefined {
    if (this.#closed) return undefined;
    const thread = this.#threads.find((t) => !t.job) ??
      (this.#threads.length < this.#max ? this.#start() : undefined);
    if (!thread) return undefined;
    const id = this.#nextId++;
    let posted = false;
    const outcome = new Promise<SendOutcome>((settle) => thread.job = { id, settle });
    started(() => {
      if (posted) {
        thread.worker.postMessage({ type: "abort", id } satisfies ToSender);
        return true;
      }
      // Stopped before the thread had it: nothing went out, and nothing will.
      thread.job?.settle({ failure: { reason: "shutdown" }, dataMoved: false });
      thread.job = undefined;
      return false;
    });
    thread.ready.then(() => {
      if (thread.job?.id !== id) return; // stopped, or the thread died before it was ready
      posted = true;
      thread.worker.postMessage(
        { type: "send", job: { ...job, id }, hostname: this.#hostname } satisfies ToSender,
      );
    });
    return outcome;
  }

  /** Stops every thread (downloads must have ended: the server aborts and awaits them first). */
  close(): void {
    this.#closed = true;
    for (const thread of this.#threads.splice(0)) {
      thread.worker.terminate();
      thread.job?.settle({ failure: { reason: "shutdown" }, dataMoved: true });
    }
  }

  #start(): Thread {
    const worker = new Worker(this.#module, { type: "module", name: TFTP_SENDER_NAME });
    let ready!: () => void;
    const thread: Thread = { worker, ready: new Promise((resolve) => ready = resolve) };
    worker.onmessage = (event: MessageEvent<FromSender>) => {
      const message = event.data;
      if (message.type === "ready") return ready();
      if (thread.job?.id !== message.id) return;
      const { settle } = thread.job;
      thread.job = undefined;
      settle(message.outcome);
    };
    worker.onerror = (event) => {
      // A thread that fails is dropped; its download (if any) failed, and the next one starts anew.
      event.preventDefault();
      worker.terminate();
      const at = this.#threads.indexOf(thread);
      if (at >= 0) this.#threads.splice(at, 1);
      const message = `sender thread failed: ${event.message}`;
      thread.job?.settle({ failure: { reason: "failure", message }, dataMoved: true });
      thread.job = undefined;
      ready();
    };
    this.#threads.push(thread);
    return thread;
  }
}
