/**
 * `fsd put` over TFTP: one file (or stdin), or several with -o REMOTEDIR,
 * with --json reports as over fsd/1.
 */

import { basename } from "../../lib/path.ts";
import { type TftpClientConfig, tftpUpload } from "../../lib/tftp/client.ts";
import { expectPositionals, UsageError } from "../shared/cli.ts";
import type { FileProgress } from "./job_progress.ts";
import { runFiles, runOneFile } from "./jobs.ts";
import { type FileReport, Reporter } from "./report.ts";
import { joinRemote, normalizeRemote } from "./remote_names.ts";
import { lanes, parseWhere, type TftpValues, withTftpJob } from "./tftp.ts";
import { URL_PREFIX } from "./sides.ts";
import { openLocal } from "./upload.ts";

/** What TFTP takes of put's own flags. */
export interface TftpPutValues extends TftpValues {
  output?: string;
  json: boolean;
}

const PUT_USAGE =
  "fsd put tftp://HOST[:PORT]/[REMOTE] LOCAL | fsd put HOST PORT LOCAL [REMOTE] --tftp";

/** One file to send: which server, from where, as which name. */
interface PutFile {
  config: TftpClientConfig;
  local: string;
  remote: string;
}

/**
 * The files a put names: `tftp://HOST[:PORT]/[REMOTE] LOCAL` or `HOST PORT
 * LOCAL [REMOTE] --tftp`; with -o REMOTEDIR, `tftp://HOST[:PORT] LOCAL...`
 * or `HOST PORT LOCAL... --tftp`, each LOCAL as REMOTEDIR/its base name.
 */
function putFiles(positionals: string[], output: string | undefined): PutFile[] {
  const byUrl = positionals[0]?.toLowerCase().startsWith(URL_PREFIX);
  if (output !== undefined) {
    const where = parseWhere(byUrl ? positionals.slice(0, 1) : positionals.slice(0, 3), PUT_USAGE);
    if (byUrl && where.remote.replace(/\/+$/, "") !== "") {
      throw new UsageError("with -o REMOTEDIR, the URL names no path: tftp://HOST[:PORT]");
    }
    const locals = positionals.slice(byUrl ? 1 : 2);
    if (locals.length === 0) throw new UsageError(`missing arguments: usage: ${PUT_USAGE}`);
    if (locals.includes("-")) {
      throw new UsageError("stdin ('-') needs the one-file form with REMOTE");
    }
    const directory = normalizeRemote(output);
    return locals.map((local) => ({
      config: where.config,
      local,
      remote: joinRemote(directory, basename(local)),
    }));
  }
  // URL form: the path is REMOTE, LOCAL follows; --tftp form: HOST PORT LOCAL [REMOTE].
  const where = parseWhere(positionals, PUT_USAGE);
  if (byUrl) expectPositionals(positionals, 2, 2, PUT_USAGE);
  const local = byUrl ? where.rest[0] : where.remote;
  const named = byUrl ? where.remote : where.rest[0] ?? "";
  if (local === "-" && (named === "" || named.endsWith("/"))) {
    throw new UsageError("REMOTE is required when LOCAL is '-'");
  }
  const remote = named === "" || named.endsWith("/") ? named + basename(local) : named;
  return [{ config: where.config, local, remote }];
}

/** `fsd put` over TFTP: one file, or several with -o REMOTEDIR; --json as over fsd/1. */
export async function tftpPut(
  parsed: { values: TftpPutValues; positionals: string[] },
): Promise<void> {
  const values = parsed.values;
  const files = putFiles(parsed.positionals, values.output);
  const reporter = new Reporter(values.json);
  await withTftpJob(values, async (config) => {
    if (values.output !== undefined) {
      await runFiles(
        reporter,
        "sending",
        files,
        lanes(values.jobs),
        (file, progress) => uploadFile(config(file), file.local, file.remote, progress),
      );
      reporter.finish("sent");
      return;
    }
    const [file] = files;
    const said = `sent ${file.local === "-" ? "stdin" : file.local} as ${file.remote}`;
    await runOneFile(
      reporter,
      "sending",
      { name: file.remote, local: file.local, said },
      (progress) => uploadFile(config(file), file.local, file.remote, progress),
    );
  });
}

/** Uploads `local` ("-": stdin) as `remote`; the report says how it went. */
async function uploadFile(
  config: TftpClientConfig,
  local: string,
  remote: string,
  progress: FileProgress,
): Promise<FileReport> {
  const started = performance.now();
  progress.begin(local === "-" ? "stdin" : local);
  const opened = await openLocal(local);
  try {
    if (opened.size !== undefined) progress.size(opened.size);
    const bytes = await tftpUpload(config, remote, opened.source, opened.size, {
      onProgress: progress.update,
    });
    progress.end(bytes);
    return {
      name: remote,
      local,
      kind: "file",
      size: bytes,
      bytes,
      seconds: (performance.now() - started) / 1000,
      outcome: "ok",
    };
  } finally {
    opened.close();
  }
}
