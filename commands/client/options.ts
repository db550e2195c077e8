/** Connecting a client command to a server: the flags and errors every client command shares. */

import { FsdClient } from "../../lib/fsd/client.ts";
import { NotFsdError } from "../../lib/fsd/greeting.ts";
import { PeerError } from "../../lib/store/errors.ts";
import {
  BLKSIZE_RANGE,
  FSD1,
  type TransferParams,
  WINDOWSIZE_RANGE,
} from "../../lib/fsd/negotiation.ts";
import { errorMessage } from "../../lib/bytes/source_sink.ts";
import { ClientCapture } from "../../lib/capture/client_capture.ts";
import { isTraceMode } from "../../lib/capture/conn_trace.ts";
import { CommandError, parseCount, parsePort, parseSeconds, UsageError } from "../shared/cli.ts";
import {
  CLIENT_SECURITY_FLAGS,
  CLIENT_SECURITY_HELP,
  type ClientSecurity,
  type ClientSecurityValues,
  parseClientSecurity,
} from "./security.ts";

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
  --window BLOCKS    blocks in flight before an ACK, 1 to 65535 (default 16; 64 over TLS)
  --fsd1             plain fsd/1: 512-byte blocks, one at a time, no options`;

/** One connection for a whole job unless asked for more: "many files, one connection". */
export const DEFAULT_JOBS = 1;
export const MAX_JOBS = 16;

/** --jobs: how many files of a job move at once, each on its own connection. */
export const JOBS_OPTION = { jobs: { type: "string", short: "j" } } as const;

export const JOBS_OPTION_HELP =
  `  -j, --jobs N       with -o or -r: files moving at once, each on its own
                     connection, 1 to ${MAX_JOBS} (default ${DEFAULT_JOBS})`;

/** The --jobs value: a whole number from 1 to MAX_JOBS. */
export function parseJobs(text: string | undefined): number {
  if (text === undefined) return DEFAULT_JOBS;
  const jobs = parseCount(text, "--jobs", 1);
  if (jobs > MAX_JOBS) {
    throw new UsageError(`invalid --jobs: ${text}: out of range: expected 1 to ${MAX_JOBS}`);
  }
  return jobs;
}

/** The flags that turn TLS on (client_security.ts). */
type TlsFlags = { tls?: boolean; ca?: string; pin?: string };

/** The block and window size the flags ask for (plain fsd/1 with --fsd1). */
export function parseTransferParams(
  values: { blksize?: string; window?: string; fsd1?: boolean } & TlsFlags,
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
  // Over TLS each window's end costs more (its last record), so longer windows pay off.
  const defaultWindow = values.tls || values.ca !== undefined || values.pin !== undefined ? 64 : 16;
  const windowSize = values.window === undefined
    ? defaultWindow
    : parseCount(values.window, "--window", 1);
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

/** The longest --timeout: a day (timers cannot wait much beyond 24 days anyway). */
const MAX_TIMEOUT_SECONDS = 86400;

/** --timeout in milliseconds: 0.001 to a day; the message says the range. */
function parseTimeout(text: string | undefined): number {
  if (text === undefined) return 60_000;
  const seconds = /^-?\d+(\.\d+)?$/.test(text) ? Number(text) : NaN;
  if (!(seconds >= 0.001 && seconds <= MAX_TIMEOUT_SECONDS)) {
    const range = Number.isNaN(seconds) ? "" : "out of range: ";
    throw new UsageError(
      `invalid --timeout: ${text}: ${range}expected a number of seconds from 0.001 to ${MAX_TIMEOUT_SECONDS}`,
    );
  }
  return parseSeconds(text, "--timeout");
}

/** Checks HOST PORT and --timeout; throws UsageError when they make no sense. */
export function parseTarget(
  host: string,
  portText: string,
  timeoutText: string | undefined,
  watch: { trace?: string; pcap?: string } & ClientSecurityValues = {},
): Target {
  const port = parsePort(portText, 1);
  const timeoutMs = parseTimeout(timeoutText);
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
  let client: FsdClient;
  try {
    client = await FsdClient.connect(host, port, {
      timeoutMs,
      tap: target.capture?.tap(),
      tls: security?.tls,
    });
  } catch (error) {
    if (error instanceof PeerError) throw error;
    if (error instanceof NotFsdError) {
      throw new CommandError(`${host} port ${port}: ${error.message}`, { cause: error });
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
