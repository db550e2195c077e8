/**
 * `fsd get HOST PORT REMOTE [LOCAL]`: download a file; with `-o DIR`, any
 * number of files; with `-r`, a whole directory tree. One connection for
 * the whole job.
 *
 * Permissions: --allow-net (to the server), --allow-read and --allow-write
 * for LOCAL's directory (the download is staged there and renamed into place).
 * LOCAL `-` writes to stdout and needs only --allow-net. A special file is
 * written directly: /dev/null with --allow-read=/dev/null
 * --allow-write=/dev/null; /dev/stdout and /dev/fd/* only with --allow-all
 * (Deno grants no narrower flag there).
 */

import { basename, join } from "node:path";
import { fromHex } from "../lib/bytes/sha256.ts";
import { type Command, CommandError, parseCommandLine, UsageError } from "./shared/cli.ts";
import { isTftpCommandLine, TFTP_CLIENT_HELP, tftpGet } from "./client/tftp.ts";
import {
  CLIENT_OPTIONS,
  CLIENT_OPTIONS_HELP,
  JOBS_OPTION,
  JOBS_OPTION_HELP,
  parseJobs,
  parseTarget,
  parseTransferParams,
  TRANSFER_OPTIONS,
  TRANSFER_OPTIONS_HELP,
} from "./client/options.ts";
import { JobConnection } from "./client/job_connection.ts";
import { checkExpected, downloadFile, type DownloadHow } from "./client/download.ts";
import {
  Integrity,
  INTEGRITY_HELP,
  INTEGRITY_OPTIONS,
  integrityArgs,
  refuseChecks,
} from "./client/integrity.ts";
import { FSD1 } from "../lib/fsd/negotiation.ts";
import { ExitError, Interruption } from "./shared/signals.ts";
import { JobProgress } from "./client/job_progress.ts";
import { downloadPath } from "./client/local_files.ts";
import { meansDirectory, normalizeRemote, remoteBase, shown } from "./client/remote_names.ts";
import { failureText, Reporter } from "./client/report.ts";
import { runFiles, runSingle } from "./client/jobs.ts";
import { downloadTree } from "./client/tree_get.ts";

const USAGE = `fsd get HOST PORT REMOTE [LOCAL] [OPTIONS]
       fsd get HOST PORT REMOTE... -o DIR [OPTIONS]
       fsd get -r HOST PORT REMOTEDIR [LOCALDIR] [OPTIONS]`;

const help = `Download from an fsd server: one file, several, or a whole tree.

Usage: ${USAGE}

LOCAL defaults to REMOTE's base name; an existing directory as LOCAL receives
the file under that name (a LOCAL ending in '/' must be one); '-' writes to
stdout; a special file (/dev/null, a FIFO) is written directly. With -o, every
name after PORT is a file to fetch into DIR. With -r, REMOTEDIR is copied as
LOCALDIR (default: REMOTEDIR's last part; into it if it exists), as cp -r does.
With -o and -r, up to --jobs files move at once, each on its own connection
(the listing of -r on one); reports, --json lines and failures come in the
order of the names or the tree.

A file appears under its name only once complete and checked: a failed or
interrupted download leaves nothing behind. An existing LOCAL is never
replaced unless --force is given. Every file is checked: the server sends a
CRC-32 of it after its data and the client checks it before the file gets its
name (--integrity sha256 for a SHA-256; --no-integrity for none). To stdout
('-'), the exit status and the message carry the verdict.

Options:
  -o, --output DIR   fetch every REMOTE into DIR
  -r, --recursive    copy the directory REMOTEDIR and everything in it
  -f, --force        replace LOCAL if it exists
  --continue         resume an interrupted download from its .fsd-partial-NAME
                     file (kept on failure when --continue is given)
  --sha256 HEX       the file must have this SHA-256 (else: error, nothing
                     kept; with '-', exit 1 after the data)
${INTEGRITY_HELP}
  --json             one JSON object per file on stdout (name, local, kind,
                     size, mtime, bytes, seconds, outcome, error, crc32 or sha256)
${JOBS_OPTION_HELP}
${TRANSFER_OPTIONS_HELP}
${CLIENT_OPTIONS_HELP}
  -h, --help         show this help
${TFTP_CLIENT_HELP}

Exit status: 0 when every file made it, 1 when any did not (listed on
stderr), 2 for usage errors, 128+N when stopped by signal N (SIGINT 130,
SIGTERM 143, SIGHUP 129). A closed stdout ends quietly with 141, as cat.

Permissions: --allow-net, and --allow-read --allow-write for LOCAL's directory
(/dev/null: --allow-read=/dev/null --allow-write=/dev/null; /dev/stdout and
/dev/fd/*: --allow-all, the only flag Deno grants them with).

Examples:
  fsd get 127.0.0.1 10000 notes.txt
  fsd get lab1 10000 images/disk.img /tmp/disk.img --force
  fsd get lab1 10000 data.csv - | head
  fsd get lab1 10000 a.txt b.txt c.txt -o ./in
  fsd get -r lab1 10000 images ./backup
  fsd get lab1 10000 big.iso --continue`;

