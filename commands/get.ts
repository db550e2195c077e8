/**
 * `fsd get HOST PORT REMOTE [LOCAL]`: download a file.
 *
 * Permissions: --allow-net (to the server), --allow-read and --allow-write
 * for LOCAL's directory (the download is staged there and renamed into place).
 * LOCAL `-` writes to stdout and needs only --allow-net.
 */

import { basename, dirname, join } from "node:path";
import { DOWNLOAD_PREFIX, removeStaleDownloads, StagedFile } from "../lib/store/staging.ts";
import { fileSink } from "../lib/bytes/source_sink.ts";
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
  TRANSFER_OPTIONS,
  TRANSFER_OPTIONS_HELP,
  withTransfer,
} from "./connect.ts";
import { Progress } from "./progress.ts";
import { isTftpCommandLine, TFTP_CLIENT_HELP, tftpGet } from "./tftp_transfer.ts";

const USAGE =
  "fsd get HOST PORT REMOTE [LOCAL] [--force] [--timeout SECONDS] [--blksize N] [--window N] [--fsd1]";

const help = `Download REMOTE from an fsd server.

Usage: ${USAGE}

LOCAL defaults to REMOTE's base name; an existing directory as LOCAL receives
the file under that name; '-' writes to stdout. The file appears under its
name only once complete: a failed or interrupted download leaves nothing
behind. An existing LOCAL is never replaced unless --force is given.

Options:
  -f, --force        replace LOCAL if it exists
${TRANSFER_OPTIONS_HELP}
${CLIENT_OPTIONS_HELP}
  -h, --help         show this help
${TFTP_CLIENT_HELP}

Permissions: --allow-net, and --allow-read --allow-write for LOCAL's directory.

Examples:
  fsd get 127.0.0.1 10000 notes.txt
  fsd get lab1 10000 images/disk.img /tmp/disk.img --force
  fsd get lab1 10000 data.csv - | head`;

async function run(args: string[]): Promise<void> {
  if (isTftpCommandLine(args)) return await tftpGet(args, help);
  const parsed = parseCommandLine(args, {
    force: { type: "boolean", short: "f" },
    ...CLIENT_OPTIONS,
    ...TRANSFER_OPTIONS,
  }, help);
  if (!parsed) return;
  const { values, positionals } = parsed;
  expectPositionals(positionals, 3, 4, USAGE);
  const [host, portText, remote] = positionals;
  const target = parseTarget(host, portText, values.timeout, values);
  const params = parseTransferParams(values);
  const remoteBase = remote.split("/").filter((part) => part !== "").pop();
  let local = positionals[3] ?? remoteBase;
  if (!local) {
    throw new UsageError(`cannot name a local file after ${JSON.stringify(remote)}: give LOCAL`);
  }

  if (local === "-") {
    await withTransfer(
      target,
      params,
      (client, p) => client.download(remote, Deno.stdout, { params: p }),
    );
    return;
  }
  if (await isDirectory(local)) {
    if (!remoteBase) {
      throw new UsageError(`cannot name a file after ${JSON.stringify(remote)}: give LOCAL`);
    }
    local = join(local, remoteBase);
  }
  if (!values.force && await exists(local)) {
    throw new CommandError(`file exists: ${local}: use --force to replace it`);
  }

  await removeStaleDownloads(dirname(local)); // what interrupted downloads left; never a live one
  const staged = await StagedFile.create(local, DOWNLOAD_PREFIX).catch((error) => {
    if (error instanceof Deno.errors.NotFound) {
      throw new CommandError(`directory not found: ${dirname(local!)}`);
    }
    throw error;
  });
  const progress = new Progress(`receiving ${basename(local)}`);
  try {
    const bytes = await withTransfer(target, params, async (client, p) => {
      let interrupted = false;
      const interrupt = () => {
        interrupted = true;
        client.close();
      };
      Deno.addSignalListener("SIGINT", interrupt);
      try {
        return await client.download(remote, fileSink(staged.file), {
          params: p,
          onProgress: progress.update,
          onSize: progress.setTotal,
        });
      } catch (error) {
        if (interrupted) throw new CommandError("interrupted");
        throw error;
      } finally {
        Deno.removeSignalListener("SIGINT", interrupt);
      }
    });
    await staged.commit({ replace: values.force ?? false });
    progress.stop();
    if (Deno.stderr.isTerminal()) {
      console.error(`received ${remote} as ${local}: ${progress.summary(bytes)}`);
    }
  } catch (error) {
    if (error instanceof Deno.errors.AlreadyExists) {
      throw new CommandError(`file exists: ${local}: use --force to replace it`);
    }
    throw error;
  } finally {
    progress.stop();
    await staged.discard();
  }
}

async function exists(path: string): Promise<boolean> {
  return await Deno.lstat(path).then(() => true, () => false);
}

async function isDirectory(path: string): Promise<boolean> {
  return await Deno.stat(path).then((info) => info.isDirectory, () => false);
}

export const get: Command = {
  name: "get",
  summary: "download a file",
  help,
  run,
};
