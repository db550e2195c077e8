/**
 * `fsd serve DIR PORT`: serve one directory over fsd/1.
 *
 * Permissions: --allow-net, --allow-read=DIR --allow-write=DIR. Nothing else:
 * without --allow-sys=hostname the greeting names "fsd" (or --name).
 */

import { FileServer } from "../lib/server.ts";
import {
  type Command,
  expectPositionals,
  parseCommandLine,
  parsePort,
  parseSeconds,
} from "./cli.ts";

const USAGE = "fsd serve DIR PORT [--host ADDR] [--idle-timeout SECONDS] [--name NAME]";

const help = `Serve the files in DIR to fsd clients on TCP port PORT.

Usage: ${USAGE}

Clients may download and list anything inside DIR and upload new files into
it; nothing outside DIR can be reached, and no existing file is ever
replaced. PORT 0 lets the system choose a free port. Runs until SIGINT or
SIGTERM. Logs one line per connection, request and error on stdout.

Options:
  --host ADDR             address to listen on (default 0.0.0.0; :: for IPv6)
  --idle-timeout SECONDS  close connections silent for this long (default 60)
  --name NAME             the name in the greeting (default: the host name)
  -h, --help              show this help

Permissions: --allow-net --allow-read=DIR --allow-write=DIR
  (add --allow-sys=hostname for the host name in the greeting).

Examples:
  fsd serve ./files 10000
  fsd serve /srv/lab 6969 --host 127.0.0.1 --idle-timeout 10 --name lab1`;

async function run(args: string[]): Promise<void> {
  const parsed = parseCommandLine(args, {
    host: { type: "string" },
    "idle-timeout": { type: "string" },
    name: { type: "string" },
  }, help);
  if (!parsed) return;
  const { values, positionals } = parsed;
  expectPositionals(positionals, 2, 2, USAGE);
  const [root, portText] = positionals;
  const port = parsePort(portText);
  const idleTimeout = values["idle-timeout"] as string | undefined;

  let server: FileServer;
  try {
    server = await FileServer.start({
      root,
      port,
      hostname: values.host as string | undefined,
      idleTimeoutMs: idleTimeout === undefined
        ? undefined
        : parseSeconds(idleTimeout, "--idle-timeout"),
      name: values.name as string | undefined,
      log: (line) => console.log(line),
    });
  } catch (error) {
    if (error instanceof Deno.errors.AddrInUse || error instanceof Deno.errors.AddrNotAvailable) {
      throw new Error(`Unable to bind to port ${port}. Sorry! (${(error as Error).message})`);
    }
    throw error;
  }
  // Stop gracefully on a signal: listeners go in before the "listening" line,
  // so whoever waits for that line can stop the server at once.
  const stopped = new Promise<void>((resolve) => {
    const stop = () => {
      Deno.removeSignalListener("SIGINT", stop);
      Deno.removeSignalListener("SIGTERM", stop);
      console.log("shutting down");
      server.close().then(resolve);
    };
    Deno.addSignalListener("SIGINT", stop);
    Deno.addSignalListener("SIGTERM", stop);
  });
  console.log(`File server listening on ${server.addr.hostname} port ${server.addr.port}`);
  await stopped;
}

export const serve: Command = {
  name: "serve",
  summary: "serve a directory",
  help,
  run,
};
