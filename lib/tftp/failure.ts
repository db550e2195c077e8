/**
 * How a TFTP transfer that failed ends, on whichever thread it ran: what
 * the peer is told, and what the log line says.
 */

import { errorMessage } from "../bytes/source_sink.ts";
import { ErrorCode, PeerError, ProtocolError } from "../store/errors.ts";
import type { DatagramChannel } from "./channel.ts";
import { encodeError } from "./codec.ts";

/** Stops a transfer for the server's shutdown: its peer hears ERROR 0, its channel closes. */
export function shutDown(channel: DatagramChannel): void {
  channel.send(encodeError(ErrorCode.OTHER, "server shutting down"));
  channel.close();
}

/** How a transfer that failed ends: what its log line says. */
export interface Failure {
  reason: "error" | "peer-error" | "timeout" | "shutdown" | "failure";
  code?: number;
  message?: string;
}

/**
 * What a failed transfer tells its peer (ERROR, unless the peer's own
 * ERROR, a timeout or the shutdown ended it) and how it is logged.
 */
export function settleFailure(
  error: unknown,
  channel: DatagramChannel,
  stopping: boolean,
): Failure {
  if (stopping && channel.closed) return { reason: "shutdown" };
  if (error instanceof PeerError) {
    return { reason: "peer-error", code: error.code, message: error.message };
  }
  if (error instanceof Deno.errors.TimedOut) return { reason: "timeout", message: error.message };
  const coded = error instanceof ProtocolError
    ? error
    : new ProtocolError(ErrorCode.OTHER, errorMessage(error));
  channel.send(encodeError(coded.code, coded.message));
  const reason = error instanceof ProtocolError ? "error" : "failure";
  return { reason, code: coded.code, message: coded.message };
}
