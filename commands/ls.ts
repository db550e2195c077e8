/**
 * `fsd ls HOST PORT [DIR]`: print a directory listing.
 * Its flags, help and permissions are declared below, once.
 */

import { entryJson, formatListing, type ListingEntry } from "../lib/store/listing_lines.ts";
import { escapeInvisible, INVISIBLE } from "../lib/store/sandbox.ts";
import { writeAll } from "../lib/bytes/source_sink.ts";
import { expectPositionals, formatBytes } from "./shared/cli.ts";
import { defineCommand } from "./shared/command.ts";
import { CLIENT_FLAGS } from "./client/client_flags.ts";
import { parseTarget, targetWords, withClient } from "./client/options.ts";
import { meansDirectory, normalizeRemote, remoteBase } from "./client/remote_names.ts";
import { HTTP_CLIENT_HEADING, LIST_SIDES } from "./client/sides.ts";
import { errorMessage } from "../lib/bytes/source_sink.ts";

const USAGE = "fsd ls HOST PORT [DIR | FILE] [OPTIONS]";

export const ls = defineCommand({
  name: "ls",
  title: "List a directory on an fsd server (the served directory itself by default).",
  usage: [USAGE, "fsd ls http[s]://HOST:PORT/[DIR] [OPTIONS]"],
  about: `Prints one line per entry, sorted by name:
  KIND SIZE MTIME NAME
KIND is f (file) or d (directory), SIZE is in bytes (0 for directories),
MTIME is UTC (YYYY-MM-DDTHH:MM:SSZ). NAME is the rest of the line, spaces
and all (names never hold a newline). On a terminal the lines are -l style
instead: human sizes, local times, names quoted when they hold spaces.
HOST PORT may also be typed HOST:PORT, or fsd://HOST[:PORT][/DIR]. DIR may
be typed as a shell user would: 'images/', './images', '.'. A file
instead of DIR prints that file's line, as ls does.`,
  flags: {
    json: {
      type: "boolean",
      help: `one JSON object per entry: name, kind (file or directory),
size, mtime (and sha256 with --sha256)`,
    },
    sha256: {
      type: "boolean",
      help: `ask the server for each file's SHA-256 (a column before
NAME: KIND SIZE MTIME SHA256 NAME; '-' for directories)`,
    },
    ...CLIENT_FLAGS,
  },
  groups: { http: HTTP_CLIENT_HEADING },
  permissions: "--allow-net=HOST:PORT",
  examples: [
    "fsd ls 127.0.0.1 10000",
    "fsd ls lab1 10000 images",
    `fsd ls lab1 10000 --json | jq -r 'select(.kind == "file") | .name'`,
  ],
  side: LIST_SIDES,
  async run({ values, positionals, side }) {
    const digests = values.sha256;
    const entries = side === "http"
      ? await (await import("./client/http.ts")).httpList(values, positionals)
      : await listFsd(values, positionals);
    const text = values.json
      ? entries.map((e) => escapeInvisible(JSON.stringify(entryJson(e, digests))) + "\n").join("")
      : Deno.stdout.isTerminal()
      ? entries.map((e) => longLine(e, digests)).join("")
      : formatListing(entries, digests);
    await writeAll(Deno.stdout, new TextEncoder().encode(text));
  },
});

/** The listing over fsd/1: HOST PORT [DIR | FILE] (a file: its own line, as ls shows it). */
async function listFsd(
  values: Parameters<typeof parseTarget>[2] & { sha256: boolean },
  words: string[],
): Promise<ListingEntry[]> {
  const positionals = targetWords(words, "ls");
  expectPositionals(positionals, 2, 3, USAGE);
  const [host, portText, typed = ""] = positionals;
  const target = parseTarget(host, portText, values);
  const digests = values.sha256;
  const remote = normalizeRemote(typed);
  return await withClient(target, (client) => client.list(remote, { digests }))
    .catch(async (error) => {
      // A file: its line from its directory's listing, on a new connection.
      const base = remoteBase(remote);
      if (!base || meansDirectory(typed) || !/not a directory/.test(errorMessage(error))) {
        throw error;
      }
      const parent = remote.slice(0, Math.max(0, remote.length - base.length - 1));
      const listed = await withClient(target, (client) => client.list(parent, { digests }));
      const entry = listed.find((e) => e.name === base);
      if (!entry) throw error;
      return [{ ...entry, name: remote }];
    });
}

/** `f    1.5 KiB  2026-11-21 13:30  "with space.txt"`: for people. */
function longLine(entry: ListingEntry, digests: boolean): string {
  const size = entry.kind === "d" ? "-" : formatBytes(entry.size).replace(" bytes", " B");
  const time = entry.mtime.toISOString().slice(0, 16).replace("T", " ");
  const digest = digests ? `${entry.sha256 ?? "-".padEnd(64)}  ` : "";
  // A name from the server may hold what a terminal would hide or reorder: quoted and escaped.
  const name = /[\s"'\\]/.test(entry.name) || INVISIBLE.test(entry.name)
    ? escapeInvisible(JSON.stringify(entry.name))
    : entry.name;
  return `${entry.kind}  ${size.padStart(10)}  ${time}  ${digest}${name}${
    entry.kind === "d" ? "/" : ""
  }\n`;
}
