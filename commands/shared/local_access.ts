/**
 * The permission to read or write a local path, asked of Deno before the
 * path is touched: without it Deno would prompt on a terminal (and fail
 * elsewhere with its own message); fsd instead says which flag is missing.
 * Each directory is asked once, so a job of many files pays one query a
 * directory, not one a file (a query costs about 10 µs).
 */

import { dirname } from "node:path";
import { CommandError } from "./cli.ts";

export type Access = "read" | "write";

const granted: Record<Access, Set<string>> = { read: new Set(), write: new Set() };

function isGranted(access: Access, path: string): boolean {
  if (granted[access].has(path)) return true;
  if (Deno.permissions.querySync({ name: access, path }).state !== "granted") return false;
  granted[access].add(path);
  return true;
}

/**
 * Throws a CommandError naming the flag unless `path` may be read (or
 * written): its directory's permission covers it, else its own. `flagPath`
 * is what the message suggests (by default the directory).
 */
export function requireAccess(path: string, access: Access, flagPath = dirname(path)): void {
  if (isGranted(access, dirname(path)) || isGranted(access, path)) return;
  throw new CommandError(
    `cannot ${access} ${path}: needs --allow-${access}=${flagPath} (or a directory above it)`,
  );
}

/** The same for a directory the job makes or fills: its own permission (or one above it). */
export function requireDirectoryAccess(directory: string, ...accesses: Access[]): void {
  for (const access of accesses) requireAccess(directory, access, directory);
}