const FLAGS = {
  force: { type: "boolean", short: "f" },
  output: { type: "string", short: "o" },
  recursive: { type: "boolean", short: "r" },
  continue: { type: "boolean" },
  sha256: { type: "string" },
  ...INTEGRITY_OPTIONS,
  json: { type: "boolean" },
  ...JOBS_OPTION,
  ...CLIENT_OPTIONS,
  ...TRANSFER_OPTIONS,
} as const;

async function run(args: string[]): Promise<void> {
  if (isTftpCommandLine(args)) return await tftpGet(refuseChecks(args), help);
  const parsed = parseCommandLine(integrityArgs(args), FLAGS, help);
  if (!parsed) return;
  const { values, positionals } = parsed;
  if (positionals.length < 3) {
    throw new UsageError(
      `missing arguments: usage: fsd get HOST PORT REMOTE [LOCAL] (see --help for -o and -r)`,
    );
  }
  const [host, portText, ...names] = positionals;
  const target = parseTarget(host, portText, values.timeout, values);
  const params = parseTransferParams(values);
  const jobs = parseJobs(values.jobs);
  const expected = values.sha256 === undefined ? undefined : fromHex(String(values.sha256));
  if (values.sha256 !== undefined && !expected) {
    throw new UsageError(`invalid --sha256: ${values.sha256}: expected 64 hex digits`);
  }
  const output = values.output === undefined ? undefined : String(values.output);
  const many = output !== undefined || Boolean(values.recursive);
  if (many && values.continue) throw new UsageError("--continue takes one file, without -o or -r");
  if (many && expected) throw new UsageError("--sha256 takes one file, without -o or -r");
  if (expected && (values.integrity !== undefined || values["no-integrity"])) {
    throw new UsageError("--sha256 HEX is the check itself: without --integrity or --no-integrity");
  }
  if (values.continue && names[1] === "-") {
    throw new UsageError("--continue does not mix with LOCAL '-': a pipe cannot be resumed");
  }
  const integrity = expected
    ? new Integrity(undefined)
    : Integrity.parse({ ...values, sha256: undefined }, params === FSD1);
  if (output !== undefined && values.recursive) throw new UsageError("-o and -r do not mix");
  if (!many && names.length > 2) {
    throw new UsageError(`unexpected argument: ${names[2]}: several files need -o DIR`);
  }
  if (values.recursive && names.length > 2) {
    throw new UsageError(
      `unexpected argument: ${names[2]}: usage: fsd get -r HOST PORT REMOTEDIR [LOCALDIR]`,
    );
  }
  const json = Boolean(values.json);
  if (json && !many && names[1] === "-") throw new UsageError("--json does not mix with LOCAL '-'");

  using interruption = new Interruption();
  using conn = new JobConnection(target, params, interruption);
  const reporter = new Reporter(json);
  const how = {
    force: Boolean(values.force),
    resume: Boolean(values.continue),
    integrity,
    expected,
    json,
    jobs,
  };
  if (output !== undefined) {
    await getMany(conn, names, output, how, reporter);
  } else if (values.recursive) {
    await getTree(conn, names[0], names[1], how, reporter);
  } else {
    await getOne(conn, names[0], names[1], how, reporter);
  }
}

