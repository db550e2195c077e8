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
import type { ClientCapture } from "../../lib/capture/client_capture.ts";
import { isTraceMode, type TraceMode } from "../../lib/capture/trace_modes.ts";
import { CommandError, UsageError } from "../shared/cli.ts";
import { requireOwnAccess } from "../shared/local_access.ts";
import type { Flags } from "../shared/command.ts";
import { custom, integer, parsePort, seconds } from "../shared/values.ts";
import {
  CLIENT_SECURITY_FLAGS,
  type ClientSecurity,
  type ClientSecurityValues,
  parseClientSecurity,
} from "./security.ts";

/** --trace MODE: how a connection is shown on stderr. */
export const traceMode = custom((text, flag): TraceMode => {
  if (!isTraceMode(text)) {
    throw new UsageError(`invalid ${flag}: ${text}: expected fsd, ladder, hex, text or none`);
  }
  return text;
});

/** The longest --timeout: a day (timers cannot wait much beyond 24 days anyway). */
const MAX_TIMEOUT_SECONDS = 86400;

/** Flags every client command takes. */
export const CLIENT_FLAGS = {
  timeout: {
    arg: "SECONDS",
    value: seconds({ min: 0.001, max: MAX_TIMEOUT_SECONDS }),
    default: "60",
    help: "give up when the server says nothing for this long",
  },
  trace: {
    arg: "MODE",
    value: traceMode,
    side: ["fsd", "tftp"],
    help: `show the connection on stderr: fsd (one line per packet, as
fsd proxy --trace fsd), ladder (a ladder diagram), hex, text;
over TFTP each datagram, with the same names (DAT 7, ACK 7)`,
  },
  pcap: {
    arg: "FILE",
    permission: "--allow-write=FILE",
    help: `record the connection to FILE (pcap, for Wireshark with
'fsd wireshark'; over TFTP each datagram, on its real ports)`,
  },
  ...CLIENT_SECURITY_FLAGS,
} as const satisfies Flags;

/** Flags of the commands that move files: how to move them. */
export const TRANSFER_FLAGS = {
  blksize: {
    arg: "BYTES",
    value: integer(...BLKSIZE_RANGE),
    help: `block size to ask for, ${BLKSIZE_RANGE[0]} to ${BLKSIZE_RANGE[1]} (default ${
      BLKSIZE_RANGE[1]
    })`,
  },
  window: {
    arg: "BLOCKS",
    value: integer(...WINDOWSIZE_RANGE),
    help: `blocks in flight before an ACK, ${WINDOWSIZE_RANGE[0]} to ${
      WINDOWSIZE_RANGE[1]
    } (default 16; 64 over TLS)`,
  },
  fsd1: { type: "boolean", help: "plain fsd/1: 512-byte blocks, one at a time, no options" },
} as const satisfies Flags;

export const MAX_JOBS = 16;

/**
 * Files of an fsd/1 job (-o, -r) moving at once by default, each lane on
 * its own connection: measured (docs/PERFORMANCE.md, "Many files"), four
 * lanes took a third to half less time than one for 100 x 1 KiB and for
 * 1,000 x 64 KiB, and eight no less than four. fsd/1 is one request at a time
 * per connection, so lanes are how a job overlaps one file's round trips and
 * file-system calls with another's. TFTP jobs keep one transfer at a time.
 * Downloads now also go several to a connection where the server pipelines
 * reads (JobConnection.downloadLanes); four connections still
 * measured best with that (docs/PERFORMANCE.md).
 */
export const DEFAULT_JOBS = 4;

/** --jobs: how many connections a job's files move on at once (get: several downloads on each). */
export const JOBS_FLAG = {
  jobs: {
    short: "j",
    arg: "N",
    value: integer(1, MAX_JOBS),
    help: `with -o or -r: connections moving files at once (TFTP:
transfers), 1 to ${MAX_JOBS} (default ${DEFAULT_JOBS}; TFTP 1); get keeps up to 8
downloads under way on each`,
  },
} as const satisfies Flags;

/** --jobs N: with -o or -r only; a one-file job moves on one connection. */
export function parseJobs(jobs: number | undefined, many: boolean): number {
  if (jobs !== undefined && !many) {
    throw new UsageError("--jobs takes -o or -r: one file moves on one connection");
  }
  return jobs ?? DEFAULT_JOBS;
}

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
