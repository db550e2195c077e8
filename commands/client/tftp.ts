/**
 * `fsd get` and `fsd put` over TFTP: `fsd get tftp://HOST[:PORT]/REMOTE
 * [LOCAL]`, `fsd put tftp://HOST[:PORT]/[REMOTE] LOCAL`, or the fsd/1 argument
 * order with `--tftp`. The same local-file rules as fsd/1's client: a
 * download is staged and appears under its name only once complete, an
 * existing file is replaced only with --force, '-' is stdout or stdin.
 *
 * Permissions: --allow-net=HOST,0.0.0.0 (answers come from a new port of
 * HOST's; the socket binds the wildcard address), or --allow-net=127.0.0.1
 * for a server on loopback; and --allow-read --allow-write for LOCAL's
 * directory (get), --allow-read for LOCAL (put).
 */

import { basename } from "node:path";
import { type ByteSource, fileSource } from "../../lib/bytes/source_sink.ts";
import {
  TFTP_CLIENT_DEFAULTS,
  type TftpClientConfig,
  tftpDownload,
  tftpUpload,
} from "../../lib/tftp/client.ts";
import { CommandError, expectPositionals, UsageError } from "../shared/cli.ts";
import type { Flags } from "../shared/command.ts";
import { parsePort } from "../shared/values.ts";
import { downloadPath, openDownload } from "./local_files.ts";
import { Progress } from "../shared/progress.ts";

/** The heading of the TFTP part of get's and put's help. */
export const TFTP_CLIENT_HEADING = `TFTP (RFC 1350 over UDP, port 69 unless given):
  fsd get tftp://HOST[:PORT]/REMOTE [LOCAL]     fsd put tftp://HOST[:PORT]/[REMOTE] LOCAL
or the fsd/1 arguments with --tftp. Asks for blksize ${TFTP_CLIENT_DEFAULTS.blockSize} and windowsize ${TFTP_CLIENT_DEFAULTS.windowSize}
(--blksize, --window; --fsd1 asks for no options) and falls back to plain
RFC 1350 when the server ignores them. --timeout: give up after this long
without progress. Only --timeout, --blksize, --window, --fsd1 and (get) --force
apply to TFTP.`;

const URL_PREFIX = "tftp://";

/** The sides of get and put: fsd/1, or TFTP (a tftp:// argument or --tftp). */
export const CLIENT_SIDES = {
  of: (positionals: string[], values: Record<string, unknown>) =>
    values.tftp || positionals.some((arg) => arg.toLowerCase().startsWith(URL_PREFIX))
      ? "tftp"
      : "fsd",
  names: { fsd: "fsd/1, not TFTP", tftp: "TFTP (--tftp or tftp://)" },
};

/** --tftp: the fsd/1 arguments, spoken to a TFTP server. */
export const TFTP_FLAG = {
  tftp: {
    type: "boolean",
    side: "tftp",
    group: "tftp",
    permission: "--allow-net=HOST,0.0.0.0",
    help: `HOST PORT are a TFTP server's (the permission is the same
for a tftp:// URL: answers come from a new port of
HOST's, and the socket binds the wildcard address;
--allow-net=127.0.0.1 is enough on loopback)`,
  },
} as const satisfies Flags;

/** What TFTP takes of get's and put's flags. */
export interface TftpValues {
  timeout: number;
  blksize?: number;
  window?: number;
  fsd1: boolean;
}

interface Where {
  config: TftpClientConfig;
  remote: string;
  rest: string[];
}

/** tftp://HOST[:PORT]/PATH, or HOST PORT PATH with --tftp; `rest` is what follows. */
function parseWhere(positionals: string[], usage: string): Where {
  const [first] = positionals;
  if (first?.toLowerCase().startsWith(URL_PREFIX)) {
    const match = /^tftp:\/\/(\[[^\]]+\]|[^/:]+)(?::([^/]*))?(?:\/(.*))?$/i.exec(first);
    if (!match) {
      throw new UsageError(`invalid TFTP URL: ${first}: expected tftp://HOST[:PORT]/PATH`);
    }
    const hostname = match[1].replace(/^\[(.*)\]$/, "$1");
    const port = match[2] ? parsePort(match[2]) : TFTP_CLIENT_DEFAULTS.port;
    return {
      config: { hostname, port },
      remote: decodePath(match[3] ?? ""),
      rest: positionals.slice(1),
    };
  }
  expectPositionals(positionals, 3, 4, usage);
  const [hostname, portText, remote] = positionals;
  return { config: { hostname, port: parsePort(portText) }, remote, rest: positionals.slice(3) };
}

function decodePath(path: string): string {
  try {
    return decodeURIComponent(path);
  } catch {
    throw new UsageError(`invalid TFTP URL path: ${path}`);
  }
}

