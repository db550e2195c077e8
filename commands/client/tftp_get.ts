/**
 * `fsd get` over TFTP: one file, or several with -o DIR, with fsd/1's
 * local-file rules, --json, --sha256, --force and --continue.
 */

import { join } from "../../lib/path.ts";
import { hashingSink, sha256For, toHex } from "../../lib/bytes/sha256.ts";
import { errorMessage, sameBytes } from "../../lib/bytes/source_sink.ts";
import { type TftpClientConfig, tftpDownload } from "../../lib/tftp/client.ts";
import { CommandError, UsageError } from "../shared/cli.ts";
import type { FileProgress } from "./job_progress.ts";
import { runFiles, runOneFile } from "./jobs.ts";
import { downloadPath, type LocalDownload, openDownload } from "./local_files.ts";
import { requireOwnAccess } from "../shared/local_access.ts";
import { type FileReport, Reporter } from "./report.ts";
import { lanes, parseWhere, type TftpValues, withTftpJob } from "./tftp.ts";
import { URL_PREFIX } from "./sides.ts";

/** What TFTP takes of get's own flags. */
export interface TftpGetValues extends TftpValues {
  force: boolean;
  continue: boolean;
  output?: string;
  sha256?: Uint8Array;
  json: boolean;
}

/** One file to fetch: from which server, which name, to where. */
interface GetFile {
  config: TftpClientConfig;
  remote: string;
  local: string;
}

const GET_USAGE =
  "fsd get tftp://HOST[:PORT]/REMOTE [LOCAL] | fsd get HOST PORT REMOTE [LOCAL] --tftp";

/** The files a get names: one (with LOCAL), or with -o DIR several URLs, or HOST PORT and several names. */
function getFiles(positionals: string[], output: string | undefined): GetFile[] {
  const base = (remote: string) => {
    const name = remote.split("/").filter((part) => part !== "").pop();
    if (!name || remote.endsWith("/")) {
      throw new UsageError(`no file named in ${JSON.stringify(remote)}`);
    }
    return name;
  };
  if (output === undefined) {
    const where = parseWhere(positionals, GET_USAGE);
    if (where.rest.length > 1) {
      throw new UsageError(`unexpected argument: ${where.rest[1]}: several files need -o DIR`);
    }
    const local = where.rest[0] ?? base(where.remote);
    const path = local === "-" ? local : downloadPath(local, base(where.remote));
    return [{ config: where.config, remote: where.remote, local: path }];
  }
  const byUrl = positionals[0]?.toLowerCase().startsWith(URL_PREFIX);
  const named = byUrl ? positionals.map((url) => parseWhere([url], GET_USAGE)) : (() => {
    if (positionals.length < 3) throw new UsageError(`missing arguments: usage: ${GET_USAGE}`);
    const where = parseWhere(positionals.slice(0, 3), GET_USAGE);
    return positionals.slice(2).map((remote) => ({ ...where, remote }));
  })();
  return named.map((where) => ({
    config: where.config,
    remote: where.remote,
    local: join(output, base(where.remote)),
  }));
}

/** `fsd get` over TFTP: one file, or several with -o DIR; --json, --sha256, --continue as fsd/1's. */
export async function tftpGet(
  parsed: { values: TftpGetValues; positionals: string[] },
): Promise<void> {
  const values = parsed.values;
  const many = values.output !== undefined;
  if (many && values.continue) throw new UsageError("--continue takes one file, without -o");
  if (many && values.sha256) throw new UsageError("--sha256 takes one file, without -o");
  const files = getFiles(parsed.positionals, values.output);
  const toStdout = !many && files[0].local === "-";
  if (values.json && toStdout) throw new UsageError("--json does not mix with LOCAL '-'");
  const how = { force: values.force, resume: values.continue, expected: values.sha256 };
  const reporter = new Reporter(values.json);
  await withTftpJob(values, async (config) => {
    if (toStdout) {
      await tftpDownload(config(files[0]), files[0].remote, Deno.stdout).catch((error) => {
        if (error instanceof Deno.errors.BrokenPipe) throw new CommandError("", { exitCode: 141 });
        throw error;
      });
    } else if (many) {
      requireOwnAccess(values.output!, "read", "write");
      await Deno.mkdir(values.output!, { recursive: true });
      await runFiles(
        reporter,
        "receiving",
        files,
        lanes(values.jobs),
        (file, progress) =>
          downloadFile(config(file), file.remote, file.local, { ...how, progress }),
      );
      reporter.finish("received");
    } else {
      const [file] = files;
      const said = `received ${file.remote} as ${file.local}`;
      await runOneFile(reporter, "receiving", { name: file.remote, local: file.local, said }, (
        progress,
      ) => downloadFile(config(file), file.remote, file.local, { ...how, progress }));
    }
  });
}

/**
 * One TFTP download into `path`, with fsd/1's local-file rules: staged and
 * named once complete (and checked against --sha256); with --continue a
 * failure keeps what arrived, but TFTP has no offsets, so the next try
 * starts the file over.
 */
async function downloadFile(
  config: TftpClientConfig,
  remote: string,
  path: string,
  how: { force: boolean; resume: boolean; expected?: Uint8Array; progress: FileProgress },
): Promise<FileReport> {
  const started = performance.now();
  how.progress.begin(remote);
  let local: LocalDownload | undefined = await openDownload(path, how).catch((error) => {
    throw error instanceof Deno.errors.AlreadyExists || error instanceof Deno.errors.NotFound
      ? new CommandError((error as Error).message, { cause: error })
      : error;
  });
  const hash = how.expected ? sha256For(undefined) : undefined;
  try {
    if (local.resume) await local.restart();
    const bytes = await tftpDownload(config, remote, hashingSink(local.sink, hash), {
      onProgress: how.progress.update,
      onSize: how.progress.size,
    });
    const digest = await hash?.digest();
    if (how.expected && digest && !sameBytes(digest, how.expected)) {
      throw new Error(
        `sha256 mismatch: ${remote} has ${toHex(digest)}, expected ${toHex(how.expected)}`,
      );
    }
    await local.commit(how.force);
    local = undefined;
    how.progress.end(bytes);
    return {
      name: remote,
      local: path,
      kind: "file",
      size: bytes,
      bytes,
      seconds: (performance.now() - started) / 1000,
      outcome: "ok",
      ...(digest && { sha256: toHex(digest), verified: true }),
    };
  } catch (error) {
    hash?.close();
    // A partial that fails its digest is worth nothing: it goes too.
    await local?.discard(undefined, !/sha256 mismatch/.test(errorMessage(error)));
    local = undefined;
    throw error;
  } finally {
    await local?.discard();
  }
}
