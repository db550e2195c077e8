/**
 * One file of a get job: from the server into its local end (staged,
 * special, or resumed), checked, then given its name; the report says how
 * it went. Shared by the one-file form, -o and -r.
 */

import type { FsdClient, TransferResult } from "../../lib/fsd/client.ts";
import { FSD1, type TransferParams } from "../../lib/fsd/negotiation.ts";
import { toHex } from "../../lib/bytes/sha256.ts";
import { sameBytes } from "../../lib/bytes/source_sink.ts";
import { DigestMismatchError } from "../../lib/fsd/integrity.ts";
import type { JobConnection } from "./job_connection.ts";
import { type LocalDownload, openDownload } from "./local_files.ts";
import type { FileReport } from "./report.ts";
import type { FileProgress } from "./job_progress.ts";
import { shown } from "./remote_names.ts";
import { digestFields, type Integrity } from "./integrity.ts";

/** --sha256 HEX: throws unless the file's SHA-256 (computed beside the transfer) is `expected`. */
export function checkExpected(
  result: TransferResult,
  expected: Uint8Array | undefined,
  remote: string,
): void {
  if (!expected) return;
  const digest = result.checksum === "sha256" ? result.digest : undefined;
  if (!digest || !sameBytes(digest, expected)) {
    throw new DigestMismatchError(
      `sha256 mismatch: ${shown(remote)} has ${digest ? toHex(digest) : "no digest"}, expected ${
        toHex(expected)
      }`,
    );
  }
}

export interface DownloadHow {
  force: boolean;
  resume: boolean;
  integrity: Integrity;
  /** A digest the file must have (--sha256 HEX). */
  expected?: Uint8Array;
  /** The reports are printed (--json): ask for each file's mtime too. */
  json?: boolean;
  /** Give the file the server's mtime (-p; get -r always). */
  preserve?: boolean;
  /**
   * The caller has just found nothing at the local path (get -r's quick
   * check): it is not looked up again. The staging file's link never
   * replaces, so a file that appeared since still fails as "file exists".
   */
  absent?: boolean;
  progress: FileProgress;
}

/** Downloads `remote` to `path`; throws what went wrong (nothing is left behind, but a --continue partial). */
export async function downloadFile(
  conn: JobConnection,
  remote: string,
  path: string,
  how: DownloadHow,
): Promise<FileReport> {
  const started = performance.now();
  how.progress.begin(remote);
  let local: LocalDownload | undefined;
  let mtime: number | undefined;
  try {
    local = await openDownload(path, how);
    const opened = local;
    const result = await conn.use(async (client: FsdClient, params: TransferParams) => {
      if (params === FSD1) {
        how.integrity.plain(shown(remote));
        await opened.restart();
      }
      return await client.fetchFile(remote, opened.sink, {
        params,
        integrity: how.integrity.checksum,
        expectFile: true,
        wantDigest: how.expected !== undefined,
        wantMtime: how.resume || how.json || how.preserve,
        resume: opened.resume,
        keepPartial: how.resume,
        onGranted: async (granted) => {
          how.integrity.granted(granted, shown(remote));
          mtime = granted.mtime;
          if (opened.resume && !granted.offset) await opened.restart();
        },
        onSize: how.progress.size,
        onProgress: how.progress.update,
      });
    });
    checkExpected(result, how.expected, remote);
    await local.commit(how.force, how.preserve ? result.mtime : undefined);
    local = undefined;
    how.progress.end(result.bytes);
    return {
      name: remote,
      local: path,
      kind: "file",
      size: result.size ?? result.offset + result.bytes,
      ...(result.mtime !== undefined && { mtime: new Date(result.mtime * 1000).toISOString() }),
      bytes: result.bytes,
      seconds: (performance.now() - started) / 1000,
      outcome: "ok",
      ...digestFields(result),
    };
  } catch (error) {
    // A partial that fails its digest is worth nothing: it goes too.
    const corrupt = error instanceof DigestMismatchError;
    await local?.discard(mtime, !corrupt);
    local = undefined;
    throw error;
  } finally {
    await local?.discard(mtime);
  }
}
