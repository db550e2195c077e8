/**
 * Opening a path and knowing what was opened: the race-free half of the
 * sandbox (docs/SECURITY.md, "Symlink races").
 *
 * Checking a path's real path and then opening it by name is a race: a
 * directory swapped for a symlink in between (renameat2 RENAME_EXCHANGE by
 * anyone who can write under DIR) is followed out of the root. So the
 * sandbox opens first, with a real descriptor from `node:fs`, and asks the
 * kernel what it opened: `/proc/self/fd/N` names the file actually held.
 * Every later step (reading, listing, creating a staging file beside the
 * target, `link(2)`, `mkdir`) goes through that same `/proc/self/fd/N`,
 * which resolves to the held directory whatever its name leads to now.
 *
 * Deno lets a program touch `/proc/self/fd` only with `--allow-all`. Without
 * it (or off Linux) the sandbox falls back to checking the real path and
 * then using it (`fdMode()` says which), and `fsd serve` refuses a DIR with
 * a directory other users can write into (see `strictModes`).
 */

import { ASYNC_CALLS, type FileCalls } from "./file_calls.ts";

/** What an open name leads to: `path` names exactly it; `real` is its real path. */
export interface Opened {
  path: string;
  real: string;
  close(): void;
}

type NodeFs = typeof import("node:fs");
/**
 * node:fs, loaded by the first open: a client imports the listing format
 * (and so this file) but never opens through it, and need not load node:fs.
 */
let nodeFs: NodeFs | undefined;

/** The open(2) flags: a directory's, or a file's (read-only, a FIFO without blocking, no terminal). */
function openFlags({ constants }: NodeFs, directory: boolean): number {
  const read = constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY;
  return directory ? read | constants.O_DIRECTORY : read;
}

function closeFd(fd: number): void {
  nodeFs?.close(fd, () => {});
}

let fdModeKnown: boolean | undefined;

/** Whether opens are race-free here: Linux's /proc/self/fd, which Deno allows with --allow-all. */
export async function fdMode(probe: string): Promise<boolean> {
  if (fdModeKnown !== undefined) return fdModeKnown;
  if (Deno.build.os !== "linux") return fdModeKnown = false;
  try {
    const fd = await openDescriptor(probe, true);
    try {
      // Asked first: where reading it is not granted, Deno would prompt on a terminal.
      const held = `/proc/self/fd/${fd}`;
      const granted = Deno.permissions.querySync({ name: "read", path: held }).state === "granted";
      fdModeKnown = granted && (await Deno.readLink(held)) === probe;
    } finally {
      closeFd(fd);
    }
  } catch {
    fdModeKnown = false;
  }
  return fdModeKnown;
}

/**
 * Opens `path` (symlinks followed, a FIFO without blocking) and names what
 * was opened; `directory` insists on a directory. In fd mode the answer's
 * `path` is `/proc/self/fd/N` and `real` what the kernel says N is; it must
 * be closed. Errors are Deno's (NotFound, NotADirectory, ...).
 */
export async function openNamed(
  path: string,
  directory: boolean,
  calls: FileCalls = ASYNC_CALLS,
): Promise<Opened> {
  let fd: number;
  if (await calls.syncNow()) {
    nodeFs ??= await import("node:fs");
    fd = openDescriptorSync(path, directory);
  } else fd = await openDescriptor(path, directory);
  const held = `/proc/self/fd/${fd}`;
  let closed = false;
  const close = () => {
    if (!closed) closeFd(fd);
    closed = true;
  };
  try {
    const real = (await calls.readLink(held)).replace(/ \(deleted\)$/, "");
    return { path: held, real, close };
  } catch (error) {
    close();
    throw error;
  }
}

function openDescriptorSync(path: string, directory: boolean): number {
  try {
    return nodeFs!.openSync(path, openFlags(nodeFs!, directory));
  } catch (error) {
    throw denoError(error as Error & { code?: string }, path);
  }
}

async function openDescriptor(path: string, directory: boolean): Promise<number> {
  const fs = nodeFs ??= await import("node:fs");
  return await new Promise((resolve, reject) => {
    fs.open(
      path,
      openFlags(fs, directory),
      (error, fd) => error ? reject(denoError(error, path)) : resolve(fd),
    );
  });
}

/** node:fs's error as the Deno error the rest of the store maps onto ERR codes. */
function denoError(error: Error & { code?: string }, path: string): Error {
  const message = `${error.code}: ${path}`;
  switch (error.code) {
    case "ENOENT":
      return new Deno.errors.NotFound(message);
    case "ENOTDIR":
      return new Deno.errors.NotADirectory(message);
    case "ELOOP":
      return new Deno.errors.FilesystemLoop(message);
    case "EACCES":
    case "EPERM":
    case "ENXIO": // a socket
      return new Deno.errors.PermissionDenied(message);
    default:
      return error;
  }
}
