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

import { basename, join } from "node:path";
import { hashingSink, sameDigest, sha256For, toHex } from "../../lib/bytes/sha256.ts";
import { type ByteSource, errorMessage, fileSource } from "../../lib/bytes/source_sink.ts";
import {
  TFTP_CLIENT_DEFAULTS,
  type TftpClientConfig,
  tftpDownload,
  tftpUpload,
} from "../../lib/tftp/client.ts";
import { CommandError, expectPositionals, UsageError } from "../shared/cli.ts";
import type { Flags } from "../shared/command.ts";
import { parsePort } from "../shared/values.ts";
import { downloadPath, type LocalDownload, openDownload } from "./local_files.ts";
import { Progress } from "../shared/progress.ts";
import { Interruption } from "../shared/signals.ts";
import { type FileProgress, JobProgress } from "./job_progress.ts";
import { runFiles, runSingle } from "./jobs.ts";
import { type FileReport, Reporter } from "./report.ts";

/** The heading of the TFTP part of get's and put's help. */
export const TFTP_CLIENT_HEADING = `TFTP (RFC 1350 over UDP, port 69 unless given):
  fsd get tftp://HOST[:PORT]/REMOTE [LOCAL]     fsd put tftp://HOST[:PORT]/[REMOTE] LOCAL
or the fsd/1 arguments with --tftp. Asks for blksize ${TFTP_CLIENT_DEFAULTS.blockSize} and windowsize ${TFTP_CLIENT_DEFAULTS.windowSize}
(--blksize, --window; --fsd1 asks for no options) and falls back to plain
RFC 1350 when the server ignores them. --timeout: give up after this long
without an answer (a dead port too). get's -o DIR (several tftp:// URLs, or
HOST PORT and several names with --tftp), --json, --sha256, --force and
--continue work as over fsd/1, except that TFTP has no offsets: --continue
keeps what a failed download got, but the next try starts the file over.`;

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

/** What TFTP takes of get's own flags. */
export interface TftpGetValues extends TftpValues {
  force: boolean;
  continue: boolean;
  output?: string;
  sha256?: Uint8Array;
  json: boolean;
}

/** One file to fetch: from which server, which name, to where. */
interface GetFile {
  config: TftpClientConfig;
  remote: string;
  local: string;
}

const GET_USAGE =
  "fsd get tftp://HOST[:PORT]/REMOTE [LOCAL] | fsd get HOST PORT REMOTE [LOCAL] --tftp";

/** The files a get names: one (with LOCAL), or with -o DIR several URLs, or HOST PORT and several names. */
function getFiles(positionals: string[], output: string | undefined): GetFile[] {
  const base = (remote: string) => {
    const name = remote.split("/").filter((part) => part !== "").pop();
    if (!name || remote.endsWith("/")) {
      throw new UsageError(`no file named in ${JSON.stringify(remote)}`);
    }
    return name;
  };
  if (output === undefined) {
    const where = parseWhere(positionals, GET_USAGE);
    if (where.rest.length > 1) {
      throw new UsageError(`unexpected argument: ${where.rest[1]}: several files need -o DIR`);
    }
    const local = where.rest[0] ?? base(where.remote);
    const path = local === "-" ? local : downloadPath(local, base(where.remote));
    return [{ config: where.config, remote: where.remote, local: path }];
  }
  const byUrl = positionals[0]?.toLowerCase().startsWith(URL_PREFIX);
  const named = byUrl ? positionals.map((url) => parseWhere([url], GET_USAGE)) : (() => {
    if (positionals.length < 3) throw new UsageError(`missing arguments: usage: ${GET_USAGE}`);
    const where = parseWhere(positionals.slice(0, 3), GET_USAGE);
    return positionals.slice(2).map((remote) => ({ ...where, remote }));
  })();
  return named.map((where) => ({
    config: where.config,
    remote: where.remote,
    local: join(output, base(where.remote)),
  }));
}

