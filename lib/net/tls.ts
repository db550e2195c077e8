/**
 * TLS for fsd's TCP services (the listener is tls_listener.ts, certificate
 * fingerprints and pins tls_identity.ts): client connections verified against
 * CA certificates (or the system's roots) or pinned to one certificate's
 * SHA-256 fingerprint, the way SSH users trust a host key.
 *
 * Deno's TLS connections do not show the peer's certificate, so a pinned
 * connection goes through node:tls instead (which does, and lets us skip
 * the CA check that a pin replaces); the pin is checked right after the
 * handshake, before the connection is handed on, so nothing is sent to a
 * server whose certificate does not match.
 */

import type { Buffer } from "node:buffer";
import { closeQuietly, errorMessage } from "../bytes/source_sink.ts";
import { NodeSocketConn } from "./node_socket_conn.ts";
import type { StreamConn } from "./stream_conn.ts";
import { after } from "../timer.ts";
import { fingerprint, formatFingerprint, TlsError } from "./tls_identity.ts";

export interface TlsServerConfig {
  /** The certificate chain, PEM. */
  cert: string;
  /** The private key, PEM. */
  key: string;
}

export interface TlsClientConfig {
  /** CA certificates (PEM) trusted besides the system's roots. */
  caCerts?: string[];
  /** The SHA-256 of the server certificate's DER bytes; replaces the CA check. */
  pin?: Uint8Array;
}

/**
 * Connects with TLS and completes the handshake within `timeoutMs`: the
 * certificate checked against the CAs (and the host name), or against the
 * pin. Any failure is a TlsError saying why, and nothing has been sent.
 */
export async function connectTls(
  config: { hostname: string; port: number; timeoutMs: number } & TlsClientConfig,
): Promise<StreamConn> {
  // node:tls is loaded only here: a command that does not pin never pays for it.
  if (config.pin) {
    return await connectPinned(config, config.pin, (await import("node:tls")).default);
  }
  const { hostname, port, timeoutMs } = config;
  const abort = new AbortController();
  const timer = timeoutMs > 0 ? after(timeoutMs, () => abort.abort()) : undefined;
  let conn: Deno.TlsConn | undefined;
  try {
    // TCP first, without Nagle's delay (a TLS connection cannot set it later), then TLS on it.
    const tcp = await Deno.connect({ hostname, port, signal: abort.signal });
    tcp.setNoDelay(true);
    conn = await Deno.startTls(tcp, { hostname, caCerts: config.caCerts });
    abort.signal.addEventListener("abort", () => conn?.close(), { once: true });
    await conn.handshake();
    return conn;
  } catch (error) {
    closeQuietly(conn);
    if (abort.signal.aborted) throw new TlsError(`no TLS handshake within ${timeoutMs / 1000} s`);
    throw new TlsError(describeFailure(error), { cause: error });
  } finally {
    timer?.cancel();
  }
}

function describeFailure(error: unknown): string {
  const message = errorMessage(error);
  if (/CaUsedAsEndEntity/.test(message)) {
    return `the server's certificate is not trusted: ${message} (a self-signed certificate made with CA:TRUE: use --pin, or make it with basicConstraints=CA:FALSE)`;
  }
  if (/UnknownIssuer|certificate|NotValidForName|BadSignature|Expired/i.test(message)) {
    return `the server's certificate is not trusted: ${message} (see --ca and --pin)`;
  }
  if (/corrupt|InvalidContentType|unexpected|peer closed|reset/i.test(message)) {
    return `the TLS handshake failed: ${message} (is it a TLS port?)`;
  }
  return `the TLS handshake failed: ${message}`;
}

function connectPinned(
  config: { hostname: string; port: number; timeoutMs: number },
  pin: Uint8Array,
  tls: typeof import("node:tls"),
): Promise<StreamConn> {
  const { hostname, port, timeoutMs } = config;
  return new Promise((resolve, reject) => {
    const servername = /^[\d.]+$|:/.test(hostname) ? undefined : hostname;
    const socket = tls.connect({ host: hostname, port, servername, rejectUnauthorized: false });
    const fail = (message: string, cause?: unknown) => {
      timer?.cancel();
      socket.destroy();
      reject(new TlsError(message, cause === undefined ? undefined : { cause }));
    };
    const timer = timeoutMs > 0
      ? after(timeoutMs, () => fail(`no TLS handshake within ${timeoutMs / 1000} s`))
      : undefined;
    socket.once("error", (error: Error) => fail(describeFailure(error), error));
    socket.once("secureConnect", async () => {
      const raw = socket.getPeerCertificate(false)?.raw as Buffer | undefined;
      if (!raw) return fail("the server sent no certificate");
      const got = await fingerprint(new Uint8Array(raw));
      const wanted = formatFingerprint(pin);
      if (got !== wanted) {
        return fail(`certificate pin mismatch: the server's is ${got}, the pin is ${wanted}`);
      }
      timer?.cancel();
      socket.removeAllListeners("error");
      resolve(new NodeSocketConn(socket, { hostname, port }));
    });
  });
}
