/**
 * `fsd ls HOST PORT [DIR]`: print a directory listing.
 *
 * Permissions: --allow-net (to the server).
 */

import { entryJson, formatListing, type ListingEntry } from "../lib/store/listing.ts";
import { writeAll } from "../lib/bytes/source_sink.ts";
import { type Command, expectPositionals, formatBytes, parseCommandLine } from "./shared/cli.ts";
import { CLIENT_OPTIONS, CLIENT_OPTIONS_HELP, parseTarget, withClient } from "./client/options.ts";
import { normalizeRemote } from "./client/remote_names.ts";
import { HTTP_CLIENT_HELP, httpList, isHttpCommandLine } from "./client/http.ts";

const USAGE = "fsd ls HOST PORT [DIR] [--json] [--sha256] [--timeout SECONDS]";

const help = `List a directory on an fsd server (the served directory itself by default).

Usage: ${USAGE}

Prints one line per entry, sorted by name:
  KIND SIZE MTIME NAME
KIND is f (file) or d (directory), SIZE is in bytes (0 for directories),
MTIME is UTC (YYYY-MM-DDTHH:MM:SSZ). NAME is the rest of the line, spaces
and all (names never hold a newline). On a terminal the lines are -l style
instead: human sizes, local times, names quoted when they hold spaces.
DIR may be typed as a shell user would: 'images/', './images', '.'.

Options:
  --json             one JSON object per entry: name, kind (file or directory),
                     size, mtime (and sha256 with --sha256)
  --sha256           ask the server for each file's SHA-256 (a column before
                     NAME: KIND SIZE MTIME SHA256 NAME; '-' for directories)
${CLIENT_OPTIONS_HELP}
  -h, --help         show this help
${HTTP_CLIENT_HELP}

Permissions: --allow-net.

Examples:
  fsd ls 127.0.0.1 10000
  fsd ls lab1 10000 images
  fsd ls lab1 10000 --json | jq -r 'select(.kind == "file") | .name'`;

const FLAGS = {
  json: { type: "boolean" },
  sha256: { type: "boolean" },
  ...CLIENT_OPTIONS,
} as const;

async function run(args: string[]): Promise<void> {
  const listed = isHttpCommandLine(args) ? await httpList(args, help) : await listFsd(args);
  if (!listed) return;
  const { entries, json, digests } = listed;
  const text = json
    ? entries.map((e) => JSON.stringify(entryJson(e, digests)) + "\n").join("")
    : Deno.stdout.isTerminal()
    ? entries.map((e) => longLine(e, digests)).join("")
    : formatListing(entries, digests);
  await writeAll(Deno.stdout, new TextEncoder().encode(text));
}

/** `f    1.5 KiB  2026-11-21 13:30  "with space.txt"`: for people. */
/** The listing over fsd/1: HOST PORT [DIR]. */
async function listFsd(
  args: string[],
): Promise<{ entries: ListingEntry[]; json: boolean; digests: boolean } | undefined> {
  const parsed = parseCommandLine(args, FLAGS, help);
  if (!parsed) return undefined;
  const { values, positionals } = parsed;
  expectPositionals(positionals, 2, 3, USAGE);
  const [host, portText, typed = ""] = positionals;
  const target = parseTarget(host, portText, values.timeout, values);
  const digests = values.sha256 ?? false;
  const entries = await withClient(
    target,
    (client) => client.list(normalizeRemote(typed), { digests }),
  );
  return { entries, json: values.json ?? false, digests };
}

function longLine(entry: ListingEntry, digests: boolean): string {
  const size = entry.kind === "d" ? "-" : formatBytes(entry.size).replace(" bytes", " B");
  const time = entry.mtime.toISOString().slice(0, 16).replace("T", " ");
  const digest = digests ? `${entry.sha256 ?? "-".padEnd(64)}  ` : "";
  const name = /[\s"'\\]/.test(entry.name) ? JSON.stringify(entry.name) : entry.name;
  return `${entry.kind}  ${size.padStart(10)}  ${time}  ${digest}${name}${
    entry.kind === "d" ? "/" : ""
  }\n`;
}

export const ls: Command = {
  name: "ls",
  summary: "list a directory",
  help,
  run,
};