/** `fsd get` over TFTP: one file, or several with -o DIR; --json, --sha256, --continue as fsd/1's. */
export async function tftpGet(
  parsed: { values: TftpGetValues; positionals: string[] },
): Promise<void> {
  const values = parsed.values;
  const many = values.output !== undefined;
  if (many && values.continue) throw new UsageError("--continue takes one file, without -o");
  if (many && values.sha256) throw new UsageError("--sha256 takes one file, without -o");
  const files = getFiles(parsed.positionals, values.output);
  const transfer = transferConfig(values);
  const toStdout = !many && files[0].local === "-";
  if (values.json && toStdout) throw new UsageError("--json does not mix with LOCAL '-'");
  using interruption = new Interruption();
  const interrupt = new AbortController();
  const unregister = interruption.onStop(() => interrupt.abort());
  const config = (file: GetFile) => ({ ...file.config, ...transfer, signal: interrupt.signal });
  const how = { force: values.force, resume: values.continue, expected: values.sha256 };
  const reporter = new Reporter(values.json);
  try {
    if (toStdout) {
      await tftpDownload(config(files[0]), files[0].remote, Deno.stdout).catch((error) => {
        if (error instanceof Deno.errors.BrokenPipe) throw new CommandError("", { exitCode: 141 });
        throw error;
      });
    } else if (many) {
      await Deno.mkdir(values.output!, { recursive: true });
      await runFiles(
        reporter,
        "receiving",
        files,
        [undefined],
        (file, progress) =>
          downloadFile(config(file), file.remote, file.local, { ...how, progress }),
      );
      reporter.finish("received");
    } else {
      const [file] = files;
      const progress = new JobProgress("receiving", 1);
      try {
        const report = await runSingle(
          reporter,
          file.remote,
          file.local,
          () => downloadFile(config(file), file.remote, file.local, { ...how, progress }),
        );
        progress.stop();
        reporter.add(report);
        if (!reporter.json && Deno.stderr.isTerminal()) {
          console.error(
            `received ${file.remote} as ${file.local}: ${progress.summary(report.bytes)}`,
          );
        }
      } finally {
        progress.stop();
      }
    }
  } catch (error) {
    throw interruption.explain(error);
  } finally {
    unregister();
  }
}

/**
 * One TFTP download into `path`, with fsd/1's local-file rules: staged and
 * named once complete (and checked against --sha256); with --continue a
 * failure keeps what arrived, but TFTP has no offsets, so the next try
 * starts the file over.
 */
async function downloadFile(
  config: TftpClientConfig,
  remote: string,
  path: string,
  how: { force: boolean; resume: boolean; expected?: Uint8Array; progress: FileProgress },
): Promise<FileReport> {
  const started = performance.now();
  how.progress.begin(remote);
  let local: LocalDownload | undefined = await openDownload(path, how).catch((error) => {
    throw error instanceof Deno.errors.AlreadyExists || error instanceof Deno.errors.NotFound
      ? new CommandError((error as Error).message, { cause: error })
      : error;
  });
  const hash = how.expected ? sha256For(undefined) : undefined;
  try {
    if (local.resume) await local.restart();
    const bytes = await tftpDownload(config, remote, hashingSink(local.sink, hash), {
      onProgress: how.progress.update,
      onSize: how.progress.size,
    });
    const digest = await hash?.digest();
    if (how.expected && digest && !sameDigest(digest, how.expected)) {
      throw new Error(
        `sha256 mismatch: ${remote} has ${toHex(digest)}, expected ${toHex(how.expected)}`,
      );
    }
    await local.commit(how.force);
    local = undefined;
    how.progress.end(bytes);
    return {
      name: remote,
      local: path,
      kind: "file",
      size: bytes,
      bytes,
      seconds: (performance.now() - started) / 1000,
      outcome: "ok",
      ...(digest && { sha256: toHex(digest), verified: true }),
    };
  } catch (error) {
    hash?.close();
    // A partial that fails its digest is worth nothing: it goes too.
    await local?.discard(undefined, !/sha256 mismatch/.test(errorMessage(error)));
    local = undefined;
    throw error;
  } finally {
    await local?.discard();
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
