/**
 * OpenSSH's StrictModes for a served directory: DIR, or a directory under
 * it, that other users can write into lets them swap a directory for a
 * symlink out of DIR (docs/SECURITY.md, "Symlink races"). With race-free
 * opens (opened.ts) that is worth a warning; without, the server refuses.
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
  const open = await writableByOthers(root, limit);
  if (open === undefined) return {};
  const what = `${open.path} is writable by other users (mode ${octal(open.mode)}): ` +
    "whoever can write there can swap a directory for a symlink out of DIR";
  if (await fdMode(root)) {
    return {
      warning:
        `Warning: ${what}; opens are race-free here, but they can still add, rename and remove files`,
    };
  }
  return {
    refusal: `${what}, and opens here are checked, then made (race-free opens need Linux and ` +
      "--allow-all, which Deno requires for /proc/self/fd): chmod go-w it, or run with --allow-all",
  };
}

async function writableByOthers(
  root: string,
  limit: number,
): Promise<{ path: string; mode: number } | undefined> {
  const pending = [root];
  for (let seen = 0; pending.length > 0 && seen < limit; seen++) {
    const directory = pending.pop()!;
    const mode = (await Deno.lstat(directory).catch(() => undefined))?.mode;
    if (mode == null) continue;
    if ((mode & 0o022) !== 0) return { path: directory, mode };
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
