/** Connecting a client command to a server: the flags and errors every client command shares. */

import { FsdClient } from "../lib/fsd/client.ts";
import { OptionsRefusedError, PeerError } from "../lib/store/errors.ts";
import {
  BLKSIZE_RANGE,
  FSD1,
  type TransferParams,
  WINDOWSIZE_RANGE,
} from "../lib/fsd/negotiation.ts";
import { errorMessage } from "../lib/bytes/source_sink.ts";
import { ClientCapture } from "../lib/capture/client_capture.ts";
import { isTraceMode } from "../lib/capture/conn_trace.ts";
import { CommandError, parseCount, parsePort, parseSeconds, UsageError } from "./cli.ts";
import {
  CLIENT_SECURITY_FLAGS,
  CLIENT_SECURITY_HELP,
  type ClientSecurity,
  type ClientSecurityValues,
  parseClientSecurity,
} from "./client_security.ts";

/** Flags every client command takes. */
export const CLIENT_OPTIONS = {
  timeout: { type: "string" },
  pcap: { type: "string" },
  trace: { type: "string" },
  ...CLIENT_SECURITY_FLAGS,
} as const;

/** Flags of the commands that move files: how to move them. */
export const TRANSFER_OPTIONS = {
  blksize: { type: "string" },
  window: { type: "string" },
  fsd1: { type: "boolean" },
} as const;

export const TRANSFER_OPTIONS_HELP =
  `  --blksize BYTES    block size to ask for, 8 to 65464 (default 65464)
  --window BLOCKS    blocks in flight before an ACK, 1 to 65535 (default 16)
  --fsd1             plain fsd/1: 512-byte blocks, one at a time, no options`;

/** The block and window size the flags ask for (plain fsd/1 with --fsd1). */
export function parseTransferParams(
  values: { blksize?: string; window?: string; fsd1?: boolean },
): TransferParams {
  if (values.fsd1) {
    if (values.blksize !== undefined || values.window !== undefined) {
      throw new UsageError("--fsd1 takes no --blksize or --window");
    }
    return FSD1;
  }
  const blockSize = values.blksize === undefined
    ? BLKSIZE_RANGE[1]
    : parseCount(values.blksize, "--blksize", 8);
  const windowSize = values.window === undefined ? 16 : parseCount(values.window, "--window", 1);
  if (blockSize > BLKSIZE_RANGE[1]) {
    throw new UsageError(`invalid --blksize: ${blockSize}: at most ${BLKSIZE_RANGE[1]}`);
  }
  if (windowSize > WINDOWSIZE_RANGE[1]) {
    throw new UsageError(`invalid --window: ${windowSize}: at most ${WINDOWSIZE_RANGE[1]}`);
  }
  return { blockSize, windowSize };
}

export const CLIENT_OPTIONS_HELP =
  `  --timeout SECONDS  give up when the server says nothing for this long (default 60)
  --trace MODE       show the connection on stderr: fsd (one line per packet, as
                     fsd proxy --trace fsd), ladder (a ladder diagram), hex, text
  --pcap FILE        record the connection to FILE (pcap, for Wireshark with
                     'fsd wireshark'; needs --allow-write=FILE)
${CLIENT_SECURITY_HELP}`;

/** Where a client command connects, checked before the command does anything else. */
export interface Target {
  host: string;
  port: number;
  timeoutMs: number;
  /** Traces and records the connections (--trace, --pcap). */
  capture?: ClientCapture;
  /** TLS and the login (--tls, --ca, --pin, --user), read when first connecting. */
  security?: () => Promise<ClientSecurity>;
}

/** Checks HOST PORT and --timeout; throws UsageError when they make no sense. */
export function parseTarget(
  host: string,
  portText: string,
  timeoutText: string | undefined,
  watch: { trace?: string; pcap?: string } & ClientSecurityValues = {},
): Target {
  const port = parsePort(portText);
  const timeoutMs = timeoutText === undefined ? 60_000 : parseSeconds(timeoutText, "--timeout");
  const { trace, pcap } = watch;
  if (trace !== undefined && !isTraceMode(trace)) {
    throw new UsageError(`invalid --trace: ${trace}: expected fsd, ladder, hex, text or none`);
  }
  const capture = trace === undefined && pcap === undefined ? undefined : new ClientCapture({
    pcapPath: pcap,
    serverPort: port,
    trace,
    print: (line) => console.error(line),
  });
  return { host, port, timeoutMs, capture, security: parseClientSecurity(watch) };
}

/** Connects to the target, runs `use` with the client, and always closes it. */
export async function withClient<T>(
  target: Target,
  use: (client: FsdClient) => Promise<T>,
): Promise<T> {
  const { host, port, timeoutMs } = target;
  const security = await target.security?.();
  let client: FsdClient;
  try {
    client = await FsdClient.connect(host, port, {
      timeoutMs,
      tap: target.capture?.tap(),
      tls: security?.tls,
    });
  } catch (error) {
    if (error instanceof PeerError) throw error;
    const reason = errorMessage(error);
    throw new CommandError(
      `cannot connect to ${host} port ${port}: ${reason.charAt(0).toLowerCase()}${reason.slice(1)}`,
      { cause: error },
    );
  }
  try {
    if (security?.login) await client.login(security.login.user, security.login.password);
    return await use(client);
  } finally {
    client.close();
  }
}

/**
 * Like withClient, for a transfer with `params`. If the server turns down the
 * options extension (a server that knows only fsd/1), the transfer is tried
 * once more in plain fsd/1 on a new connection; nothing moved the first time.
 */
export async function withTransfer<T>(
  target: Target,
  params: TransferParams,
  use: (client: FsdClient, params: TransferParams) => Promise<T>,
): Promise<T> {
  try {
    return await withClient(target, (client) => use(client, params));
  } catch (error) {
    if (!(error instanceof OptionsRefusedError) || params === FSD1) throw error;
    if (Deno.stderr.isTerminal()) {
      console.error("fsd: the server speaks only fsd/1; using 512-byte blocks");
    }
    return await withClient(target, (client) => use(client, FSD1));
  }
}
