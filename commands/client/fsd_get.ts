/**
 * `fsd get` over fsd/1: one file, several (-o DIR) or a tree (-r), on one
 * job connection (and its lanes). Loaded only when a get speaks fsd/1
 * (commands/get.ts declares the flags and picks the side).
 */

import { basename, join } from "../../lib/path.ts";
import { CommandError, UsageError } from "../shared/cli.ts";
import { parseJob, targetWords } from "./options.ts";
import { parseJobs } from "./client_flags.ts";
import { JobConnection } from "./job_connection.ts";
import { checkExpected, downloadFile, type DownloadHow } from "./download.ts";
import { Integrity } from "./integrity.ts";
import { FSD1 } from "../../lib/fsd/negotiation.ts";
import { endsJob, Interruption } from "../shared/signals.ts";
import { JobProgress } from "./job_progress.ts";
import { downloadPath } from "./local_files.ts";
import { requireOwnAccess } from "../shared/local_access.ts";
import { meansDirectory, normalizeRemote, remoteBase, shown } from "./remote_names.ts";
import { failureText, Reporter, verbosity } from "./report.ts";
import { runFiles, runOneFile } from "./jobs.ts";

/** The flags get's fsd/1 side reads (commands/get.ts declares them). */
export type FsdGetValues =
  & Parameters<typeof parseJob>[1]
  & Parameters<typeof verbosity>[0]
  & {
    output?: string;
    recursive: boolean;
    force: boolean;
    preserve: boolean;
    continue: boolean;
    sha256?: Uint8Array;
    integrity?: string;
    "no-integrity": boolean;
    json: boolean;
    jobs?: number;
  };

/** Runs `fsd get` over fsd/1. */
export async function fsdGet(
  { values, positionals }: { values: FsdGetValues; positionals: string[] },
): Promise<void> {
  const { target, params, names } = parseJob(
    targetWords(positionals, "get"),
    values,
    "fsd get HOST PORT REMOTE [LOCAL]",
  );
  const { output, recursive, sha256: expected } = values;
  const many = output !== undefined || recursive;
  if (many && values.continue) {
    throw new UsageError("--continue takes one file, without -o or -r");
  }
  if (many && expected) throw new UsageError("--sha256 takes one file, without -o or -r");
  if (expected && (values.integrity !== undefined || values["no-integrity"])) {
    throw new UsageError(
      "--sha256 HEX is the check itself: without --integrity or --no-integrity",
    );
  }
  if (values.continue && names[1] === "-") {
    throw new UsageError("--continue does not mix with LOCAL '-': a pipe cannot be resumed");
  }
  const integrity = expected
    ? new Integrity(undefined)
    : Integrity.parse({ ...values, sha256: undefined }, params === FSD1);
  if (output !== undefined && recursive) throw new UsageError("-o and -r do not mix");
  if (!many && names.length > 2) {
    throw new UsageError(`unexpected argument: ${names[2]}: several files need -o DIR`);
  }
  if (recursive && names.length > 2) {
    throw new UsageError(
      `unexpected argument: ${names[2]}: usage: fsd get -r HOST PORT REMOTEDIR [LOCALDIR]`,
    );
  }
  const json = values.json;
  if (json && !many && names[1] === "-") {
    throw new UsageError("--json does not mix with LOCAL '-'");
  }

  // The password prompt first: no progress line may draw over it.
  await target.security?.();
  using interruption = new Interruption();
  using conn = new JobConnection(target, params, interruption);
  const reporter = new Reporter(json, verbosity(values));
  const how = {
    force: values.force,
    resume: values.continue,
    preserve: values.preserve || recursive,
    integrity,
    expected,
    json,
    jobs: parseJobs(values.jobs, many),
  };
  if (output !== undefined) {
    await getMany(conn, names, output, how, reporter);
  } else if (recursive) {
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
    throw new CommandError(
      `${shown(typed)} is a directory: use fsd get -r to copy it, or fsd ls to list it`,
    );
  }
  if (local === "-") {
    const progress = new JobProgress("receiving", 1, undefined, reporter.progress);
    try {
      return await toStdout(conn, remote, how, progress);
    } finally {
      progress.stop();
    }
  }
  const base = remoteBase(remote)!;
  const path = downloadPath(local ?? base, base);
  const said = `received ${shown(remote)} as ${shown(path)}`;
  await runOneFile(
    reporter,
    "receiving",
    { name: remote, local: path, said },
    (progress) => downloadFile(conn, remote, path, { ...how, progress }),
  );
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
    if (error instanceof Deno.errors.BrokenPipe) throw new CommandError("", { exitCode: 141 });
    if (endsJob(error)) throw error;
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
  requireOwnAccess(output, "read", "write");
  // Connected first: a job that cannot start leaves no empty DIR behind.
  await conn.use(() => Promise.resolve());
  await Deno.mkdir(output, { recursive: true });
  const files = names.map((typed) => {
    const remote = normalizeRemote(typed);
    return { typed, remote, local: join(output, remoteBase(remote) ?? basename(typed)) };
  });
  using lanes = conn.downloadLanes(how.jobs);
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
  requireOwnAccess(destination, "read", "write");
  const info = await Deno.stat(destination).catch(() => undefined);
  if (info?.isDirectory && local !== undefined && base !== undefined) {
    destination = join(destination, base);
  } else if (info && !info.isDirectory) {
    throw new CommandError(`not a directory: ${destination}`);
  }
  const { downloadTree } = await import("./tree_get.ts");
  await downloadTree(conn, remote, destination, how, reporter);
  reporter.finish("received");
}