type How = Omit<DownloadHow, "progress"> & { jobs: number };

async function getOne(
  conn: JobConnection,
  typed: string,
  local: string | undefined,
  how: How,
  reporter: Reporter,
): Promise<void> {
  const remote = normalizeRemote(typed);
  if (meansDirectory(typed)) {
    throw new Error(
      `${shown(typed)} is a directory: use fsd get -r to copy it, or fsd ls to list it`,
    );
  }
  const progress = new JobProgress("receiving", 1);
  try {
    if (local === "-") return await toStdout(conn, remote, how, progress);
    const base = remoteBase(remote)!;
    const path = downloadPath(local ?? base, base);
    const report = await runSingle(
      reporter,
      remote,
      path,
      () => downloadFile(conn, remote, path, { ...how, progress }),
    );
    progress.stop();
    reporter.add(report);
    if (!reporter.json && Deno.stderr.isTerminal()) {
      console.error(
        `received ${shown(remote)} as ${shown(path)}: ${progress.summary(report.bytes)}`,
      );
    }
  } finally {
    progress.stop();
  }
}

async function toStdout(
  conn: JobConnection,
  remote: string,
  how: How,
  progress: JobProgress,
): Promise<void> {
  try {
    const result = await conn.use((client, params) => {
      if (params === FSD1) how.integrity.plain(shown(remote));
      return client.fetchFile(remote, Deno.stdout, {
        params,
        integrity: how.integrity.checksum,
        expectFile: true,
        wantDigest: how.expected !== undefined,
        onGranted: (granted) => how.integrity.granted(granted, shown(remote)),
        onProgress: progress.update,
      });
    });
    checkExpected(result, how.expected, remote);
  } catch (error) {
    if (error instanceof Deno.errors.BrokenPipe) throw new ExitError("", 141);
    if (error instanceof ExitError) throw error;
    throw new CommandError(failureText(error, remote), { cause: error });
  }
}

async function getMany(
  conn: JobConnection,
  names: string[],
  output: string,
  how: How,
  reporter: Reporter,
): Promise<void> {
  await Deno.mkdir(output, { recursive: true });
  const files = names.map((typed) => {
    const remote = normalizeRemote(typed);
    return { typed, remote, local: join(output, remoteBase(remote) ?? basename(typed)) };
  });
  using lanes = conn.lanes(how.jobs);
  await runFiles(reporter, "receiving", files, lanes, (file, progress, lane) => {
    if (meansDirectory(file.typed)) {
      throw new Deno.errors.IsADirectory(file.remote);
    }
    return downloadFile(lane, file.remote, file.local, { ...how, progress });
  });
  reporter.finish("received");
}

async function getTree(
  conn: JobConnection,
  typed: string,
  local: string | undefined,
  how: How,
  reporter: Reporter,
): Promise<void> {
  const remote = normalizeRemote(typed);
  const base = remoteBase(remote);
  if (local === undefined && base === undefined) {
    throw new UsageError("copying the whole served directory needs LOCALDIR");
  }
  let destination = local ?? base!;
  const info = await Deno.stat(destination).catch(() => undefined);
  if (info?.isDirectory && local !== undefined && base !== undefined) {
    destination = join(destination, base);
  } else if (info && !info.isDirectory) {
    throw new Error(`not a directory: ${destination}`);
  }
  await downloadTree(conn, remote, destination, how, reporter);
  reporter.finish("received");
}

export const get: Command = {
  name: "get",
  summary: "download files or a tree",
  help,
  run,
};