function transferConfig(values: TftpValues): Partial<TftpClientConfig> {
  if (values.fsd1 && (values.blksize !== undefined || values.window !== undefined)) {
    throw new UsageError("--fsd1 takes no --blksize or --window");
  }
  return {
    blockSize: values.fsd1 ? 0 : values.blksize,
    windowSize: values.window,
    timeoutMs: values.timeout,
  };
}

/** `fsd get` over TFTP. */
export async function tftpGet(
  parsed: { values: TftpValues & { force: boolean }; positionals: string[] },
): Promise<void> {
  const usage =
    "fsd get tftp://HOST[:PORT]/REMOTE [LOCAL] | fsd get HOST PORT REMOTE [LOCAL] --tftp";
  const where = parseWhere(parsed.positionals, usage);
  if (where.rest.length > 1) {
    throw new UsageError(`unexpected argument: ${where.rest[1]}: usage: ${usage}`);
  }
  const config = { ...where.config, ...transferConfig(parsed.values) };
  const remoteBase = where.remote.split("/").filter((part) => part !== "").pop();
  const local = where.rest[0] ?? remoteBase;
  if (!remoteBase || where.remote.endsWith("/")) {
    throw new UsageError(`no file named in ${JSON.stringify(where.remote)}`);
  }
  if (!local) throw new UsageError("give LOCAL");
  if (local === "-") {
    await tftpDownload(config, where.remote, Deno.stdout);
    return;
  }
  // The same local-file rules as fsd/1's get: staged beside LOCAL, special files written directly.
  const path = downloadPath(local, remoteBase);
  const force = parsed.values.force;
  const expected = (error: unknown) =>
    error instanceof Deno.errors.AlreadyExists || error instanceof Deno.errors.NotFound
      ? new CommandError((error as Error).message, { cause: error })
      : error;
  const download = await openDownload(path, { force }).catch((error) => {
    throw expected(error);
  });
  const progress = new Progress(`receiving ${basename(path)}`);
  // Ctrl-C stops the transfer; the staged file is removed below, as with fsd/1.
  const interrupt = new AbortController();
  const onSignal = () => interrupt.abort();
  Deno.addSignalListener("SIGINT", onSignal);
  try {
    const bytes = await tftpDownload(
      { ...config, signal: interrupt.signal },
      where.remote,
      download.sink,
      { onProgress: progress.update, onSize: progress.setTotal },
    ).catch((error) => {
      throw interrupt.signal.aborted ? new CommandError("interrupted") : error;
    });
    await download.commit(force).catch((error) => {
      throw expected(error);
    });
    progress.stop();
    if (Deno.stderr.isTerminal()) {
      console.error(`received ${where.remote} as ${path}: ${progress.summary(bytes)}`);
    }
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
    progress.stop();
    await download.discard(undefined, false);
  }
}

/** `fsd put` over TFTP: `fsd put tftp://HOST[:PORT]/[REMOTE] LOCAL` or `fsd put HOST PORT LOCAL [REMOTE] --tftp`. */
export async function tftpPut(
  parsed: { values: TftpValues; positionals: string[] },
): Promise<void> {
  const usage =
    "fsd put tftp://HOST[:PORT]/[REMOTE] LOCAL | fsd put HOST PORT LOCAL [REMOTE] --tftp";
  const where = parseWhere(parsed.positionals, usage);
  // URL form: the path is REMOTE, LOCAL follows; --tftp form: HOST PORT LOCAL [REMOTE].
  const byUrl = parsed.positionals[0].toLowerCase().startsWith(URL_PREFIX);
  if (byUrl) expectPositionals(parsed.positionals, 2, 2, usage);
  const local = byUrl ? where.rest[0] : where.remote;
  const named = byUrl ? where.remote : where.rest[0] ?? "";
  const remote = named === "" || named.endsWith("/") ? named + basename(local) : named;
  if (local === "-" && (named === "" || named.endsWith("/"))) {
    throw new UsageError("REMOTE is required when LOCAL is '-'");
  }
  const config = { ...where.config, ...transferConfig(parsed.values) };
  if (local === "-") {
    await send(config, remote, Deno.stdin, undefined, "stdin");
    return;
  }
  const file = await Deno.open(local, { read: true }).catch((error) => {
    throw error instanceof Deno.errors.NotFound
      ? new CommandError(`file not found: ${local}`)
      : error;
  });
  try {
    const info = await file.stat();
    if (!info.isFile) throw new CommandError(`not a regular file: ${local}`);
    await send(config, remote, fileSource(file), info.size, local);
  } finally {
    file.close();
  }
}

async function send(
  config: TftpClientConfig,
  remote: string,
  source: ByteSource,
  size: number | undefined,
  label: string,
): Promise<void> {
  const progress = new Progress(`sending ${label}`);
  if (size !== undefined) progress.setTotal(size);
  try {
    const bytes = await tftpUpload(config, remote, source, size, { onProgress: progress.update });
    progress.stop();
    if (Deno.stderr.isTerminal()) {
      console.error(`sent ${label} as ${remote}: ${progress.summary(bytes)}`);
    }
  } finally {
    progress.stop();
  }
}
