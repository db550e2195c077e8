/**
 * `fsd ls HOST PORT [DIR]`: print a directory listing.
 *
 * Permissions: --allow-net (to the server).
 */

import { formatListing } from "../lib/store/listing.ts";
import { writeAll } from "../lib/bytes/source_sink.ts";
import { type Command, expectPositionals, parseCommandLine } from "./cli.ts";
import { CLIENT_OPTIONS, CLIENT_OPTIONS_HELP, parseTarget, withClient } from "./connect.ts";

const USAGE = "fsd ls HOST PORT [DIR] [--timeout SECONDS]";

const help = `List a directory on an fsd server (the served directory itself by default).

Usage: ${USAGE}

Prints one line per entry, sorted by name:
  KIND SIZE MTIME NAME
KIND is f (file) or d (directory), SIZE is in bytes (0 for directories),
MTIME is UTC (YYYY-MM-DDTHH:MM:SSZ).

Options:
${CLIENT_OPTIONS_HELP}
  -h, --help         show this help

Permissions: --allow-net.

Examples:
  fsd ls 127.0.0.1 10000
  fsd ls lab1 10000 images`;

async function run(args: string[]): Promise<void> {
  const parsed = parseCommandLine(args, CLIENT_OPTIONS, help);
  if (!parsed) return;
  const { values, positionals } = parsed;
  expectPositionals(positionals, 2, 3, USAGE);
  const [host, portText, directory = ""] = positionals;
  const target = parseTarget(host, portText, values.timeout, values);
  const entries = await withClient(target, (client) => client.list(directory));
  await writeAll(Deno.stdout, new TextEncoder().encode(formatListing(entries)));
}

export const ls: Command = {
  name: "ls",
  summary: "list a directory",
  help,
  run,
};
