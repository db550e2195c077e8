/**
 * One file of a put job: from a local file, stdin or a special file (a
 * pipe such as `<(cmd)`, read directly as a stream) to a name on the
 * server; the report says how it went. Shared by the one-file form, -o and -r.
 */

import { type ByteSource, fileSource, SYNC_READ_BYTES } from "../../lib/bytes/source_sink.ts";
import { FSD1 } from "../../lib/fsd/negotiation.ts";
import { digestFields, type Integrity } from "./integrity.ts";
import { CommandError } from "../shared/cli.ts";
import type { JobConnection } from "./job_connection.ts";
import type { FileProgress } from "./job_progress.ts";
import { type FileReport, type Reporter, skippedReport } from "./report.ts";
import { type JobFile, runFiles } from "./jobs.ts";
import { shown } from "./remote_names.ts";
import { requireAccess } from "../shared/local_access.ts";

export interface UploadHow {
  integrity: Integrity;
  /** Give the file on the server LOCAL's mtime (-p; put -r always). */
  preserve?: boolean;
  progress: FileProgress;
}

/** Opens LOCAL for reading: a regular file (with its size), or a stream; a directory is refused. */
export async function openLocal(
  local: string,
): Promise<{ source: ByteSource; size?: number; mtime?: number; close(): void }> {
  // stdin by the names a shell gives it, which Deno would not open without --allow-all
  if (local === "-" || /^\/(dev\/stdin|dev\/fd\/0|proc\/self\/fd\/0)$/.test(local)) {
    return { source: Deno.stdin, close() {} };
  }
  requireAccess(local, "read");
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
  if (info.isFile) {
    const mtime = info.mtime ? Math.floor(info.mtime.getTime() / 1000) : undefined;
    // Read synchronously up to SYNC_READ_BYTES, and by TFTP's blocks all along (readSync):
    // a client serves nobody else.
    const source = fileSource(file, SYNC_READ_BYTES, true);
    return { source, size: info.size, mtime, close: () => file.close() };
  }
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
    const result = await conn.use((client, params) => {
      if (params === FSD1) how.integrity.plain(shown(remote));
      return client.storeFile(remote, opened.source, {
        params,
        size: opened.size,
        mtime: how.preserve ? opened.mtime : undefined,
        integrity: how.integrity.checksum,
        onGranted: (granted) => how.integrity.granted(granted, shown(remote)),
        onProgress: how.progress.update,
      });
    });
    how.progress.end(result.bytes);
    return {
      name: remote,
      local,
      kind: "file",
      size: result.bytes,
      bytes: result.bytes,
      seconds: (performance.now() - started) / 1000,
      outcome: "ok",
      ...digestFields(result),
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
  skip: (file: JobFile) => boolean = () => false,
): Promise<void> {
  using lanes = conn.lanes(how.jobs);
  await runFiles(
    reporter,
    "sending",
    files,
    lanes,
    (file, progress, lane) =>
      skip(file)
        ? Promise.resolve(skippedReport(file.remote, file.local, file.size ?? 0))
        : uploadFile(lane, file.local, file.remote, { ...how, progress }),
  );
}
