/**
 * `fsd get -r`: walks a directory on the server (its listings, on the job's
 * connection) and fetches every file into the same tree here. Directories
 * are created as they come; an existing one is used as it is. The files
 * then move on the job's lanes (--jobs), the listing stays on one.
 */

import { dirname, join } from "../../lib/path.ts";
import { type ChecksumName, expectCrc } from "../../lib/bytes/sha256.ts";
import { CommandError } from "../shared/cli.ts";
import { downloadFile, type DownloadHow } from "./download.ts";
import type { JobConnection } from "./job_connection.ts";
import { joinRemote } from "./remote_names.ts";
import { failedReport, type FileReport, type Reporter, skippedReport } from "./report.ts";
import { FileFeed, runFiles } from "./jobs.ts";

interface Planned {
  remote: string;
  local: string;
  size: number;
  /** The server's mtime, whole seconds. */
  mtime: number;
  /** Under a directory this job made: nothing is there yet. */
  absent: boolean;
}

/** Creates `path` as a directory unless it is one already; true if it made it (so it was empty). */
async function ensureDirectory(path: string): Promise<boolean> {
  try {
    await Deno.mkdir(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      // As cp -r and scp -r: the tree's own directory is made, its parent must be there.
      throw new CommandError(`no such directory: ${dirname(path)}`, { cause: error });
    }
    if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
    const info = await Deno.stat(path);
    if (!info.isDirectory) throw new CommandError(`not a directory: ${path}`);
    return false;
  }
}

function directoryReport(remote: string, local: string, error?: unknown): FileReport {
  return error === undefined
    ? { name: remote, local, kind: "directory", bytes: 0, seconds: 0, outcome: "ok" }
    : { ...failedReport(remote, local, error), kind: "directory" };
}

/**
 * Lists the tree under `remote` and makes its directories under `local`,
 * feeding each directory's files to the lanes as soon as it is listed.
 */
async function plan(
  conn: JobConnection,
  remote: string,
  local: string,
  feed: FileFeed<Planned>,
  checksum: ChecksumName | undefined,
): Promise<void> {
  const pending = [{ remote, local }];
  while (pending.length > 0) {
    const directory = pending.shift()!;
    const entries = await conn.use((client) => client.list(directory.remote));
    let made: boolean;
    try {
      made = await ensureDirectory(directory.local);
    } catch (error) {
      feed.report(directoryReport(directory.remote, directory.local, error));
      continue;
    }
    feed.report(directoryReport(directory.remote, directory.local));
    let bytes = 0;
    for (const entry of entries) {
      const child = {
        remote: joinRemote(directory.remote, entry.name),
        local: join(directory.local, entry.name),
      };
      if (entry.kind === "d") pending.push(child);
      else {
        // In a directory this job just made, nothing is there to look at first.
        feed.add({ ...child, size: entry.size, mtime: entry.mtime.getTime() / 1000, absent: made });
        bytes += entry.size;
      }
    }
    if (checksum === "crc32") expectCrc(bytes);
  }
}

export async function downloadTree(
  conn: JobConnection,
  remote: string,
  local: string,
  how: Omit<DownloadHow, "progress"> & { jobs: number },
  reporter: Reporter,
): Promise<void> {
  const feed = new FileFeed<Planned>();
  using lanes = conn.downloadLanes(how.jobs);
  // The first lane lists; the others move what is listed meanwhile, and it joins them after.
  const planning = plan(conn, remote, local, feed, how.integrity.checksum)
    .finally(() => feed.end());
  const moving = runFiles(
    reporter,
    "receiving",
    feed,
    lanes,
    (file, progress, lane) => {
      const state = how.force ? "other" : file.absent ? "absent" : localState(file);
      return state === "identical"
        ? Promise.resolve(skippedReport(file.remote, file.local, file.size, file.mtime))
        : downloadFile(lane, file.remote, file.local, {
          ...how,
          progress,
          absent: state === "absent",
        });
    },
    { firstLaneAfter: planning.catch(() => {}) },
  );
  const [listed, moved] = await Promise.allSettled([planning, moving]);
  // A listing that failed ends the job (what moved before stays); else the lanes' outcome.
  if (listed.status === "rejected") throw listed.reason;
  if (moved.status === "rejected") throw moved.reason;
}

/**
 * "identical" when the local file is already the server's: a regular file of
 * the same size and mtime (whole seconds), as rsync's quick check. get -r
 * keeps the server's mtimes, so a rerun skips what an earlier run finished.
 * "absent" when nothing is there (the download need not look again). Sync:
 * one metadata call per file, a few microseconds.
 */
function localState(file: Planned): "identical" | "absent" | "other" {
  let info: Deno.FileInfo;
  try {
    info = Deno.lstatSync(file.local);
  } catch (error) {
    return error instanceof Deno.errors.NotFound ? "absent" : "other";
  }
  const seconds = Math.floor((info.mtime?.getTime() ?? -1000) / 1000);
  return info.isFile && info.size === file.size && seconds === file.mtime ? "identical" : "other";
}
