/**
 * OpenSSH's StrictModes for a served directory: DIR, or a directory under
 * it, that other users can write into lets them swap a directory for a
 * symlink out of DIR (docs/SECURITY.md, "Symlink races"). Other users can
 * write where the mode grants group or world write (POSIX ACLs show there as
 * the group bits, their mask), and where they own the directory. With
 * race-free opens (opened.ts) that is worth a warning; without, the server
 * refuses.
 */

import { fdMode } from "./opened.ts";

/** Directories looked at, at most: a huge tree is checked in part, and says so. */
export const STRICT_MODES_LIMIT = 10_000;

export interface StrictModes {
  /** Why the server should not start, if it should not. */
  refusal?: string;
  /** What it should say at start otherwise. */
  warning?: string;
}

/** Checks DIR (a real path) and the directories under it, symlinks not followed. */
export async function strictModes(root: string, limit = STRICT_MODES_LIMIT): Promise<StrictModes> {
  const open = await writableByOthers(root, limit, await serverUid(root));
  if (open === undefined) return {};
  const what = `${open.path} is ${open.why}: ` +
    "whoever can write there can swap a directory for a symlink out of DIR";
  if (await fdMode(root)) {
    return {
      warning:
        `Warning: ${what}; opens are race-free here, but they can still add, rename and remove files`,
    };
  }
  return {
    refusal: `${what}, and opens here are checked, then made (race-free opens need Linux and ` +
      `--allow-all, which Deno requires for /proc/self/fd): ${open.fix} it, or run with --allow-all`,
  };
}

/**
 * The user the server runs as: Deno.uid() where --allow-sys=uid (or
 * --allow-all) grants it, else the owner of a file it creates in DIR; unknown
 * (undefined) for a server that may do neither, whose directories are then
 * checked for their modes only.
 */
async function serverUid(root: string): Promise<number | undefined> {
  if (Deno.build.os === "windows") return undefined;
  if (Deno.permissions.querySync({ name: "sys", kind: "uid" }).state === "granted") {
    return Deno.uid() ?? undefined;
  }
  if (Deno.permissions.querySync({ name: "write", path: root }).state !== "granted") return;
  try {
    const probe = await Deno.makeTempFile({ dir: root, prefix: ".fsd-uid-" });
    try {
      return (await Deno.lstat(probe)).uid ?? undefined;
    } finally {
      await Deno.remove(probe).catch(() => {});
    }
  } catch {
    return undefined; // DIR not writable for this user: it cannot tell
  }
}

interface Open {
  path: string;
  why: string;
  fix: string;
}

async function writableByOthers(
  root: string,
  limit: number,
  uid: number | undefined,
): Promise<Open | undefined> {
  const pending = [root];
  for (let seen = 0; pending.length > 0 && seen < limit; seen++) {
    const directory = pending.pop()!;
    const info = await Deno.lstat(directory).catch(() => undefined);
    if (info?.mode == null) continue;
    if ((info.mode & 0o022) !== 0) {
      return {
        path: directory,
        why: `writable by other users (mode ${octal(info.mode)})`,
        fix: "chmod go-w",
      };
    }
    if (uid !== undefined && info.uid !== null && info.uid !== uid && info.uid !== 0) {
      return {
        path: directory,
        why: `owned by another user (uid ${info.uid}; the server runs as uid ${uid})`,
        fix: "chown",
      };
    }
    try {
      for await (const entry of Deno.readDir(directory)) {
        if (entry.isDirectory && pending.length < limit) pending.push(`${directory}/${entry.name}`);
      }
    } catch {
      // unreadable or gone: nothing the server could serve from it either
    }
  }
  return undefined;
}

function octal(mode: number): string {
  return (mode & 0o7777).toString(8).padStart(4, "0");
}
