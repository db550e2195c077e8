/**
 * Where a download goes on this machine, and how it gets there.
 *
 * A regular LOCAL is written under a hidden staging name beside it and given
 * its name only once complete and checked. A special file (/dev/null,
 * /dev/stdout, a FIFO) is written directly: it cannot be staged. With
 * --continue the staging file is `.fsd-partial-NAME`, kept when the
 * download fails so that the next --continue picks it up.
 */

import { basename, dirname, join } from "../../lib/path.ts";
import { DOWNLOAD_PREFIX, removeStaleDownloads, StagedFile } from "../../lib/store/staging.ts";
import type { ByteSink } from "../../lib/bytes/source_sink.ts";
import { fileSink } from "../../lib/bytes/source_sink.ts";
import { type Hasher, hashPrefix } from "../../lib/bytes/sha256.ts";
import { CommandError, UsageError } from "../shared/cli.ts";
import { shown } from "./remote_names.ts";
import { requireAccess, requireOwnAccess } from "../shared/local_access.ts";

export const PARTIAL_PREFIX = ".fsd-partial-";

/** A download's local end: write into `sink`, then `commit` or `discard`. */
export interface LocalDownload {
  readonly path: string;
  readonly sink: ByteSink;
  /** For --continue: where to resume (undefined: from the start). */
  readonly resume?: { offset: number; mtime: number; hashPrefix: (hash: Hasher) => Promise<void> };
  /** The server did not resume: start the file over. */
  restart(): Promise<void>;
  /**
   * Gives the data its name (replacing only with `replace`), with `mtime`
   * (seconds) set on the open file first when given: no path call for it.
   */
  commit(replace: boolean, mtime?: number): Promise<void>;
  /** After a failure: removes the data (or, for --continue unless `keep` is false, keeps it with the remote mtime). */
  discard(remoteMtime?: number, keep?: boolean): Promise<void>;
}

/**
 * What `path` is (`follow`: through symlinks), undefined if nothing; a
 * permission error (Deno's own message says which flag) is thrown. Sync: a
 * metadata call costs a few microseconds so, against over a hundred as an
 * async op, which a job of many small files pays per file.
 */
function stat(path: string, follow = true): Deno.FileInfo | undefined {
  requireAccess(path, "read");
  try {
    return follow ? Deno.statSync(path) : Deno.lstatSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound || error instanceof Deno.errors.NotADirectory) {
      return undefined;
    }
    if (error instanceof Deno.errors.NotCapable && /all access/.test(error.message)) {
      // Deno opens /dev and /proc paths (but /dev/null) only for a program run with --allow-all
      throw new CommandError(
        `cannot write ${path}: a device: give LOCAL - and redirect, as in: fsd get HOST PORT REMOTE - > ${path}`,
        { cause: error },
      );
    }
    throw error;
  }
}

/** The standard streams by the names a shell gives them, which Deno would not open without --allow-all. */
function standardStream(path: string): typeof Deno.stdout | typeof Deno.stderr | undefined {
  if (/^\/(dev\/stdout|dev\/fd\/1|proc\/self\/fd\/1)$/.test(path)) return Deno.stdout;
  if (/^\/(dev\/stderr|dev\/fd\/2|proc\/self\/fd\/2)$/.test(path)) return Deno.stderr;
  return undefined;
}

/**
 * The path a download of `remoteBase` should take for LOCAL as typed: an
 * existing directory receives it under its base name; a LOCAL ending in `/`
 * must be one.
 */
export function downloadPath(local: string, remoteBase: string | undefined): string {
  if (standardStream(local)) return local;
  const info = stat(local);
  if (local.endsWith("/") && !info?.isDirectory) {
    throw new CommandError(
      info ? `not a directory: ${local}` : `directory not found: ${local}: create it first`,
    );
  }
  if (!info?.isDirectory) return local;
  if (!remoteBase) throw new UsageError(`cannot name a file in ${local}: give LOCAL`);
  return join(local, remoteBase);
}

/** Whether `path` exists as something that is neither a file nor a directory (a device, a FIFO). */
export function isSpecial(path: string): boolean {
  if (standardStream(path)) return true;
  const info = stat(path);
  return info !== undefined && !info.isFile && !info.isDirectory;
}

/**
 * A download's staging file is made, named and removed with synchronous
 * calls, and its first MiB written synchronously: this process serves nobody
 * else, and a job of many small files otherwise spends more on handing
 * these calls to Deno's I/O threads than on the calls (docs/PERFORMANCE.md,
 * "Many files"). Past the first MiB, a file is written behind the network.
 */
const SYNC_METADATA = { syncMetadata: true };
const SYNC_WRITES = 1024 * 1024;

/**
 * A download file's sink, offering synchronous writes too: this process
 * serves nobody else, so a protocol that writes block by block (TFTP) may
 * write each straight from its receive buffer (docs/PERFORMANCE.md, "TFTP
 * client per block").
 */
function clientSink(file: Deno.FsFile, syncBytes = 0): ByteSink {
  return { ...fileSink(file, undefined, syncBytes), writeSync: (bytes) => file.writeSync(bytes) };
}

/**
 * Directories this process swept (a job of many files sweeps each once),
 * each with the names it held when read and those given here since
 * (undefined: it could not be read, or held over MAX_KNOWN_NAMES): a later
 * download to a name not among them need not look it up (a failed lookup
 * costs Deno an error object, about 25 µs). A name that appears meanwhile
 * is still never replaced: the staging file's link fails, "file exists".
 */
const swept = new Map<string, Promise<Set<string> | undefined>>();

/** Most names kept of one directory; past it, each download looks its own name up. */
const MAX_KNOWN_NAMES = 100_000;

