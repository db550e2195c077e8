/**
 * A file written under a temporary name beside its target and given its
 * real name only when complete, so that a reader never sees it half-written
 * and a failed transfer leaves nothing under the target's name. Used by the
 * server for uploads and by the client for downloads.
 */

import { dirname } from "node:path";

export interface CommitOptions {
  /** Replace an existing target (default: fail with AlreadyExists). */
  replace?: boolean;
  /** Flush the data to disk before it gets its name (default false). */
  sync?: boolean;
}

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

  /** Creates `dirname(target)/<prefix><random>` for writing; it never replaces anything. */
  static async create(target: string, prefix: string): Promise<StagedFile> {
    const path = `${dirname(target)}/${prefix}${crypto.randomUUID()}`;
    const file = await Deno.open(path, { write: true, createNew: true });
    return new StagedFile(file, path, target);
  }

  /** Closes the file and gives it its target name. */
  async commit(options: CommitOptions = {}): Promise<void> {
    if (options.sync) await this.file.syncData();
    this.#close();
    if (options.replace) {
      await Deno.rename(this.path, this.target);
    } else if (await linkWithoutReplacing(this.path, this.target)) {
      await Deno.remove(this.path);
    }
    this.#done = true;
  }

  /** Closes and removes the staged data, unless it was committed. */
  async discard(): Promise<void> {
    this.#close();
    if (this.#done) return;
    this.#done = true;
    await Deno.remove(this.path).catch(() => {});
  }

  #close(): void {
    if (!this.#open) return;
    this.#open = false;
    this.file.close();
  }
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
    // No hard links on this file system: check, then rename; a narrow race, the best it allows.
    const exists = await Deno.lstat(to).then(() => true, () => false);
    if (exists) throw new Deno.errors.AlreadyExists(`file exists: ${to}`);
    await Deno.rename(from, to);
    return false;
  }
}

/**
 * Removes files whose names start with `prefix` anywhere under `root`,
 * without following symlinks: staged data left by a process that died
 * before it could commit or discard it. Returns how many were removed.
 */
export async function removeStaleStaging(root: string, prefix: string): Promise<number> {
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
      if (entry.isDirectory) pending.push(path);
      else if (entry.isFile && entry.name.startsWith(prefix)) {
        await Deno.remove(path).then(() => removed++, () => {});
      }
    }
  }
  return removed;
}
