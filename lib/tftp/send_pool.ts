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
 * threads are not offered (or cannot start), the download runs on the
 * event loop, as before. One thread starts with the pool; more start as
 * downloads need them, and each is kept for the next until `close`.
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
  /** Whether it has loaded and said so. */
  started: boolean;
  /** The download it has now (`posted`: handed to it), and what hears its outcome. */
  job?: { id: number; settle: (outcome: SendOutcome) => void; posted: boolean };
}

export class SendPool {
  readonly #module: string | URL;
  readonly #hostname: string;
  readonly #max: number;
  readonly #threads: Thread[] = [];
  #nextId = 1;
  #closed = false;
  /** A thread failed before it started: none can run here, and downloads stay on the event loop. */
  #broken = false;

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
    const pool = new SendPool(module, hostname, max ?? Math.max(1, Math.min(8, cores)));
    // One thread starts now, beside the server's start: a thread takes about 75 ms to start
    // (and 14 MiB), which the first large download would otherwise wait for.
    pool.#start();
    return pool;
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
    if (this.#closed || this.#broken) return undefined;
    const thread = this.#threads.find((t) => !t.job) ??
      (this.#threads.length < this.#max ? this.#start() : undefined);
    if (!thread) return undefined;
    const id = this.#nextId++;
    const outcome = new Promise<SendOutcome>((settle) =>
      thread.job = { id, settle, posted: false }
    );
    started(() => {
      if (thread.job?.id !== id) return true; // over already
      if (thread.job.posted) {
        thread.worker.postMessage({ type: "abort", id } satisfies ToSender);
        return true;
      }
      // Stopped before the thread had it: nothing went out, and nothing will.
      this.#settle(thread, { failure: { reason: "shutdown" }, dataMoved: false });
      return false;
    });
    thread.ready.then(() => {
      if (thread.job?.id !== id) return; // stopped, or the thread failed before it started
      thread.job.posted = true;
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
      this.#settle(thread, { failure: { reason: "shutdown" }, dataMoved: true });
    }
  }

  #start(): Thread {
    const worker = new Worker(this.#module, { type: "module", name: TFTP_SENDER_NAME });
    let ready!: () => void;
    const thread: Thread = {
      worker,
      started: false,
      ready: new Promise((resolve) => ready = resolve),
    };
    worker.onmessage = (event: MessageEvent<FromSender>) => {
      const message = event.data;
      if (message.type === "ready") {
        thread.started = true;
        return ready();
      }
      if (thread.job?.id === message.id) this.#settle(thread, message.outcome);
    };
    worker.onerror = (event) => {
      // A thread that fails is dropped. One that never started means none can (its module
      // cannot run here): its download, and every later one, runs on the event loop. One that
      // fails during a download (a bug) fails that download; the next one starts a thread anew.
      event.preventDefault();
      worker.terminate();
      const at = this.#threads.indexOf(thread);
      if (at >= 0) this.#threads.splice(at, 1);
      if (!thread.started) this.#broken = true;
      if (thread.job) {
        const message = `sender thread failed: ${event.message}`;
        this.#settle(
          thread,
          thread.job.posted
            ? { failure: { reason: "failure", message }, dataMoved: true }
            : { unavailable: true },
        );
      }
      ready();
    };
    this.#threads.push(thread);
    return thread;
  }

  /** Ends the thread's download with `outcome`; the thread is free again. */
  #settle(thread: Thread, outcome: SendOutcome): void {
    const job = thread.job;
    thread.job = undefined;
    job?.settle(outcome);
  }
}
