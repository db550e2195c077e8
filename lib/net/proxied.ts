/**
 * Connections that come through a load balancer speaking the PROXY
 * protocol: only from trusted addresses, and the header names the real
 * client, which then stands for the connection in logs and limits.
 */

import { type Cidr, formatIp, inCidr, parseCidr, parseIp, unmapIpv4 } from "./ip.ts";
import { type Endpoint, ProxyHeaderError, readProxyHeader } from "./proxy_header.ts";
import type { StreamConn } from "./stream_conn.ts";
import { orAfter } from "../timer.ts";

export interface ProxyProtocolConfig {
  /** Who may send a header: `ADDR[/BITS]` ranges, already parsed. */
  trusted: Cidr[];
  /** How long the header may take to arrive (default 5 s). */
  timeoutMs?: number;
}

export const DEFAULT_PROXY_HEADER_TIMEOUT_MS = 5000;

/** Who a connection is for: the client, and the proxy it came through (when it did). */
export type Peer =
  | { ok: true; client: Endpoint; proxy?: Endpoint }
  | { ok: false; reason: string };

/** Parses `--trusted-proxy` values; throws with the bad one named. */
export function parseTrusted(values: string[]): Cidr[] {
  return values.map((value) => {
    const range = parseCidr(value);
    if (!range) throw new Error(`invalid address range: ${value}: expected ADDR or ADDR/BITS`);
    return range;
  });
}

/**
 * Without `config`, the connection's own peer. With it: refuses untrusted
 * addresses, then reads the PROXY header (taking no byte past it) and
 * returns the client it names; a malformed, missing or slow header is a
 * refusal with the reason, never a throw.
 */
export async function resolvePeer(conn: StreamConn, config?: ProxyProtocolConfig): Promise<Peer> {
  const own = conn.remoteAddr as Deno.NetAddr;
  const direct = { hostname: own.hostname, port: own.port };
  if (!config) return { ok: true, client: direct };
  if (!config.trusted.some((range) => inCidr(own.hostname, range))) {
    return { ok: false, reason: `not a trusted proxy: ${own.hostname} (see --trusted-proxy)` };
  }
  const timeoutMs = config.timeoutMs ?? DEFAULT_PROXY_HEADER_TIMEOUT_MS;
  // A slow header is refused without closing the connection, so the refusal can still be sent;
  // the read left waiting fails once the caller closes it.
  const reading = readProxyHeader(conn);
  reading.catch(() => {});
  try {
    const header = await orAfter(reading, timeoutMs, "late" as const);
    if (header === "late") return { ok: false, reason: `no PROXY header within ${timeoutMs} ms` };
    if (header.command === "local") return { ok: true, client: direct };
    return { ok: true, client: header.source, proxy: direct };
  } catch (error) {
    if (error instanceof ProxyHeaderError) return { ok: false, reason: error.message };
    return { ok: false, reason: `reading the PROXY header: ${(error as Error).message}` };
  }
}

/**
 * Who an HTTP request is for: from a trusted proxy (`trusted`, the
 * --trusted-proxy ranges), the last address of its X-Forwarded-For header
 * (the one that proxy appended; those before it are the client's own word);
 * otherwise, or when that entry is no address, the connection's own peer.
 */
export function forwardedClient(
  remote: string,
  forwardedFor: string | null,
  trusted: Cidr[] | undefined,
): string {
  if (!forwardedFor || !trusted?.some((range) => inCidr(remote, range))) return remote;
  const last = forwardedFor.slice(forwardedFor.lastIndexOf(",") + 1).trim();
  const bytes = parseIp(last);
  return bytes ? formatIp(unmapIpv4(bytes)) : remote;
}
