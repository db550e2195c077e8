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

import { dirname } from "node:path";

/** Downloads in progress beside a client's LOCAL file. */
export const DOWNLOAD_PREFIX = ".fsd-download-";

export interface CommitOptions {
  /** Replace an existing target (default: fail with AlreadyExists). */
  replace?: boolean;
  /** Flush the data to disk before it gets its name (default false). */
  sync?: boolean;
}

/** Tries to create a staging file that a concurrent sweep did not remove before it was locked. */
const CREATE_ATTEMPTS = 5;

export class StagedFile {
  readonly file: Deno.FsFile;
  /** Where the data is being written. */
  readonly path: string;
  /** The name it gets on commit. */
  readonly target: string;
  #open = true;
  #done = false;

  private constructor(file: Deno.FsFile, path: string, target: string) {
    this.file = file;
    this.path = path;
    this.target = target;
  }

  /**
   * Creates `dirname(target)/<prefix><random>` for writing, locked for as long
   * as it is open; it never replaces anything.
   */
  static async create(target: string, prefix: string): Promise<StagedFile> {
    for (let attempt = 1;; attempt++) {
      const path = `${dirname(target)}/${prefix}${crypto.randomUUID()}`;
      const file = await Deno.open(path, { read: true, write: true, createNew: true });
      try {
        // A sweep may hold the lock for a moment (it found the file between
        // create and lock): wait for it, then make sure the name is still ours.
        await file.lock(true);
        if (await namesFile(path, file)) return new StagedFile(file, path, target);
      } catch (error) {
        file.close();
        await Deno.remove(path).catch(() => {});
        throw error;
      }
      file.close();
      if (attempt === CREATE_ATTEMPTS) {
        throw new Error(`staging file removed as soon as created: ${path}`);
      }
    }
  }

  /**
   * Gives the file its target name, then closes it. The lock is held until the
   * staging name is gone, so no sweep can take the data on the way.
   */
  async commit(options: CommitOptions = {}): Promise<void> {
    if (options.sync) await this.file.syncData();
    if (options.replace) {
      await Deno.rename(this.path, this.target);
    } else if (await linkWithoutReplacing(this.path, this.target)) {
      await Deno.remove(this.path);
    }
    this.#done = true;
    this.#close();
  }

  /** Removes the staged data, unless it was committed, and closes the file. */
  async discard(): Promise<void> {
    if (!this.#done) {
      this.#done = true;
      await Deno.remove(this.path).catch(() => {});
    }
    this.#close();
  }

  #close(): void {
    if (!this.#open) return;
    this.#open = false;
    this.file.close();
  }
}

/** Whether `path` still names the open `file` (a sweep did not unlink it). */
async function namesFile(path: string, file: Deno.FsFile): Promise<boolean> {
  const [named, opened] = await Promise.all([
    Deno.lstat(path).catch(() => undefined),
    file.stat(),
  ]);
  return named !== undefined && named.ino === opened.ino && named.dev === opened.dev;
}

/**
 * Gives `from`'s file the name `to`; AlreadyExists if `to` exists, whatever
 * it is. True when `from` still names it too (a hard link was made).
 */
async function linkWithoutReplacing(from: string, to: string): Promise<boolean> {
  try {
    await Deno.link(from, to);
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
    if (!info?.isFile || !(await namesFile(path, file))) return false;
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
  { recursive = true }: { recursive?: boolean } = {},
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
 */
export async function removeStaleDownloads(directory: string): Promise<number> {
  return await removeStaleStaging(directory, DOWNLOAD_PREFIX, { recursive: false });
}
