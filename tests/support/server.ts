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

/** An in-process server over a temporary directory, its log awaitable: fsd/1's or TFTP's. */
export interface LoggedServer<S> extends AsyncDisposable {
  server: S;
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

export type TestServer = LoggedServer<FileServer>;

/**
 * Starts a server with `start` (given a fresh temporary directory and the
 * log to write to) and keeps its events; `root` is the directory it serves
 * when the caller named another. Disposing closes the server, then removes
 * the directory.
 */
export async function startLogged<S extends { addr: { port: number }; close(): Promise<void> }>(
  root: string | undefined,
  start: (dir: string, log: (event: ServerEvent) => void) => Promise<S>,
): Promise<LoggedServer<S>> {
  const dir = await tempDir();
  const { logs, events, log, waitForLog } = eventLog();
  const server = await start(dir.path, log).catch(async (error) => {
    await dir[Symbol.asyncDispose]();
    throw error;
  });
  return {
    server,
    root: root ?? dir.path,
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

/** A server on 127.0.0.1 port 0 over a fresh temporary directory. */
export function startServer(options: Partial<ServerConfig> = {}): Promise<TestServer> {
  return startLogged(
    options.root,
    (root, log) =>
      FileServer.start({ root, port: 0, hostname: "127.0.0.1", name: "test", ...options, log }),
  );
}

/** How many connections a server's log lines tell of. */
export const connections = (logs: string[]) =>
  logs.filter((l) => / connection from /.test(l)).length;
