/** Test helpers for an in-process fsd/1 server: started on 127.0.0.1 port 0 over a temporary directory, its log awaitable, and the library's client on it. */

import { FsdClient } from "../../lib/fsd/client.ts";
import { FileServer, type ServerConfig } from "../../lib/fsd/server.ts";
import { formatText, type ServerEvent } from "../../lib/store/log.ts";
import { tempDir } from "./files.ts";

/** Connects the library's client to a server on 127.0.0.1, runs `use`, and always closes it. */
export async function withClient<T>(
  port: number,
  use: (client: FsdClient) => Promise<T>,
): Promise<T> {
  const client = await FsdClient.connect("127.0.0.1", port);
  try {
    return await use(client);
  } finally {
    client.close();
  }
}

export interface TestServer extends AsyncDisposable {
  server: FileServer;
  root: string;
  port: number;
  /** The server's events as text lines, and as they came. */
  logs: string[];
  events: ServerEvent[];
  /** Resolves with the first log line (past or future) matching `pattern`. */
  waitForLog(pattern: RegExp): Promise<string>;
}

/** A server's events as they came and as text lines, with a way to wait for one. */
export function eventLog() {
  const logs: string[] = [];
  const events: ServerEvent[] = [];
  const waiters: { pattern: RegExp; resolve: (line: string) => void }[] = [];
  return {
    logs,
    events,
    log(event: ServerEvent) {
      events.push(event);
      const line = formatText(event);
      logs.push(line);
      for (const waiter of [...waiters]) {
        if (waiter.pattern.test(line)) {
          waiters.splice(waiters.indexOf(waiter), 1);
          waiter.resolve(line);
        }
      }
    },
    /** Resolves with the first line (past or future) matching `pattern`. */
    waitForLog(pattern: RegExp): Promise<string> {
      const seen = logs.find((line) => pattern.test(line));
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve) => waiters.push({ pattern, resolve }));
    },
  };
}

/** A server on 127.0.0.1 port 0 over a fresh temporary directory. */
export async function startServer(options: Partial<ServerConfig> = {}): Promise<TestServer> {
  const dir = await tempDir();
  const { logs, events, log, waitForLog } = eventLog();
  const server = await FileServer.start({
    root: dir.path,
    port: 0,
    hostname: "127.0.0.1",
    name: "test",
    ...options,
    log,
  });
  return {
    server,
    root: options.root ?? dir.path,
    port: server.addr.port,
    logs,
    events,
    waitForLog,
    async [Symbol.asyncDispose]() {
      await server.close();
      await dir[Symbol.asyncDispose]();
    },
  };
}
