/**
 * A file written under a temporary name beside its target and given its
 * real name only when complete, so that a reader never sees it half-written
 * and a failed transfer leaves nothing under the target's name. Used by the
 * server for uploads and by the client for downloads.
 *
 * A staging file belongs to the process writing it for as long as it is
 * open: that process holds an exclusive advisory lock (flock(2)) on it.
 * Start-up cleanup removes only staging files no live process holds, so
 * several servers (and clients) may share one directory; a process that dies
 * loses its lock with its descriptors, and its leftovers become removable.
 */

import { dirname } from "../path.ts";
import { now } from "../bytes/source_sink.ts";

/** Downloads in progress beside a client's LOCAL file. */
export const DOWNLOAD_PREFIX = ".fsd-download-";

export interface CommitOptions {
  /** Replace an existing target (default: fail with AlreadyExists). */
  replace?: boolean;
  /** Flush the data to disk before it gets its name (default false). */
  sync?: boolean;
}

/**
 * How much is written between two background flushes (`StagedFile.wrote`).
 * Measured on this machine's disk (1 GiB, `fsd put`): see docs/PERFORMANCE.md.
 */
export const FLUSH_BEHIND_BYTES = 32 * 1024 * 1024;

/**
 * fdatasync(2) of what a staged file holds so far, started in the background
 * every `every` bytes written, never more than one at a time, so that the
 * sync a commit makes has only the tail left to write instead of the whole
 * file. Each flush goes through a second descriptor of the same file: Deno
 * runs one file resource's calls one after another, so a flush on the
 * writing descriptor would hold up every write behind it. A failed flush is
 * kept and thrown by `settle`: the kernel reports a write-back error once,
 * and the commit's own sync would not see it again.
 */
class FlushBehind {
  #since = 0;
  #inFlight: Promise<void> | undefined;
  #error: unknown;
  #reader: Promise<Deno.FsFile | undefined> | undefined;
  #closed = false;

  constructor(readonly path: string, readonly every: number) {}

