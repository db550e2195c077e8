/**
 * The permission to read or write a local path, asked of Deno before the
 * path is touched: without it Deno would prompt on a terminal (and fail
 * elsewhere with its own message); fsd instead says which flag is missing.
 * Each directory is asked once, so a job of many files pays one query a
 * directory, not one a file (a query costs about 10 µs).
 */

import { dirname } from "../../lib/path.ts";
import { CommandError } from "./cli.ts";

export type Access = "read" | "write";

const granted: Record<Access, Set<string>> = { read: new Set(), write: new Set() };

function isGranted(access: Access, path: string): boolean {
  if (granted[access].has(path)) return true;
  if (Deno.permissions.querySync({ name: access, path }).state !== "granted") return false;
  granted[access].add(path);
  return true;
}

function check(path: string, access: Access, suggested: string): void {
  if (isGranted(access, dirname(path)) || isGranted(access, path)) return;
  throw new CommandError(
    `cannot ${access} ${path}: needs --allow-${access}=${suggested} (or a directory above it)`,
  );
}

/**
 * Throws a CommandError naming the flag unless `path` may be read (or
 * written): its directory's permission covers it, else its own. The message
 * suggests the directory (a file a job reads or writes among others).
 */
export function requireAccess(path: string, access: Access): void {
  check(path, access, dirname(path));
}

/** The same, the message suggesting `path` itself: a directory a job makes or fills, a flag's file. */
export function requireOwnAccess(path: string, ...accesses: Access[]): void {
  for (const access of accesses) check(path, access, path);
}
