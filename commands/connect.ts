/** Connecting a client command to a server: the flags and errors every client command shares. */

import { FsdClient } from "../lib/fsd/client.ts";
import { NotFsdError } from "../lib/fsd/greeting.ts";
import { OptionsRefusedError, PeerError } from "../lib/store/errors.ts";
import {
  BLKSIZE_RANGE,
  FSD1,
  type TransferParams,
  WINDOWSIZE_RANGE,
} from "../lib/fsd/negotiation.ts";
import { errorMessage } from "../lib/bytes/source_sink.ts";
import { CommandError, parseCount, parsePort, parseSeconds, UsageError } from "./cli.ts";

/** Flags every client command takes. */
export const CLIENT_OPTIONS = {
  timeout: { type: "string" },
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
  `  --timeout SECONDS  give up when the server says nothing for this long (default 60)`;

/** Where a client command connects, checked before the command does anything else. */
export interface Target {
  host: string;
  port: number;
  timeoutMs: number;
}

/** The longest --timeout: a day (timers cannot wait much beyond 24 days anyway). */
const MAX_TIMEOUT_SECONDS = 86400;

/** Checks HOST PORT and --timeout; throws UsageError when they make no sense. */
export function parseTarget(
  host: string,
  portText: string,
  timeoutText: string | undefined,
): Target {
  const port = parsePort(portText);
  if (port === 0) throw new UsageError(`invalid port: 0: expected a number from 1 to 65535`);
  if (timeoutText === undefined) return { host, port, timeoutMs: 60_000 };
  const seconds = /^\d+(\.\d+)?$/.test(timeoutText) ? Number(timeoutText) : NaN;
  if (!(seconds >= 0.001 && seconds <= MAX_TIMEOUT_SECONDS)) {
    throw new UsageError(
      `invalid --timeout: ${timeoutText}: expected a number of seconds from 0.001 to ${MAX_TIMEOUT_SECONDS}`,
    );
  }
  const timeoutMs = parseSeconds(timeoutText, "--timeout");
  return { host, port, timeoutMs };
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

/** Connects to the target; the errors say where and what went wrong. */
export async function connectClient(target: Target): Promise<FsdClient> {
  const { host, port, timeoutMs } = target;
  try {
    return await FsdClient.connect(host, port, { timeoutMs });
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
