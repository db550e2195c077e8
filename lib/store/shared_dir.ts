/**
 * What a served directory must do for fsd's rules to hold when several
 * servers share it (docs/SECURITY.md, "Many servers on one directory"),
 * checked once at start-up, and the check that it is still the directory
 * the server started on (a shared file system unmounted under a running
 * server leaves an empty mount point with the same path).
 */

import { closeQuietly } from "../bytes/source_sink.ts";
import { join } from "../path.ts";
import { STAGING_PREFIX } from "./sandbox.ts";
import { isStale, StagedFile } from "./staging.ts";
import { ASYNC_CALLS, type FileCalls } from "./file_calls.ts";

/**
 * Probes `root` with two staging files (hidden, locked, and swept by the
 * next start-up if this process dies meanwhile): an exclusive lock taken through
 * one handle must be seen through another, and `link(2)` onto an existing
 * name must fail with EEXIST. Returns what is missing, or undefined when the
 * directory keeps fsd's promises. A file system without hard links at all
 * passes: uploads then publish by rename under a directory lock.
 */
export async function probeSharedDir(root: string): Promise<string | undefined> {
  // GlusterFS may answer ESTALE for a moment while other servers create and remove their own
  // staging files in the same directory: try again, a bounded number of times.
  for (let attempt = 1;; attempt++) {
    try {
      return await probeOnce(root);
    } catch (error) {
      if (!isStale(error) || attempt === STALE_ATTEMPTS) throw error;
    }
  }
}

const STALE_ATTEMPTS = 3;

async function probeOnce(root: string): Promise<string | undefined> {
  // Staging files made as uploads make them: locked from the start, so that another server's
  // start-up sweep, running at this very moment, leaves them alone.
  const target = join(root, "probe");
  let first: StagedFile;
  try {
    first = await StagedFile.create(target, STAGING_PREFIX);
  } catch (error) {
    if (error instanceof Deno.errors.PermissionDenied) throw error;
    return `advisory locks (flock) fail: ${(error as Error).message}`;
  }
  let other: Deno.FsFile | undefined;
  let second: StagedFile | undefined;
  try {
    other = await Deno.open(first.path, { read: true });
    if (await other.tryLock(true)) {
      return "an advisory lock (flock) taken through one handle is not seen through another";
    }
    second = await StagedFile.create(target, STAGING_PREFIX);
    // Failing with EEXIST passes, and so does any other failure (no hard links here: EPERM,
    // ENOTSUP), where uploads publish by rename; succeeding would replace a file.
    const replaced = await Deno.link(first.path, second.path).then(() => true, () => false);
    if (replaced) return "link(2) replaced an existing name instead of failing with EEXIST";
    return undefined;
  } finally {
    closeQuietly(other);
    await first.discard();
    await second?.discard();
  }
}

/** Which file system object a path names: a device and an inode. */
interface Identity {
  dev: number;
  ino: number | null;
}

/**
 * Remembers which directory `root` named at start and tells, on each call,
 * whether it still does: after the shared file system is unmounted, the path
 * names the empty mount point beneath (another device), and nothing may be
 * served from or written into it.
 */
export class RootGuard {
  readonly #root: string;
  readonly #identity: Identity;
  readonly #calls: FileCalls;

  private constructor(root: string, identity: Identity, calls: FileCalls) {
    this.#root = root;
    this.#identity = identity;
    this.#calls = calls;
  }

  /** The guard of `root`, whose stat each check makes through `calls` (file_calls.ts). */
  static async of(root: string, calls: FileCalls = ASYNC_CALLS): Promise<RootGuard> {
    const { dev, ino } = await Deno.stat(root);
    return new RootGuard(root, { dev, ino }, calls);
  }

  /** Undefined while `root` is the directory it was; else why not (for the log and the client). */
  async changed(): Promise<string | undefined> {
    let now: Identity;
    try {
      const { dev, ino } = await this.#calls.stat(this.#root);
      now = { dev, ino };
    } catch (error) {
      return `the served directory is gone: ${this.#root}: ${(error as Error).message}`;
    }
    if (now.dev === this.#identity.dev && now.ino === this.#identity.ino) return undefined;
    return `the served directory is no longer the one fsd started on: ${this.#root} ` +
      `(another file system or directory is there now; unmounted?)`;
  }
}