/** Removes what killed downloads left in `directory` (never a live one's file), once per process. */
function sweepOnce(directory: string): Promise<Set<string> | undefined> {
  let names = swept.get(directory);
  if (!names) {
    names = removeStaleDownloads(directory).then((found) =>
      found && found.size <= MAX_KNOWN_NAMES ? found : undefined
    );
    swept.set(directory, names);
  }
  return names;
}

/**
 * Whether nothing is at `path`, as far as this process knows without
 * looking: its directory's sweep (waited for, if under way) saw no such
 * name, and none was given here since. Undefined, at once, for a directory
 * not swept yet.
 */
function knownAbsent(path: string): Promise<boolean> | undefined {
  return swept.get(dirname(path))?.then((names) =>
    names !== undefined && !names.has(basename(path))
  );
}

/** Opens the local end of a download to `path` (checked with downloadPath). */
export async function openDownload(
  path: string,
  options: { force?: boolean; resume?: boolean; absent?: boolean },
): Promise<LocalDownload> {
  const stream = standardStream(path);
  if (stream) return openStream(path, stream);
  // No await for a directory not swept yet: the first download reaches its sweep before the
  // next one asks.
  const known = options.absent ? undefined : knownAbsent(path);
  const absent = options.absent || (known !== undefined && await known);
  const existing = absent ? undefined : stat(path, false);
  if (
    existing?.isSymlink ? isSpecial(path) : existing && !existing.isFile && !existing.isDirectory
  ) {
    requireAccess(path, "write");
    return await openSpecial(path);
  }
  // Staged (or resumed) beside it: its directory is read (swept) and written.
  requireOwnAccess(dirname(path), "read", "write");
  if (!options.force && existing) {
    throw new Deno.errors.AlreadyExists(`file exists: ${path}: use --force to replace it`);
  }
  if (options.resume) return await openPartial(path);
  await sweepOnce(dirname(path));
  const staged = await StagedFile.create(path, DOWNLOAD_PREFIX, SYNC_METADATA).catch((error) => {
    if (error instanceof Deno.errors.NotFound) {
      throw new CommandError(`directory not found: ${dirname(path)}`);
    }
    throw error;
  });
  return {
    path,
    sink: clientSink(staged.file, SYNC_WRITES),
    restart: () => Promise.resolve(),
    async commit(replace, mtime) {
      if (mtime !== undefined) staged.file.utimeSync(mtime, mtime);
      await staged.commit({ replace }).catch((error) => {
        if (error instanceof Deno.errors.AlreadyExists) {
          throw new Deno.errors.AlreadyExists(`file exists: ${path}: use --force to replace it`);
        }
        throw error;
      });
      (await swept.get(dirname(path)))?.add(basename(path));
    },
    discard: () => staged.discard(),
  };
}

/** A device or FIFO: written directly, nothing to commit or remove. */
async function openSpecial(path: string): Promise<LocalDownload> {
  const file = await Deno.open(path, { write: true });
  let open = true;
  const close = () => {
    if (open) file.close();
    open = false;
    return Promise.resolve();
  };
  return {
    path,
    sink: { write: (bytes) => file.write(bytes) },
    restart: () => Promise.resolve(),
    commit: close,
    discard: close,
  };
}

/** Standard output or error, named as a path: written directly, never closed. */
function openStream(path: string, stream: typeof Deno.stdout): LocalDownload {
  const done = () => Promise.resolve();
  return {
    path,
    sink: { write: (bytes) => stream.write(bytes), writeSync: (bytes) => stream.writeSync(bytes) },
    restart: done,
    commit: done,
    discard: done,
  };
}

/** `.fsd-partial-NAME` beside `path`: picked up where it ended, kept on failure. */
async function openPartial(path: string): Promise<LocalDownload> {
  const partial = join(dirname(path), `${PARTIAL_PREFIX}${basename(path)}`);
  const info = await Deno.lstat(partial).catch(() => undefined);
  if (info && !info.isFile) throw new CommandError(`not a regular file: ${shown(partial)}`);
  const file = await Deno.open(partial, { read: true, write: true, create: true });
  const offset = info?.size ?? 0;
  await file.seek(0, Deno.SeekMode.End);
  let open = true;
  const close = () => {
    if (open) file.close();
    open = false;
  };
  return {
    path,
    sink: clientSink(file),
    resume: offset > 0
      ? {
        offset,
        mtime: Math.floor((info!.mtime?.getTime() ?? 0) / 1000),
        hashPrefix: async (hash) => {
          await file.seek(0, Deno.SeekMode.Start);
          await hashPrefix(file, offset, hash);
          await file.seek(0, Deno.SeekMode.End);
        },
      }
      : undefined,
    async restart() {
      await file.truncate(0);
      await file.seek(0, Deno.SeekMode.Start);
    },
    async commit(replace, mtime) {
      if (mtime !== undefined) file.utimeSync(mtime, mtime);
      await file.syncData();
      close();
      if (replace) return await Deno.rename(partial, path);
      await Deno.link(partial, path).catch((error) => {
        if (error instanceof Deno.errors.AlreadyExists) {
          throw new Deno.errors.AlreadyExists(`file exists: ${path}: use --force to replace it`);
        }
        throw error;
      });
      await Deno.remove(partial);
    },
    async discard(remoteMtime, keep = true) {
      close();
      if (!keep) return await Deno.remove(partial).catch(() => {});
      // The mtime the server reported, so that --continue can ask whether the file is unchanged.
      if (remoteMtime !== undefined) await Deno.utime(partial, remoteMtime, remoteMtime);
    },
  };
}
