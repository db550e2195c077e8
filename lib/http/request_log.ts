/**
 * What the log says of an HTTP request and of a connection a deadline cut:
 * the same events as fsd/1's (lib/store/log.ts), with HTTP's client named.
 */

import { plainAddress } from "../net/ip.ts";
import type { ServerEvent } from "../store/log.ts";
import type { Handled } from "./routes.ts";
import { ConnectionCut } from "./wire.ts";

/** The line of a connection a deadline cut, with the client's address. */
export function cutEvent(id: number, peer: Deno.NetAddr, reason: string): ServerEvent {
  return {
    event: "close",
    id,
    reason: "timeout",
    message: `${reason} (HTTP client ${plainAddress(peer.hostname)} port ${peer.port})`,
  };
}

/**
 * The line of request `id` from `address`, answered with `handled` in `ms`;
 * `failure` is what stopped its response (a deadline, the client gone).
 */
export function requestEvent(
  id: number,
  address: string,
  ms: number,
  handled: Handled,
  failure: unknown,
): ServerEvent {
  const status = handled.response.status;
  const { op, name } = handled;
  if (failure instanceof ConnectionCut) {
    const message = `${failure.message} (HTTP client ${plainAddress(address)})`;
    return { event: "close", id, reason: "timeout", op, name, bytes: handled.bytes(), ms, message };
  }
  if (failure !== undefined && status < 400) {
    const message = "the client went away before the response was sent";
    return { event: "close", id, reason: "client", op, name, bytes: handled.bytes(), ms, message };
  }
  const base = {
    event: "request" as const,
    id,
    op,
    name,
    address,
    transport: "http" as const,
    ...(handled.user && { user: handled.user }),
  };
  if (status >= 400) {
    return { ...base, outcome: "refused", bytes: 0, ms, code: status, message: handled.message };
  }
  return { ...base, outcome: "ok", kind: handled.kind, bytes: handled.bytes(), ms, status };
}
