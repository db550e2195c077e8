/**
 * One request of an fsd/1 session (RRQ, DRQ, WRQ): what it is for its log
 * line (name, bytes, negotiated parameters), the connection it is served
 * on, the store it goes to, and how a refusal before data moves is sent.
 * The session makes one per request; lib/fsd/requests.ts serves it. Both
 * import this file, and neither imports the other's caller.
 */

import { ErrorCode, ProtocolError } from "../store/errors.ts";
import type { Files } from "../store/access.ts";
import type { Op, ServerEvent } from "../store/log.ts";
import { encodeError } from "./codec.ts";
import type { TransferParams } from "./negotiation.ts";
import type { PacketConn } from "./packet_conn.ts";

/** What a request needs of the session it belongs to. */
export interface RequestScope {
  readonly id: number;
  readonly conn: PacketConn;
  /** The server's store (before any login narrows it). */
  readonly store: Files;
  /** The store the request `op` goes to (per account); ERR 7 before a needed login. */
  storeFor(op: Op): Promise<Files>;
  /** The account logged in, if any. */
  user(): string | undefined;
  /** The client's address. */
  address(): string;
  log(event: ServerEvent): void;
  /** The request has been logged: the session forgets it. */
  ended(request: Request): void;
}

/** A request's end, as logged. */
export type RequestOutcome =
  | { outcome: "ok"; kind: "file" | "listing" | "directory" }
  | { outcome: "refused"; code: number; message: string };

const lossy = new TextDecoder();

export class Request {
  readonly op: Op;
  /** The name as the client sent it, decoded for the log. */
  readonly name: string;
  readonly started = performance.now();
  bytes = 0;
  params: TransferParams | undefined;
  readonly #scope: RequestScope;

  /** The record of a request `op` for the name `raw` (as the client sent it). */
  constructor(scope: RequestScope, op: Op, raw: Uint8Array) {
    this.#scope = scope;
    this.op = op;
    this.name = lossy.decode(raw.subarray(0, 300));
  }

  get conn(): PacketConn {
    return this.#scope.conn;
  }

  /** The server's store (before any login narrows it). */
  get store(): Files {
    return this.#scope.store;
  }

  storeFor(op: Op): Promise<Files> {
    return this.#scope.storeFor(op);
  }

  /** The client's address. */
  get address(): string {
    return this.#scope.address();
  }

  /** Logs how the request ended; the session forgets it. */
  finish(outcome: RequestOutcome): void {
    const user = this.#scope.user();
    this.#scope.log({
      event: "request",
      id: this.#scope.id,
      op: this.op,
      name: this.name,
      bytes: this.bytes,
      ms: performance.now() - this.started,
      ...(this.params && { blksize: this.params.blockSize, windowsize: this.params.windowSize }),
      ...outcome,
      ...(user !== undefined && { user }),
    });
    this.#scope.ended(this);
  }

  /**
   * Runs the checks before a transfer. A refusal is sent as ERR and logged,
   * and the connection goes on (undefined is returned); anything else
   * propagates and ends the connection.
   */
  async prepare<T>(checks: () => Promise<T>): Promise<T | undefined> {
    try {
      return await checks();
    } catch (error) {
      if (!(error instanceof ProtocolError) || error.code === ErrorCode.ILLEGAL_OPERATION) {
        throw error;
      }
      await this.conn.write(encodeError(error.code, error.message));
      this.finish({ outcome: "refused", code: error.code, message: error.message });
      return undefined;
    }
  }
}
