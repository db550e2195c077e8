/**
 * `fsd put` over fsd/1: one file, several (-o REMOTEDIR) or a tree (-r),
 * on one job connection (and its lanes). Loaded only when a put speaks
 * fsd/1 (commands/put.ts declares the flags and picks the side).
 */

import { basename } from "../../lib/path.ts";
import { CommandError, UsageError } from "../shared/cli.ts";
import { Integrity } from "./integrity.ts";
import { FSD1 } from "../../lib/fsd/negotiation.ts";
import { parseJob, targetWords } from "./options.ts";
import { parseJobs } from "./client_flags.ts";
import { JobConnection } from "./job_connection.ts";
import { endsJob, Interruption } from "../shared/signals.ts";
import { joinRemote, normalizeRemote, shown } from "./remote_names.ts";
import { Reporter, verbosity } from "./report.ts";
import { runOneFile } from "./jobs.ts";
import { uploadFile, uploadFiles } from "./upload.ts";
import { requireAccess, requireOwnAccess } from "../shared/local_access.ts";
import { ErrorCode, PeerError } from "../../lib/store/errors.ts";

/** The flags put's fsd/1 side reads (commands/put.ts declares them). */
export type FsdPutValues =
  & Parameters<typeof parseJob>[1]
  & Parameters<typeof verbosity>[0]
  & Parameters<typeof Integrity.parse>[0]
  & {
    output?: string;
    recursive: boolean;
    preserve: boolean;
    json: boolean;
    jobs?: number;
  };

/** Runs `fsd put` over fsd/1. */
export async function fsdPut(
  { values, positionals }: { values: FsdPutValues; positionals: string[] },
): Promise<void> {
  const { target, params, names } = parseJob(
    targetWords(positionals, "put"),
    values,
    "fsd put HOST PORT LOCAL [REMOTE]",
  );
  const output = values.output;
  if (output !== undefined && values.recursive) throw new UsageError("-o and -r do not mix");
  if (output === undefined && names.length > 2) {
    throw new UsageError(`unexpected argument: ${names[2]}: several files need -o REMOTEDIR`);
  }
  if (output !== undefined && names.includes("-")) {
    throw new UsageError("stdin ('-') needs the one-file form with REMOTE");
  }
  // The password prompt first: no progress line may draw over it.
  await target.security?.();
  using interruption = new Interruption();
  using conn = new JobConnection(target, params, interruption);
  const reporter = new Reporter(values.json, verbosity(values));
  const integrity = Integrity.parse(values, params === FSD1);
  const many = output !== undefined || values.recursive;
  const how = {
    integrity,
    preserve: values.preserve || values.recursive,
    jobs: parseJobs(values.jobs, many),
  };
  if (output !== undefined) return await putMany(conn, names, output, how, reporter);
  if (values.recursive) return await putTree(conn, names[0], names[1], how, reporter);
  await putOne(conn, names[0], names[1], how, reporter);
}

type How = { integrity: Integrity; preserve: boolean; jobs: number };

/** The remote name for LOCAL as typed: a REMOTE ending in `/` (or `.`) is a directory to put it in. */
function remoteFor(local: string, typed: string | undefined): string {
  if (typed === undefined) return basename(local);
  const remote = normalizeRemote(typed);
  if (typed.endsWith("/") || remote === "") return joinRemote(remote, basename(local));
  return remote;
}

async function putOne(
  conn: JobConnection,
  local: string,
  typed: string | undefined,
  how: How,
  reporter: Reporter,
): Promise<void> {
  if (local === "-" && typed === undefined) {
    throw new UsageError("REMOTE is required when LOCAL is '-'");
  }
  const remote = remoteFor(local, typed);
  const said = `sent ${local === "-" ? "stdin" : shown(local)} as ${shown(remote)}`;
  await runOneFile(
    reporter,
    "sending",
    { name: remote, local, said },
    (progress) => uploadFile(conn, local, remote, { ...how, progress }),
  );
}

/** Whether `path` is there to be read (anything else shows when its upload fails). */
function exists(path: string): boolean {
  requireAccess(path, "read");
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** Makes sure REMOTEDIR exists on the server (created when missing). */
async function ensureRemoteDirectory(conn: JobConnection, remote: string): Promise<boolean> {
  if (remote === "") return true;
  try {
    await conn.use((client) => client.makeDirectory(remote));
    return false;
  } catch (error) {
    if (error instanceof PeerError && error.code === ErrorCode.FILE_EXISTS) return true;
    throw error;
  }
}

async function putMany(
  conn: JobConnection,
  names: string[],
  output: string,
  how: How,
  reporter: Reporter,
): Promise<void> {
  const directory = normalizeRemote(output);
  // Only for files that exist: a job with nothing to send leaves no empty REMOTEDIR behind.
  if (names.some(exists)) {
    await ensureRemoteDirectory(conn, directory);
  }
  const files = names.map((local) => ({ local, remote: joinRemote(directory, basename(local)) }));
  await uploadFiles(conn, files, how, reporter);
  reporter.finish("sent");
}

async function putTree(
  conn: JobConnection,
  local: string,
  typed: string | undefined,
  how: How,
  reporter: Reporter,
): Promise<void> {
  requireOwnAccess(local, "read");
  const info = await Deno.stat(local).catch(() => undefined);
  if (!info?.isDirectory) {
    throw new CommandError(
      info ? `not a directory: ${shown(local)}` : `directory not found: ${local}`,
    );
  }
  const base = basename(local.replace(/\/+$/, "")) || ".";
  let remote = typed === undefined ? normalizeRemote(base) : normalizeRemote(typed);
  if (remote === "" && typed === undefined) {
    throw new UsageError(`cannot name a directory after ${shown(local)}: give REMOTEDIR`);
  }
  // As cp -r: into REMOTEDIR when it exists already.
  if (typed !== undefined && remote !== "" && await isRemoteDirectory(conn, remote)) {
    remote = joinRemote(remote, base);
  }
  if (typed !== undefined && remote === "") remote = normalizeRemote(base);
  const { uploadTree } = await import("./tree_put.ts");
  await uploadTree(conn, local, remote, how, reporter);
  reporter.finish("sent");
}

async function isRemoteDirectory(conn: JobConnection, remote: string): Promise<boolean> {
  try {
    await conn.use((client) => client.list(remote));
    return true;
  } catch (error) {
    if (endsJob(error)) throw error;
    return false;
  }
}
