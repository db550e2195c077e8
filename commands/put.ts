/**
 * `fsd put HOST PORT LOCAL [REMOTE]`: upload a file.
 *
 * Permissions: --allow-net (to the server) and --allow-read for LOCAL.
 * LOCAL `-` reads stdin and needs only --allow-net.
 */

import { basename } from "node:path";
import type { TransferParams } from "../lib/fsd/negotiation.ts";
import { type ByteSource, fileSource } from "../lib/bytes/source_sink.ts";
import {
  type Command,
  CommandError,
  expectPositionals,
  parseCommandLine,
  UsageError,
} from "./cli.ts";
import {
  CLIENT_OPTIONS,
  CLIENT_OPTIONS_HELP,
  parseTarget,
  parseTransferParams,
  type Target,
  TRANSFER_OPTIONS,
  TRANSFER_OPTIONS_HELP,
  withTransfer,
} from "./connect.ts";
import { Progress } from "./progress.ts";
import { isTftpCommandLine, TFTP_CLIENT_HELP, tftpPut } from "./tftp_transfer.ts";

const USAGE =
  "fsd put HOST PORT LOCAL [REMOTE] [--timeout SECONDS] [--blksize N] [--window N] [--fsd1]";

const help = `Upload LOCAL to an fsd server.

Usage: ${USAGE}

REMOTE defaults to LOCAL's base name. LOCAL '-' reads stdin (REMOTE is then
required). The server never replaces an existing file: it answers "file
already exists" instead. An upload that does not complete leaves nothing
on the server.

Options:
${TRANSFER_OPTIONS_HELP}
${CLIENT_OPTIONS_HELP}
  -h, --help         show this help
${TFTP_CLIENT_HELP}

Permissions: --allow-net, and --allow-read for LOCAL.

Examples:
  fsd put 127.0.0.1 10000 notes.txt
  fsd put lab1 10000 build/report.pdf reports/week3.pdf
  tar c src | fsd put lab1 10000 - src.tar`;

async function run(args: string[]): Promise<void> {
  if (isTftpCommandLine(args)) return await tftpPut(args, help);
  const parsed = parseCommandLine(args, { ...CLIENT_OPTIONS, ...TRANSFER_OPTIONS }, help);
  if (!parsed) return;
  const { values, positionals } = parsed;
  expectPositionals(positionals, 3, 4, USAGE);
  const [host, portText, local] = positionals;
  const target = parseTarget(host, portText, values.timeout, values);
  const params = parseTransferParams(values);

  if (local === "-") {
    const remote = positionals[3];
    if (!remote) throw new UsageError("REMOTE is required when LOCAL is '-'");
    await upload(target, { params }, Deno.stdin, remote, "stdin");
    return;
  }
  let file: Deno.FsFile;
  try {
    file = await Deno.open(local, { read: true });
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) throw new CommandError(`file not found: ${local}`);
    throw error;
  }
  try {
    const info = await file.stat();
    if (!info.isFile) throw new CommandError(`not a regular file: ${local}`);
    await upload(
      target,
      { params, size: info.size },
      fileSource(file),
      positionals[3] ?? basename(local),
      local,
    );
  } finally {
    file.close();
  }
}

async function upload(
  target: Target,
  how: { params: TransferParams; size?: number },
  source: ByteSource,
  remote: string,
  label: string,
): Promise<void> {
  const progress = new Progress(`sending ${label}`);
  if (how.size !== undefined) progress.setTotal(how.size);
  try {
    const bytes = await withTransfer(
      target,
      how.params,
      (client, params) =>
        client.upload(remote, source, { ...how, params, onProgress: progress.update }),
    );
    progress.stop();
    if (Deno.stderr.isTerminal()) {
      console.error(`sent ${label} as ${remote}: ${progress.summary(bytes)}`);
    }
  } finally {
    progress.stop();
  }
}

export const put: Command = {
  name: "put",
  summary: "upload a file",
  help,
  run,
};
