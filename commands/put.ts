/**
 * `fsd put HOST PORT LOCAL [REMOTE]`: upload a file; with `-o REMOTEDIR`,
 * any number of files; with `-r`, a whole directory tree. One connection
 * for the whole job.
 * Its flags, help and permissions are declared below, once.
 */

import { basename } from "../lib/path.ts";
import { CommandError, UsageError } from "./shared/cli.ts";
import { defineCommand } from "./shared/command.ts";
import {
  TRANSFER_EXIT_STATUS,
  TRANSFER_GROUPS,
  TRANSFER_JOB_FLAGS,
} from "./client/transfer_flags.ts";
import { TRANSFER_SIDES } from "./client/sides.ts";
import { Integrity, INTEGRITY_FLAGS, refuseChecks } from "./client/integrity.ts";
import { FSD1 } from "../lib/fsd/negotiation.ts";
import { parseJob, parseJobs, targetWords } from "./client/options.ts";
import { JobConnection } from "./client/job_connection.ts";
import { endsJob, Interruption } from "./shared/signals.ts";
import { joinRemote, normalizeRemote, shown } from "./client/remote_names.ts";
import { Reporter, verbosity } from "./client/report.ts";
import { runOneFile } from "./client/jobs.ts";
import { uploadFile, uploadFiles } from "./client/upload.ts";
import { requireAccess, requireOwnAccess } from "./shared/local_access.ts";
import { PeerError } from "../lib/store/errors.ts";
import { ErrorCode } from "../lib/store/errors.ts";

export const put = defineCommand({
  name: "put",
  title: "Upload to an fsd server: one file, several, or a whole tree.",
  usage: [
    "fsd put HOST PORT LOCAL [REMOTE] [OPTIONS]",
    "fsd put HOST PORT LOCAL... -o REMOTEDIR [OPTIONS]",
    "fsd put -r HOST PORT LOCALDIR [REMOTEDIR] [OPTIONS]",
    "fsd put http[s]://HOST:PORT/[DIR/] LOCAL... [OPTIONS]",
  ],
  about: `HOST PORT may also be typed HOST:PORT, or with REMOTE as one URL before LOCAL,
fsd://HOST[:PORT]/REMOTE (port 10000 if none). REMOTE defaults to LOCAL's base name; a REMOTE ending in '/' is a directory to
upload into, as with cp. LOCAL '-' reads stdin (REMOTE is then required); a
pipe such as <(cmd) is read as it comes. With -o, every name after PORT is a
file to upload into REMOTEDIR. With -r, LOCALDIR is recreated as REMOTEDIR
(default: LOCALDIR's last part; into it if it exists on the server), as
cp -r does. With -o and -r, up to --jobs files move at once, each on its own
connection (directories are made first, on one); reports, --json lines and
failures come in the order of the names or the tree.

The server never replaces an existing file: it answers "file already exists"
instead. An upload that does not complete leaves nothing on the server. Every
file is checked: the client sends a CRC-32 of it after its data and the server
checks it before the file gets its name (--sha256 for a SHA-256,
--no-integrity for none).`,
  flags: {
    output: {
      short: "o",
      arg: "REMOTEDIR",
      help: "upload every LOCAL into REMOTEDIR",
    },
    recursive: {
      type: "boolean",
      short: "r",
      side: "fsd",
      help: "copy the directory LOCALDIR and everything in it",
    },
    preserve: {
      type: "boolean",
      short: "p",
      side: "fsd",
      help: `give each file on the server LOCAL's modification time, as
scp -p (always with -r: a rerun then skips the files
already there with the same size and time)`,
    },
    ...INTEGRITY_FLAGS,
    sha256: { type: "boolean", help: "the same as --integrity sha256" },
    json: {
      type: "boolean",
      help: `one JSON object per file on stdout (name, local, kind,
size, bytes, seconds, outcome, error, crc32 or sha256)`,
    },
    ...TRANSFER_JOB_FLAGS,
  },
  groups: TRANSFER_GROUPS,
  notes: TRANSFER_EXIT_STATUS,
  permissions: "--allow-net=HOST:PORT --allow-read=LOCAL",
  permissionNotes: `(LOCAL '-' needs only --allow-net; <(cmd) and other paths under /dev need
--allow-all, the only flag Deno grants them with)`,
  examples: [
    "fsd put 127.0.0.1 10000 notes.txt",
    "fsd put lab1 10000 build/report.pdf reports/week3.pdf",
    "fsd put lab1 10000 build/report.pdf reports/",
    "tar c src | fsd put lab1 10000 - src.tar",
    "fsd put lab1 10000 *.log -o logs",
    "fsd put -r lab1 10000 ./site www",
  ],
  side: TRANSFER_SIDES,
  async run({ values, positionals, side }) {
    if (side === "tftp") {
      refuseChecks(values);
      const { tftpPut } = await import("./client/tftp_put.ts");
      return await tftpPut({ values, positionals });
    }
    if (side === "http") {
      if (
        values.integrity !== undefined || (values.sha256 !== undefined && values.sha256 !== false)
      ) {
        throw new CommandError("--integrity and --sha256 cannot be checked over HTTP put");
      }
      const { httpPut } = await import("./client/http.ts");
      return await httpPut({ values, positionals });
    }
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
  },
});

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
  const { uploadTree } = await import("./client/tree_put.ts");
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
