/**
 * What a served directory must do for fsd's rules to hold when several
 * servers share it (docs/SECURITY.md, "Many servers on one directory"),
 * checked once at start-up, and the check that it is still the directory
 * the server started on (a shared file system unmounted under a running
 * server leaves an empty mount point with the same path).
 */

import { closeQuietly } from "../bytes/source_sink.ts";
import { join } from "node:path";
import { STAGING_PREFIX } from "./sandbox.ts";

/**
 * Probes `root` with two staging files (hidden, and swept by the next
 * start-up if this process dies meanwhile): an exclusive lock taken through
 * one handle must be seen through another, and `link(2)` onto an existing
 * name must fail with EEXIST. Returns what is missing, or undefined when the
 * directory keeps fsd's promises. A file system without hard links at all
 * passes: uploads then publish by rename under a directory lock.
 */
export async function probeSharedDir(root: string): Promise<string | undefined> {
  const base = join(root, `${STAGING_PREFIX}probe-${crypto.randomUUID()}`);
  const [first, second] = [`${base}-a`, `${base}-b`];
  const handles: Deno.FsFile[] = [];
  try {
    handles.push(await Deno.open(first, { write: true, createNew: true }));
    handles.push(await Deno.open(first, { read: true }));
    try {
      await handles[0].lock(true);
    } catch (error) {
      return `advisory locks (flock) fail: ${(error as Error).message}`;
    }
    if (await handles[1].tryLock(true)) {
      return "an advisory lock (flock) taken through one handle is not seen through another";
    }
    await Deno.writeFile(second, new Uint8Array(0), { createNew: true });
    // Failing with EEXIST passes, and so does any other failure (no hard links here: EPERM,
    // ENOTSUP), where uploads publish by rename; succeeding would replace a file.
    const replaced = await Deno.link(first, second).then(() => true, () => false);
    if (replaced) return "link(2) replaced an existing name instead of failing with EEXIST";
    return undefined;
  } finally {
    for (const handle of handles) closeQuietly(handle);
    for (const path of [first, second]) await Deno.remove(path).catch(() => {});
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

  private constructor(root: string, identity: Identity) {
    this.#root = root;
    this.#identity = identity;
  }

  static async of(root: string): Promise<RootGuard> {
    const { dev, ino } = await Deno.stat(root);
    return new RootGuard(root, { dev, ino });
  }

  /** Undefined while `root` is the directory it was; else why not (for the log and the client). */
  async changed(): Promise<string | undefined> {
    let now: Identity;
    try {
      const { dev, ino } = await Deno.stat(this.#root);
      now = { dev, ino };
    } catch (error) {
      return `the served directory is gone: ${this.#root}: ${(error as Error).message}`;
    }
    if (now.dev === this.#identity.dev && now.ino === this.#identity.ino) return undefined;
    return `the served directory is no longer the one fsd started on: ${this.#root} ` +
      `(another file system or directory is there now; unmounted?)`;
  }
}