  wrote(n: number): void {
    this.#since += n;
    if (this.#since < this.every || this.#inFlight || this.#closed) return;
    this.#since = 0;
    // Asked first, never prompted for: without it the commit's sync does it all.
    this.#reader ??= Deno.permissions.querySync({ name: "read", path: this.path }).state ===
        "granted"
      ? Deno.open(this.path, { read: true }).catch(() => undefined)
      : Promise.resolve(undefined);
    this.#inFlight = this.#reader
      .then((reader) => reader?.syncData())
      .catch((error) => void (this.#error ??= error))
      .finally(() => this.#inFlight = undefined);
  }

  /** Waits for the flush in flight; throws the error of any that failed. */
  async settle(): Promise<void> {
    await this.#inFlight;
    if (this.#error !== undefined) throw this.#error;
  }

  /** Waits for the flush in flight (its error dropped) and closes the second descriptor, once. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#inFlight;
    (await this.#reader)?.close();
  }
}

/** Tries to create a staging file that a concurrent sweep did not remove before it was locked. */
const CREATE_ATTEMPTS = 5;

/**
 * The metadata calls staging makes, in one of two ways: Deno's async calls
 * (each a hand-off to an I/O thread and back; a server, whose directory may
 * be a network file system, must not stall its other clients on one), or
 * the same calls made synchronously, which on a local disk cost a few
 * microseconds instead (a client's job of many small files pays them per
 * file; `fsd get -r` of 1,000 files spent more time handing its metadata
 * calls over than making them).
 */
interface MetadataCalls {
  open(path: string): Promise<Deno.FsFile>;
  /** Opens an existing file for reading (what `stillNamesFile` asks of the file system). */
  reopen(path: string): Promise<Deno.FsFile>;
  lock(file: Deno.FsFile): Promise<void>;
  fstat(file: Deno.FsFile): Promise<Deno.FileInfo>;
  lstat(path: string): Promise<Deno.FileInfo>;
  link(from: string, to: string): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  remove(path: string): Promise<void>;
}

const STAGING_OPEN: Deno.OpenOptions = { read: true, write: true, createNew: true };

const ASYNC_CALLS: MetadataCalls = {
  open: (path) => Deno.open(path, STAGING_OPEN),
  reopen: (path) => Deno.open(path, { read: true }),
  lock: (file) => file.lock(true),
  fstat: (file) => file.stat(),
  lstat: (path) => Deno.lstat(path),
  link: (from, to) => Deno.link(from, to),
  rename: (from, to) => Deno.rename(from, to),
  remove: (path) => Deno.remove(path),
};

const SYNC_CALLS: MetadataCalls = {
  open: (path) => now(() => Deno.openSync(path, STAGING_OPEN)),
  reopen: (path) => now(() => Deno.openSync(path, { read: true })),
  lock: (file) => now(() => file.lockSync(true)),
  fstat: (file) => now(() => file.statSync()),
  lstat: (path) => now(() => Deno.lstatSync(path)),
  link: (from, to) => now(() => Deno.linkSync(from, to)),
  rename: (from, to) => now(() => Deno.renameSync(from, to)),
  remove: (path) => now(() => Deno.removeSync(path)),
};

export interface CreateOptions {
  /** Make the metadata calls synchronously (a client on its own files; default false). */
  syncMetadata?: boolean;
}

export class StagedFile {
  readonly file: Deno.FsFile;
  /** Where the data is being written. */
  readonly path: string;
  /** The name it gets on commit. */
  readonly target: string;
  #open = true;
  #done = false;
  #calls: MetadataCalls;
  #flush: FlushBehind | undefined;

  private constructor(file: Deno.FsFile, path: string, target: string, calls: MetadataCalls) {
    this.file = file;
    this.path = path;
    this.target = target;
    this.#calls = calls;
  }

  /**
   * Creates `dirname(target)/<prefix><random>` for writing, locked for as long
   * as it is open; it never replaces anything.
   */
  static async create(
    target: string,
    prefix: string,
    options: CreateOptions = {},
  ): Promise<StagedFile> {
    const calls = options.syncMetadata ? SYNC_CALLS : ASYNC_CALLS;
    for (let attempt = 1;; attempt++) {
      const path = `${dirname(target)}/${prefix}${crypto.randomUUID()}`;
      const file = await calls.open(path);
      try {
        // A sweep may hold the lock for a moment, or have come and gone (it found
        // the file between create and lock): wait for it, then make sure the name
        // is still ours. (A synchronous lock waits the same way, blocking this
        // process meanwhile.)
        await calls.lock(file);
        if (await stillNamesFile(path, file, calls)) {
          return new StagedFile(file, path, target, calls);
        }
      } catch (error) {
        file.close();
        await calls.remove(path).catch(() => {});
        throw error;
      }
      // Swept (or, for a moment, stale): the name goes too if it is still there (it can only be
      // ours: random, and made new).
      await calls.remove(path).catch(() => {});
      file.close();
      if (attempt === CREATE_ATTEMPTS) {
        throw new Error(`staging file removed as soon as created: ${path}`);
      }
    }
  }

  /**
   * Counts `n` more bytes written; with `flushEvery`, starts a background
   * flush of what is written each time that many more are (see FlushBehind).
   * For a file committed with `sync`: the commit's flush then has only the
   * tail left.
   */
  wrote(n: number, flushEvery = FLUSH_BEHIND_BYTES): void {
    (this.#flush ??= new FlushBehind(this.path, flushEvery)).wrote(n);
  }

  /**
   * Gives the file its target name, then closes it. The lock is held until the
   * staging name is gone, so no sweep can take the data on the way.
   */
  async commit(options: CommitOptions = {}): Promise<void> {
    await this.#flush?.settle();
    if (options.sync) await this.file.syncData();
    await this.#flush?.close();
    if (options.replace) {
      await this.#calls.rename(this.path, this.target);
    } else if (await linkWithoutReplacing(this.path, this.target, this.#calls)) {
      await this.#calls.remove(this.path);
    }
    this.#done = true;
    this.#close();
  }

  /** Removes the staged data, unless it was committed, and closes the file. */
  async discard(): Promise<void> {
    await this.#flush?.close();
    if (!this.#done) {
      this.#done = true;
      await this.#calls.remove(this.path).catch(() => {});
    }
    this.#close();
  }

  #close(): void {
    if (!this.#open) return;
    this.#open = false;
    this.file.close();
  }
}

/**
 * Whether `path` still names the open `file` (a sweep did not unlink it),
 * asked of the file system itself: `path` is opened again. A network or FUSE
 * file system answers lstat(2) from a cache for a while (GlusterFS for a
 * second, NFS for longer): a name another machine has just removed is still
 * there for lstat, and so is the link count of the open file, but an open
 * goes to the server and fails (tests/cluster/cluster_test.ts). Without read
 * permission there (never the case for fsd's own staging files), lstat is
 * asked instead.
 */
export async function stillNamesFile(
  path: string,
  file: Deno.FsFile,
  calls = ASYNC_CALLS,
): Promise<boolean> {
  let again: Deno.FsFile;
  try {
    again = await calls.reopen(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotCapable) return await namesFile(path, file, calls);
    // Gone, or (GlusterFS, for a moment) ESTALE: not named. Anything else (no descriptors
    // left, say) is not an answer, and is thrown.
    if (error instanceof Deno.errors.NotFound || isStale(error)) return false;
    throw error;
  }
  try {
    const [named, opened] = await Promise.all([calls.fstat(again), calls.fstat(file)]);
    return named.ino === opened.ino && named.dev === opened.dev;
  } finally {
    again.close();
  }
}

/** ESTALE: a network file system's handle gone out of date (GlusterFS says it for a moment under load). */
export function isStale(error: unknown): boolean {
  return /os error 116\)/.test(String(error));
}

/** Whether `path` names the open `file` by lstat(2) (which a network file system may cache). */
async function namesFile(
  path: string,
  file: Deno.FsFile,
  calls = ASYNC_CALLS,
): Promise<boolean> {
  const [named, opened] = await Promise.all([
    calls.lstat(path).catch(() => undefined),
    calls.fstat(file),
  ]);
  return named !== undefined && named.ino === opened.ino && named.dev === opened.dev;
}

/**
 * Gives `from`'s file the name `to`; AlreadyExists if `to` exists, whatever
 * it is. True when `from` still names it too (a hard link was made).
 */
async function linkWithoutReplacing(
  from: string,
  to: string,
  calls: MetadataCalls,
): Promise<boolean> {
  try {
    await calls.link(from, to);
    return true;
  } catch (error) {
    if (
      !(error instanceof Deno.errors.NotSupported || error instanceof Deno.errors.PermissionDenied)
    ) {
      throw error;
    }
    await renameUnderDirectoryLock(from, to);
    return false;
  }
}

/**
 * No hard links on this file system: check, then rename, with the directory
 * locked so that fsd processes sharing it take turns. Another program (or a
 * file system whose locks do not work) can still race between the two steps.
 */
async function renameUnderDirectoryLock(from: string, to: string): Promise<void> {
  const directory = await Deno.open(dirname(to), { read: true }).catch(() => undefined);
  try {
    await directory?.lock(true).catch(() => {});
    const exists = await Deno.lstat(to).then(() => true, () => false);
    if (exists) throw new Deno.errors.AlreadyExists(`file exists: ${to}`);
    await Deno.rename(from, to);
  } finally {
    directory?.close();
  }
}

/**
 * Removes the staging file at `path` if no live process holds it. The sweep
 * holds the lock while it unlinks, so a creator that locks after it sees its
 * name gone and starts again. True if removed.
 */
export async function removeIfAbandoned(path: string): Promise<boolean> {
  let file: Deno.FsFile;
  try {
    // Read and write: an exclusive lock over NFS needs a descriptor open for writing.
    file = await Deno.open(path, { read: true, write: true });
  } catch {
    return false; // gone already (committed or discarded), or not ours to open
  }
  try {
    if (!(await file.tryLock(true))) return false; // a live process is writing it
    const info = await Deno.lstat(path).catch(() => undefined);
    if (!info?.isFile || !(await stillNamesFile(path, file))) return false;
    await Deno.remove(path);
    return true;
  } catch {
    return false;
  } finally {
    file.close();
  }
}

/**
 * Removes files whose names start with `prefix` in `root` (and, unless
 * `recursive` is false, everywhere under it, without following symlinks)
 * that no live process holds: staged data left by a process that died before
 * it could commit or discard it. Returns how many were removed.
 */
export async function removeStaleStaging(
  root: string,
  prefix: string,
  { recursive = true, listed }: {
    recursive?: boolean;
    /** Told each directory's entries as they are read. */
    listed?: (directory: string, entries: Deno.DirEntry[]) => void;
  } = {},
): Promise<number> {
  let removed = 0;
  const pending = [root];
  while (pending.length > 0) {
    const directory = pending.pop()!;
    let entries: Deno.DirEntry[];
    try {
      entries = await Array.fromAsync(Deno.readDir(directory));
    } catch {
      continue; // unreadable or vanished: nothing of ours can be in it
    }
    listed?.(directory, entries);
    for (const entry of entries) {
      const path = `${directory}/${entry.name}`;
      if (entry.isDirectory && recursive) pending.push(path);
      else if (entry.isFile && entry.name.startsWith(prefix)) {
        if (await removeIfAbandoned(path)) removed++;
      }
    }
  }
  return removed;
}

/**
 * Removes the `.fsd-download-*` files an interrupted `fsd get` left in
 * `directory`; a download still running in another process keeps its file.
 * Returns the names `directory` held when read, or undefined if it could
 * not be read.
 */
export async function removeStaleDownloads(directory: string): Promise<Set<string> | undefined> {
  let names: Set<string> | undefined;
  await removeStaleStaging(directory, DOWNLOAD_PREFIX, {
    recursive: false,
    listed: (_, entries) => names = new Set(entries.map((entry) => entry.name)),
  });
  return names;
}
