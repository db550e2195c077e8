/**
 * One file of a put job: from a local file, stdin or a special file (a
 * pipe such as `<(cmd)`, read directly as a stream) to a name on the
 * server; the report says how it went. Shared by the one-file form, -o and -r.
 */

import { type ByteSource, fileSource } from "../../lib/bytes/source_sink.ts";
import { toHex } from "../../lib/bytes/sha256.ts";
import { CommandError } from "../shared/cli.ts";
import type { JobConnection } from "./job_connection.ts";
import type { FileProgress } from "./job_progress.ts";
import type { FileReport, Reporter } from "./report.ts";
import { type JobFile, runFiles } from "./jobs.ts";
import { shown } from "./remote_names.ts";

export interface UploadHow {
  integrity: boolean;
  progress: FileProgress;
}

/** Opens LOCAL for reading: a regular file (with its size), or a stream; a directory is refused. */
export async function openLocal(
  local: string,
): Promise<{ source: ByteSource; size?: number; close(): void }> {
  // stdin by the names a shell gives it, which Deno would not open without --allow-all
  if (local === "-" || /^\/(dev\/stdin|dev\/fd\/0|proc\/self\/fd\/0)$/.test(local)) {
    return { source: Deno.stdin, close() {} };
  }
  let file: Deno.FsFile;
  try {
    file = await Deno.open(local, { read: true });
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new CommandError(`file not found: ${shown(local)}`, { cause: error });
    }
    throw error;
  }
  const info = await file.stat();
  if (info.isDirectory) {
    file.close();
    throw new CommandError(`${shown(local)} is a directory: use fsd put -r to copy it`);
  }
  if (info.isFile) return { source: fileSource(file), size: info.size, close: () => file.close() };
  // A pipe, a FIFO, a device: read as it comes, size unknown.
  return { source: { read: (buffer) => file.read(buffer) }, close: () => file.close() };
}

/** Uploads `local` ("-" for stdin) as `remote`. */
export async function uploadFile(
  conn: JobConnection,
  local: string,
  remote: string,
  how: UploadHow,
): Promise<FileReport> {
  const started = performance.now();
  how.progress.begin(local === "-" ? "stdin" : local);
  const opened = await openLocal(local);
  try {
    if (opened.size !== undefined) how.progress.size(opened.size);
    const result = await conn.use((client, params) =>
      client.storeFile(remote, opened.source, {
        params,
        size: opened.size,
        integrity: how.integrity,
        onProgress: how.progress.update,
      })
    );
    how.progress.end(result.bytes);
    return {
      name: remote,
      local,
      kind: "file",
      size: result.bytes,
      bytes: result.bytes,
      seconds: (performance.now() - started) / 1000,
      outcome: "ok",
      ...(result.sha256 && { sha256: toHex(result.sha256), verified: result.verified }),
    };
  } finally {
    opened.close();
  }
}

/** Uploads a job's `files`, up to `how.jobs` at once, each reported in order. */
export async function uploadFiles(
  conn: JobConnection,
  files: JobFile[],
  how: Omit<UploadHow, "progress"> & { jobs: number },
  reporter: Reporter,
): Promise<void> {
  using lanes = conn.lanes(how.jobs);
  await runFiles(
    reporter,
    "sending",
    files,
    lanes,
    (file, progress, lane) => uploadFile(lane, file.local, file.remote, { ...how, progress }),
  );
}
