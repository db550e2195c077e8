/**
 * Connecting a client command to an fsd/1 server: HOST PORT, the transfer
 * the flags ask for, and the errors of connecting (the flags themselves:
 * client_flags.ts, which a TFTP or HTTP command loads without this).
 */

import { FsdClient } from "../../lib/fsd/client.ts";
import { NotFsdError } from "../../lib/fsd/greeting.ts";
import { PeerError } from "../../lib/store/errors.ts";
import { BLKSIZE_RANGE, FSD1, type TransferParams } from "../../lib/fsd/negotiation.ts";
import { errorMessage } from "../../lib/bytes/source_sink.ts";
import type { ClientCapture } from "../../lib/capture/client_capture.ts";
import type { TraceMode } from "../../lib/capture/trace_modes.ts";
import { CommandError, UsageError } from "../shared/cli.ts";
import { requireOwnAccess } from "../shared/local_access.ts";
import { parsePort } from "../shared/values.ts";
import { type ClientSecurity, type ClientSecurityValues, parseClientSecurity } from "./security.ts";

/** The port an fsd:// URL without one means: the one every example and the dissector use. */
export const FSD_URL_PORT = 10000;

/**
 * The arguments as HOST PORT ...: also accepted are `HOST:PORT` (`[ADDR]:PORT`
 * for IPv6) and `fsd://HOST[:PORT][/PATH]`, as tftp:// is; PATH is the
 * remote name (put: after LOCAL, where REMOTE goes).
 */
export function targetWords(positionals: string[], command: "get" | "put" | "ls"): string[] {
  const [first, ...rest] = positionals;
  if (first === undefined) return positionals;
  const url = /^fsd:\/\/(\[[^\]]+\]|[^/:\[\]]+)(?::([^/]*))?(?:\/(.*))?$/i.exec(first);
  if (/^fsd:\/\//i.test(first) && !url) {
    throw new UsageError(`invalid fsd URL: ${first}: expected fsd://HOST[:PORT]/PATH`);
  }
  const pair = url ? undefined : /^(\[[^\]]+\]|[^:\s/\[\]]+):(\d+)$/.exec(first);
  if (!url && !pair) return positionals;
  const host = (url ?? pair)![1].replace(/^\[(.*)\]$/, "$1");
  const port = url ? url[2] || `${FSD_URL_PORT}` : pair![2];
  const path = url?.[3] ? [decodeURIComponent(url[3])] : [];
  if (command === "put" && path.length > 0) {
    return [host, port, ...rest.slice(0, 1), ...path, ...rest.slice(1)];
  }
  return [host, port, ...path, ...rest];
}

/** The flags that turn TLS on (security.ts). */
type TlsFlags = { tls?: boolean; ca?: string; pin?: string };

/** The block and window size the flags ask for (plain fsd/1 with --fsd1). */
export function parseTransferParams(
  values: { blksize?: number; window?: number; fsd1?: boolean } & TlsFlags,
): TransferParams {
  if (values.fsd1) {
    if (values.blksize !== undefined || values.window !== undefined) {
      throw new UsageError("--fsd1 takes no --blksize or --window");
    }
    return FSD1;
  }
  // Over TLS each window's end costs more (its last record), so longer windows pay off.
  const defaultWindow = values.tls || values.ca !== undefined || values.pin !== undefined ? 64 : 16;
  return {
    blockSize: values.blksize ?? BLKSIZE_RANGE[1],
    windowSize: values.window ?? defaultWindow,
  };
}

/**
 * HOST PORT and the names after them, and the transfer the flags ask for,
 * of get and put (`usage` is the one-file form).
 */
export function parseJob(
  positionals: string[],
  values: Parameters<typeof parseTarget>[2] & Parameters<typeof parseTransferParams>[0],
  usage: string,
): { target: Target; params: TransferParams; names: string[] } {
  if (positionals.length < 3) {
    throw new UsageError(`missing arguments: usage: ${usage} (see --help for -o and -r)`);
  }
  const [host, portText, ...names] = positionals;
  return {
    target: parseTarget(host, portText, values),
    params: parseTransferParams(values),
    names,
  };
}

/** Where a client command connects, checked before the command does anything else. */
export interface Target {
  host: string;
  port: number;
  timeoutMs: number;
  /** Traces and records the connections (--trace, --pcap). */
  capture?: () => Promise<ClientCapture>;
  /** TLS and the login (--tls, --ca, --pin, --user), read when first connecting. */
  security?: () => Promise<ClientSecurity>;
}

/** Checks HOST PORT; the client flags are checked already. */
export function parseTarget(
  host: string,
  portText: string,
  values: { timeout: number; trace?: TraceMode; pcap?: string } & ClientSecurityValues,
): Target {
  const port = parsePort(portText, 1);
  const { timeout: timeoutMs, trace, pcap } = values;
  // The tracers and the pcap writer are loaded only with --trace or --pcap, once a job.
  let made: Promise<ClientCapture> | undefined;
  const capture = trace === undefined && pcap === undefined ? undefined : () => {
    if (pcap !== undefined) requireOwnAccess(pcap, "write");
    return made ??= import("../../lib/capture/client_capture.ts").then(({ ClientCapture }) =>
      new ClientCapture({
        pcapPath: pcap,
        serverPort: port,
        trace,
        print: (line) => console.error(line),
      })
    );
  };
  return { host, port, timeoutMs, capture, security: parseClientSecurity(values) };
}

/** Connects to the target, runs `use` with the client, and always closes it. */
export async function withClient<T>(
  target: Target,
  use: (client: FsdClient) => Promise<T>,
): Promise<T> {
  const client = await connectClient(target);
  try {
    return await use(client);
  } finally {
    client.close();
  }
}

/** Connects to the target and logs in if asked; the errors say where and what went wrong. */
export async function connectClient(target: Target): Promise<FsdClient> {
  const { host, port, timeoutMs } = target;
  const security = await target.security?.();
  // Opened before connecting: a capture file that cannot be written is not a connection's failure.
  const tap = (await target.capture?.())?.tap();
  let client: FsdClient;
  try {
    client = await FsdClient.connect(host, port, { timeoutMs, tap, tls: security?.tls });
  } catch (error) {
    if (error instanceof PeerError) throw error;
    if (error instanceof NotFsdError) {
      // A TLS server says nothing until the client's hello: the silence a plain client meets there.
      const hint = !security?.tls && /no fsd greeting/.test(error.message)
        ? ": is it a TLS port? (add --tls, --ca FILE or --pin SHA256:...)"
        : "";
      throw new CommandError(`${host} port ${port}: ${error.message}${hint}`, { cause: error });
    }
    const reason = errorMessage(error);
    throw new CommandError(
      `cannot connect to ${host} port ${port}: ${reason.charAt(0).toLowerCase()}${reason.slice(1)}`,
      { cause: error },
    );
  }
  try {
    if (security?.login) await client.login(security.login.user, security.login.password);
  } catch (error) {
    client.close();
    throw error;
  }
  return client;
}
