/**
 * `fsd get`, `fsd put` and `fsd ls` with http:// and https:// URLs: the
 * HTTP face of an fsd server (or, for get, any HTTP server's file), with the
 * same local-file rules as fsd/1's client (staged, never replacing without
 * --force, --continue from `.fsd-partial-NAME`, --sha256 checked before the
 * file gets its name) and the same --json lines.
 *
 * Permissions: --allow-net=HOST:PORT; get: --allow-read --allow-write for
 * LOCAL's directory; put: --allow-read for LOCAL.
 */

import { basename, join } from "../../lib/path.ts";
import { fileSource, sameBytes } from "../../lib/bytes/source_sink.ts";
import { hashingSink, sha256For, toHex } from "../../lib/bytes/sha256.ts";
import { HttpClient } from "../../lib/http/client.ts";
import type { ListingEntry } from "../../lib/store/listing.ts";
import { CommandError, UsageError } from "../shared/cli.ts";
import { Progress } from "../shared/progress.ts";
import { downloadPath, openDownload } from "./local_files.ts";
import { requireAccess } from "../shared/local_access.ts";
import { type FileReport, Reporter } from "./report.ts";
import { type ClientSecurityValues, parseClientSecurity } from "./security.ts";

/** What HTTP takes of the client flags. */
type HttpValues = ClientSecurityValues & { timeout: number };

async function clientFor(values: HttpValues): Promise<HttpClient> {
  const security = await parseClientSecurity(values)?.();
  return new HttpClient({
    timeoutMs: values.timeout,
    login: security?.login,
    caCerts: security?.tls?.caCerts,
  });
}

function checkUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`invalid URL: ${text}`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new UsageError(`invalid URL: ${text}: expected http:// or https://`);
  }
  return url;
}

/** The file name a URL's path ends with. */
function urlBase(url: URL): string | undefined {
  const last = url.pathname.split("/").pop();
  return last ? decodeURIComponent(last) : undefined;
}

/** `fsd get` over HTTP. */
export async function httpGet(parsed: {
  values: HttpValues & {
    output?: string;
    force: boolean;
    continue: boolean;
    sha256?: Uint8Array;
    json: boolean;
  };
  positionals: string[];
}): Promise<void> {
  const { values, positionals } = parsed;
  const output = values.output;
  const urls = output === undefined ? positionals.slice(0, 1) : positionals;
  if (urls.length === 0) throw new UsageError("missing arguments: usage: fsd get URL [LOCAL]");
  if (output === undefined && positionals.length > 2) {
    throw new UsageError(`unexpected argument: ${positionals[2]}: several files need -o DIR`);
  }
  const expected = values.sha256;
  if (output !== undefined && (values.continue || expected)) {
    throw new UsageError("--continue and --sha256 take one file, without -o");
  }
  const parsedUrls = urls.map(checkUrl);
  const client = await clientFor(values);
  const reporter = new Reporter(values.json);
  try {
    for (const url of parsedUrls) {
      const base = urlBase(url);
      if (!base) throw new UsageError(`no file named in ${url.href}: give a file's URL`);
      const local = output === undefined ? positionals[1] ?? base : join(output, base);
      const report = await getOne(client, url, local, base, {
        force: values.force,
        resume: values.continue,
        expected,
      });
      reporter.add(report);
      if (output === undefined && report.outcome === "failed") {
        throw new CommandError(report.error!);
      }
    }
    if (output !== undefined) reporter.finish("received");
  } finally {
    client.close();
  }
}

