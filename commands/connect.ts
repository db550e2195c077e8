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

/** Connects to HOST PORT, runs `use` with the client, and always closes it. */
export async function withClient<T>(
  host: string,
  portText: string,
  timeoutText: string | undefined,
  use: (client: FsdClient) => Promise<T>,
): Promise<T> {
  const port = parsePort(portText);
  const timeoutMs = timeoutText === undefined ? 60_000 : parseSeconds(timeoutText, "--timeout");
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
