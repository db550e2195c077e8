/**
 * Connection limits kept for a whole server whose connections are accepted
 * by several workers: one ConnectionLimits in the coordinator (the parent),
 * asked by each worker over a message channel. The coordinator remembers
 * what each worker holds, so a worker that dies gives its share back.
 */

import type { ConnectionLimits } from "./limits.ts";

export type Admission = ReturnType<ConnectionLimits["admit"]>;

/** What a server needs of its limits: ConnectionLimits in one process, RemoteLimits in a worker. */
export interface Limits {
  admit(address: string): Admission | Promise<Admission>;
  release(address: string): void;
}

/** Worker to coordinator. */
export type LimitsRequest =
  | { type: "admit"; seq: number; address: string }
  | { type: "release"; address: string };

/** Coordinator to worker. */
export interface LimitsReply {
  type: "admitted";
  seq: number;
  admission: Admission;
}

/** The worker's side: each admission is a question to the coordinator. */
export class RemoteLimits implements Limits {
  #send: (request: LimitsRequest) => void;
  #pending = new Map<number, (admission: Admission) => void>();
  #seq = 0;

  constructor(send: (request: LimitsRequest) => void) {
    this.#send = send;
  }

  admit(address: string): Promise<Admission> {
    const seq = ++this.#seq;
    return new Promise((resolve) => {
      this.#pending.set(seq, resolve);
      this.#send({ type: "admit", seq, address });
    });
  }

  release(address: string): void {
    this.#send({ type: "release", address });
  }

  /** An answer from the coordinator. */
  receive(reply: LimitsReply): void {
    const resolve = this.#pending.get(reply.seq);
    this.#pending.delete(reply.seq);
    resolve?.(reply.admission);
  }
}

/** The coordinator's side: one set of limits for every worker. */
export class LimitsCoordinator {
  readonly limits: ConnectionLimits;
  /** Per worker: the addresses of the connections it holds, with counts. */
  #held = new Map<number, Map<string, number>>();

  constructor(limits: ConnectionLimits) {
    this.limits = limits;
  }

  /** Handles a worker's request; returns the reply to send it, if any. */
  handle(worker: number, request: LimitsRequest): LimitsReply | undefined {
    const held = this.#held.get(worker) ?? new Map<string, number>();
    this.#held.set(worker, held);
    if (request.type === "admit") {
      const admission = this.limits.admit(request.address);
      if (admission.admitted) held.set(request.address, (held.get(request.address) ?? 0) + 1);
      return { type: "admitted", seq: request.seq, admission };
    }
    const count = held.get(request.address) ?? 0;
    if (count === 0) return undefined; // not this worker's: ignore rather than miscount
    if (count === 1) held.delete(request.address);
    else held.set(request.address, count - 1);
    this.limits.release(request.address);
    return undefined;
  }

  /** A worker died: every connection it held is released. */
  forget(worker: number): void {
    for (const [address, count] of this.#held.get(worker) ?? []) {
      for (let i = 0; i < count; i++) this.limits.release(address);
    }
    this.#held.delete(worker);
  }
}
