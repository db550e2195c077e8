/**
 * The path rules: which names a client may send, and where they may lead.
 *
 * Every file access of the server goes through here. A name is checked as
 * bytes (length, UTF-8, characters, parts) before it touches the file
 * system; then its real path, symlinks followed, must lie inside the root.
 */

import { join } from "node:path";
import { errorMessage } from "../bytes/source_sink.ts";
import { ErrorCode, ProtocolError } from "./errors.ts";

/** Longest name a request may carry, in bytes. */
export const MAX_NAME_BYTES = 255;
/** Uploads in progress live under names with this prefix, unseen and unreachable by clients. */
export const STAGING_PREFIX = ".fsd-upload-";

const utf8 = new TextDecoder("utf-8", { fatal: true });
// C0 controls, DEL and C1 controls.
// deno-lint-ignore no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

function denied(message: string): ProtocolError {
  return new ProtocolError(ErrorCode.ACCESS_VIOLATION, message);
}

function outside(name: string): ProtocolError {
  return denied(`access violation: ${name} leads outside the served directory`);
}

/**
 * Checks a requested name against the rules and returns it as text.
 * "" (the root) passes; every rule broken throws ProtocolError 2.
 */
export function parseName(raw: Uint8Array): string {
  if (raw.length > MAX_NAME_BYTES) {
    throw denied(`name too long: ${raw.length} bytes, at most ${MAX_NAME_BYTES}`);
  }
  let name: string;
  try {
    name = utf8.decode(raw);
  } catch {
    throw denied("name is not valid UTF-8");
  }
  if (name === "") return name;
  if (CONTROL.test(name)) throw denied("name contains a control character");
  if (name.includes("\\")) throw denied("name contains a backslash");
  if (name.startsWith("/")) {
    throw denied("name is absolute: names are relative to the served directory");
  }
  for (const part of name.split("/")) {
    if (part === "") throw denied("name has an empty part");
    if (part === "." || part === "..") throw denied(`name has a "${part}" part`);
    if (part.startsWith(STAGING_PREFIX)) throw denied("name is reserved");
  }
  return name;
}

/** Whether a directory entry's name can travel in a listing (and be asked for again). */
export function isListableName(name: string): boolean {
  try {
    return name !== "." && name !== ".." && !name.includes("/") && !name.includes("\uFFFD") &&
      parseName(new TextEncoder().encode(name)) === name;
  } catch {
    return false;
  }
}

/** A served directory, by its real path. */
export class Sandbox {
  readonly root: string;
  readonly #prefix: string;

  private constructor(root: string) {
    this.root = root;
    this.#prefix = root.endsWith("/") ? root : root + "/";
  }

  /** Opens `dir` as a sandbox; throws if it is missing or not a directory. */
  static async open(dir: string): Promise<Sandbox> {
    let real: string;
    try {
      real = await Deno.realPath(dir);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) {
        throw new Deno.errors.NotFound(`directory not found: ${dir}`);
      }
      throw error;
    }
    const info = await Deno.stat(real);
    if (!info.isDirectory) throw new Deno.errors.NotADirectory(`not a directory: ${dir}`);
    return new Sandbox(real);
  }

  /** Whether a real path lies inside the root (or is the root). */
  contains(realPath: string): boolean {
    return realPath === this.root || realPath.startsWith(this.#prefix);
  }

  /** The real path of an existing file or directory `name` ("" is the root). */
  async resolveExisting(name: string): Promise<string> {
    let real: string;
    try {
      real = await Deno.realPath(join(this.root, name));
    } catch (error) {
      // Missing, but where? Through a symlinked directory, "not found" would
      // tell a client what does not exist outside: the nearest existing
      // ancestor decides between ERR 1 and ERR 2.
      if (error instanceof Deno.errors.NotFound || error instanceof Deno.errors.NotADirectory) {
        await this.#ancestorInside(name);
      }
      throw fileError(error, name);
    }
    if (!this.contains(real)) throw outside(name);
    return real;
  }

  /** Throws ERR 2 if the nearest existing ancestor of `name` lies outside the root. */
  async #ancestorInside(name: string): Promise<void> {
    const parts = name.split("/");
    for (let n = parts.length - 1; n > 0; n--) {
      let real: string;
      try {
        real = await Deno.realPath(join(this.root, ...parts.slice(0, n)));
      } catch {
        continue;
      }
      if (!this.contains(real)) throw outside(name);
      return;
    }
  }

  /**
   * The path a new file `name` would have: its directory must exist inside the
   * root, and nothing (not even a dangling symlink) may hold the name yet.
   */
  async resolveNew(name: string): Promise<string> {
    if (name === "") throw denied("empty file name");
    const slash = name.lastIndexOf("/");
    const parent = slash < 0 ? "" : name.slice(0, slash);
    const directory = await this.resolveExisting(parent);
    const info = await Deno.stat(directory);
    if (!info.isDirectory) {
      throw new ProtocolError(ErrorCode.NOT_FOUND, `directory not found: ${parent}`);
    }
    const path = join(directory, name.slice(slash + 1));
    let existing: Deno.FileInfo;
    try {
      existing = await Deno.lstat(path);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return path;
      throw fileError(error, name);
    }
    // A symlink leading outside is an access violation, not merely a taken name.
    if (existing.isSymlink) {
      await this.resolveExisting(name).catch((error) => {
        if (error instanceof ProtocolError && error.code === ErrorCode.ACCESS_VIOLATION) {
          throw error;
        }
      });
    }
    throw new ProtocolError(ErrorCode.FILE_EXISTS, `file already exists: ${name}`);
  }
}

/** Maps a file-system error about `name` onto the ERR a client should get. */
export function fileError(error: unknown, name: string): ProtocolError {
  if (error instanceof ProtocolError) return error;
  if (error instanceof Deno.errors.NotFound || error instanceof Deno.errors.NotADirectory) {
    return new ProtocolError(ErrorCode.NOT_FOUND, `file not found: ${name}`);
  }
  if (error instanceof Deno.errors.AlreadyExists) {
    return new ProtocolError(ErrorCode.FILE_EXISTS, `file already exists: ${name}`);
  }
  if (
    error instanceof Deno.errors.PermissionDenied || error instanceof Deno.errors.NotCapable ||
    error instanceof Deno.errors.FilesystemLoop
  ) {
    return denied(`access denied: ${name}`);
  }
  const message = errorMessage(error);
  if (/os error (28|122)\)/.test(message)) {
    return new ProtocolError(ErrorCode.DISK_FULL, `disk full: ${name}`);
  }
  return new ProtocolError(ErrorCode.OTHER, `${name || "/"}: ${message}`);
}
