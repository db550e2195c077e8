/**
 * OpenSSH's StrictModes for a served directory: DIR, or a directory under
 * it, that other users can write into (group or world write, or owned by
 * a user other than the server's or root) lets them swap a directory for a
 * symlink out of DIR (docs/SECURITY.md, "Symlink races"). With race-free
 * opens (opened.ts) that is worth a warning; without, the server refuses.
 */

import { fdMode } from "./opened.ts";
import { STAGING_PREFIX } from "./sandbox.ts";

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
  const owners = await trustedOwners(root);
  const open = await writableByOthers(root, owners, limit);
  if (open === undefined) return {};
  const why = open.uid === undefined
    ? `is writable by other users (mode ${octal(open.mode)})`
    : `is owned by another user (uid ${open.uid}, not the server's or root's)`;
  const what = `${open.path} ${why}: ` +
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

/**
 * The owners a directory may have: root and the server's user. Deno gives
 * the uid only with --allow-sys=uid; without it, a file the server makes
 * in DIR tells (--allow-write=DIR); failing both, DIR's own owner stands
 * for the server's user (docs/SECURITY.md says so).
 */
async function trustedOwners(root: string): Promise<Set<number>> {
  const owners = new Set([0]);
  const sys = await Deno.permissions.query({ name: "sys", kind: "uid" });
  if (sys.state === "granted" && Deno.uid() !== null) return owners.add(Deno.uid()!);
  const write = await Deno.permissions.query({ name: "write", path: root });
  if (write.state === "granted") {
    const probe = await Deno.makeTempFile({ dir: root, prefix: STAGING_PREFIX }).catch(() =>
      undefined
    );
    if (probe !== undefined) {
      try {
        const uid = (await Deno.lstat(probe)).uid;
        if (uid !== null) return owners.add(uid);
      } finally {
        await Deno.remove(probe).catch(() => {});
      }
    }
  }
  const uid = (await Deno.lstat(root).catch(() => undefined))?.uid;
  return uid == null ? owners : owners.add(uid);
}

async function writableByOthers(
  root: string,
  owners: Set<number>,
  limit: number,
): Promise<{ path: string; mode: number; uid?: number } | undefined> {
  const pending = [root];
  for (let seen = 0; pending.length > 0 && seen < limit; seen++) {
    const directory = pending.pop()!;
    const info = await Deno.lstat(directory).catch(() => undefined);
    const mode = info?.mode;
    if (mode == null) continue;
    if ((mode & 0o022) !== 0) return { path: directory, mode };
    if (info!.uid !== null && !owners.has(info!.uid)) {
      return { path: directory, mode, uid: info!.uid };
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
