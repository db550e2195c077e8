/**
 * What serving one request needs of its session (lib/fsd/requests.ts): the
 * connection, the store the request goes to, and the request's record from
 * begin to finish. Session implements it; requests.ts sees only this, so the
 * two do not import each other.
 */

import type { FileStore } from "../store/file_store.ts";
import type { Op } from "../store/log.ts";
import type { TransferParams } from "./negotiation.ts";
import type { PacketConn } from "./packet_conn.ts";

/** The request a session is serving, for its log lines. */
export interface RequestRecord {
  op: Op;
  name: string;
  started: number;
  bytes: number;
  params?: TransferParams;
}

/** A request's end, as logged. */
export type RequestOutcome =
  | { outcome: "ok"; kind: "file" | "listing" | "directory" }
  | { outcome: "refused"; code: number; message: string };

export interface RequestSession {
  readonly conn: PacketConn;
  /** The request being served, once begun. */
  request: RequestRecord | undefined;
  /** The server's whole store (before any account narrows it). */
  readonly context: { readonly store: FileStore };
  /** The store a request with `op` goes to (per account); ERR 7 before a needed login. */
  storeFor(op: Op): Promise<FileStore>;
  /** Starts the record of a request named `raw` (as the client sent it). */
  begin(op: Op, raw: Uint8Array): RequestRecord;
  /** Logs how the request ended and forgets it. */
  finish(outcome: RequestOutcome): void;
  /** Runs the checks before a transfer; a refusal is answered and logged, and gives undefined. */
  prepare<T>(checks: () => Promise<T>): Promise<T | undefined>;
}
