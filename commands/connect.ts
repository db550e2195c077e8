/** Connecting a client command to a server: the flags and errors every client command shares. */

import { FsdClient } from "../lib/client.ts";
import { PeerError } from "../lib/errors.ts";
import { parsePort, parseSeconds } from "./cli.ts";

/** Flags every client command takes. */
export const CLIENT_OPTIONS = {
  timeout: { type: "string" },
} as const;

export const CLIENT_OPTIONS_HELP =
  `  --timeout SECONDS  give up when the server says nothing for this long (default 60)`;

/** Where a client command connects, checked before the command does anything else. */
export interface Target {
  host: string;
  port: number;
  timeoutMs: number;
}

/** Checks HOST PORT and --timeout; throws UsageError when they make no sense. */
export function parseTarget(host: string, portText: string, timeoutText: unknown): Target {
  const port = parsePort(portText);
  const timeoutMs = timeoutText === undefined
    ? 60_000
    : parseSeconds(String(timeoutText), "--timeout");
  return { host, port, timeoutMs };
}

/** Connects to the target, runs `use` with the client, and always closes it. */
export async function withClient<T>(
  target: Target,
  use: (client: FsdClient) => Promise<T>,
): Promise<T> {
  const { host, port, timeoutMs } = target;
  let client: FsdClient;
  try {
    client = await FsdClient.connect(host, port, { timeoutMs });
  } catch (error) {
    if (error instanceof PeerError) throw error;
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(
      `cannot connect to ${host} port ${port}: ${reason.charAt(0).toLowerCase()}${reason.slice(1)}`,
    );
  }
  try {
    return await use(client);
  } finally {
    client.close();
  }
}
