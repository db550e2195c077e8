/**
 * `fsd put -r`: walks a local directory and recreates it on the server:
 * each directory with the extension's mkdir, each file uploaded, all on
 * the job's connection. Symlinks to files are followed; symlinked
 * directories and special files are left out (and reported), so a loop
 * cannot make the walk endless.
 */

import { join } from "../../lib/path.ts";
import { expectCrc } from "../../lib/bytes/sha256.ts";
import { CommandError } from "../shared/cli.ts";
import { PeerError } from "../../lib/store/errors.ts";
import { ErrorCode } from "../../lib/store/errors.ts";
import type { JobConnection } from "./job_connection.ts";
import { endsJob } from "../shared/signals.ts";
import { joinRemote } from "./remote_names.ts";
import { failedReport, type Reporter } from "./report.ts";
import { uploadFiles, type UploadHow } from "./upload.ts";

interface Planned {
  local: string;
  remote: string;
  size: number;
  /** Whole seconds. */
  mtime: number;
}

/** The tree under `local`: its directories (parents first) and its files. */
async function plan(local: string, remote: string, reporter: Reporter) {
  const directories = [{ local, remote }];
  const files: Planned[] = [];
  for (let i = 0; i < directories.length; i++) {
    const directory = directories[i];
    const entries = await Array.fromAsync(Deno.readDir(directory.local));
    entries.sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
    for (const entry of entries) {
      const child = {
        local: join(directory.local, entry.name),
        remote: joinRemote(directory.remote, entry.name),
      };
      const info = await Deno.stat(child.local).catch(() => undefined);
      if (entry.isDirectory) directories.push(child);
      else if (info?.isFile) {
        files.push({ ...child, size: info.size, mtime: Math.floor(info.mtime!.getTime() / 1000) });
      } else {
        const why = info?.isDirectory ? "a symlink to a directory" : "not a regular file";
        reporter.add(failedReport(child.remote, child.local, new CommandError(`skipped: ${why}`)));
      }
    }
  }
  return { directories, files };
}

export async function uploadTree(
  conn: JobConnection,
  local: string,
  remote: string,
  how: Omit<UploadHow, "progress"> & { jobs: number },
  reporter: Reporter,
): Promise<void> {
  const { directories, files } = await plan(local, remote, reporter);
  if (how.integrity.checksum === "crc32") expectCrc(files.reduce((n, file) => n + file.size, 0));
  /** What is on the server already, in the directories that existed: name to size and mtime. */
  const there = new Map<string, { size: number; mtime: number }>();
  for (const directory of directories) {
    const report = { name: directory.remote, local: directory.local, bytes: 0, seconds: 0 };
    try {
      await conn.use((client) => client.makeDirectory(directory.remote));
      reporter.add({ ...report, kind: "directory", outcome: "ok" });
    } catch (error) {
      if (endsJob(error)) throw error;
      // An existing directory is used as it is (its files still never get replaced).
      if (error instanceof PeerError && error.code === ErrorCode.FILE_EXISTS) {
        for (const entry of await conn.use((client) => client.list(directory.remote))) {
          const mtime = entry.mtime.getTime() / 1000;
          there.set(joinRemote(directory.remote, entry.name), { size: entry.size, mtime });
        }
        continue;
      }
      reporter.add({
        ...failedReport(directory.remote, directory.local, error),
        kind: "directory",
      });
    }
  }
  // A rerun skips each file already there with LOCAL's size and mtime (put -r keeps mtimes).
  const identical = (file: Planned) => {
    const remote = there.get(file.remote);
    return remote?.size === file.size && remote.mtime === file.mtime;
  };
  await uploadFiles(conn, files, how, reporter, (file) => identical(file as Planned));
}