async function getOne(
  client: HttpClient,
  url: URL,
  local: string,
  base: string,
  options: { force: boolean; resume: boolean; expected?: Uint8Array },
): Promise<FileReport> {
  const started = performance.now();
  const report = (extra: Partial<FileReport>): FileReport => ({
    name: decodeURIComponent(url.pathname),
    local,
    kind: "file",
    bytes: 0,
    seconds: (performance.now() - started) / 1000,
    outcome: "ok",
    ...extra,
  });
  if (local === "-") {
    const got = await client.download(url.href, Deno.stdout).catch((error) => ({ error }));
    if ("error" in got) return report({ outcome: "failed", error: (got.error as Error).message });
    return report({ bytes: got.bytes, size: got.size, mtime: got.mtime?.toISOString() });
  }
  let path: string;
  let download;
  try {
    path = downloadPath(local, base);
    download = await openDownload(path, { force: options.force, resume: options.resume });
  } catch (error) {
    return report({ outcome: "failed", error: (error as Error).message });
  }
  const hash = options.expected ? sha256For(undefined) : undefined;
  const progress = new Progress(`receiving ${basename(path)}`);
  let mtime: Date | undefined;
  try {
    const resume = download.resume;
    const got = await client.download(url.href, hashingSink(download.sink, hash), {
      from: resume && { offset: resume.offset, unchangedSince: new Date(resume.mtime * 1000) },
      onRestart: async () => {
        if (resume) await download.restart();
      },
      onStart: async (size, modified, resumed) => {
        mtime = modified;
        if (size !== undefined) progress.setTotal(size);
        // The bytes kept count toward the digest only when the server sends the rest.
        if (resumed && resume && hash) await resume.hashPrefix(hash);
      },
      onProgress: progress.update,
    });
    let digest: string | undefined;
    if (hash && options.expected) {
      const actual = await hash.digest();
      digest = toHex(actual);
      if (!sameBytes(actual, options.expected)) {
        throw new Error(`SHA-256 mismatch: got ${digest}; nothing kept`);
      }
    }
    await download.commit(options.force);
    if (got.mtime) await Deno.utime(path, got.mtime, got.mtime).catch(() => {});
    progress.stop();
    return report({
      local: path,
      bytes: got.bytes,
      size: got.size,
      mtime: got.mtime?.toISOString(),
      ...(digest && { sha256: digest, verified: true }),
    });
  } catch (error) {
    const mismatch = /SHA-256 mismatch/.test((error as Error).message);
    const seconds = mtime ? Math.floor(mtime.getTime() / 1000) : undefined;
    await download.discard(seconds, options.resume && !mismatch);
    return report({ local: path, outcome: "failed", error: (error as Error).message });
  } finally {
    progress.stop();
    hash?.close();
  }
}

/** `fsd put` over HTTP: `fsd put URL LOCAL...`; a URL ending in / takes each file's name. */
export async function httpPut(parsed: {
  values: HttpValues & { json: boolean };
  positionals: string[];
}): Promise<void> {
  const { values, positionals } = parsed;
  const [target, ...locals] = positionals;
  if (locals.length === 0) throw new UsageError("missing arguments: usage: fsd put URL LOCAL...");
  const url = checkUrl(target);
  if (locals.length > 1 && !url.pathname.endsWith("/")) {
    throw new UsageError("several files go to a directory URL (ending in /)");
  }
  const client = await clientFor(values);
  const reporter = new Reporter(values.json);
  try {
    for (const local of locals) {
      const started = performance.now();
      const remote = url.pathname.endsWith("/")
        ? new URL(encodeURIComponent(basename(local)), url)
        : url;
      const name = decodeURIComponent(remote.pathname);
      const progress = new Progress(`sending ${local}`);
      let file: Deno.FsFile | undefined;
      try {
        requireAccess(local, "read");
        file = await Deno.open(local, { read: true }).catch((error) => {
          throw error instanceof Deno.errors.NotFound
            ? new Error(`file not found: ${local}`)
            : error;
        });
        const info = await file.stat();
        if (!info.isFile) throw new Error(`not a regular file: ${local}`);
        progress.setTotal(info.size);
        await client.upload(remote.href, fileSource(file), info.size, progress.update);
        reporter.add({
          name,
          local,
          kind: "file",
          size: info.size,
          bytes: info.size,
          seconds: (performance.now() - started) / 1000,
          outcome: "ok",
        });
      } catch (error) {
        reporter.add({
          name,
          local,
          kind: "file",
          bytes: 0,
          seconds: (performance.now() - started) / 1000,
          outcome: "failed",
          error: (error as Error).message,
        });
        if (locals.length === 1) throw new CommandError((error as Error).message, { cause: error });
      } finally {
        progress.stop();
        file?.close();
      }
    }
    if (locals.length > 1) reporter.finish("sent");
  } finally {
    client.close();
  }
}

/** `fsd ls URL`: the entries of the directory the URL names (a trailing / is added). */
export async function httpList(
  values: HttpValues & { sha256: boolean },
  positionals: string[],
): Promise<ListingEntry[]> {
  if (positionals.length !== 1) throw new UsageError("usage: fsd ls URL [--json] [--sha256]");
  const url = checkUrl(positionals[0]);
  if (!url.pathname.endsWith("/")) url.pathname += "/";
  const client = await clientFor(values);
  try {
    return await client.list(url.href, values.sha256).catch((error) => {
      throw new CommandError((error as Error).message, { cause: error });
    });
  } finally {
    client.close();
  }
}
