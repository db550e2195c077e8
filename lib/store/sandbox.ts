/**
 * The path rules: which names a client may send, and where they may lead.
 *
 * Every file access of the server goes through here. A name is checked as
 * bytes (length, UTF-8, characters, parts) before it touches the file
 * system; then its real path, symlinks followed, must lie inside the root.
 */

import { join } from "../path.ts";
import { errorMessage } from "../bytes/source_sink.ts";
import { ErrorCode, ProtocolError } from "./errors.ts";
import { fdMode, type Opened, openNamed } from "./opened.ts";
import { type FileCalls, fileCalls } from "./file_calls.ts";

/** Longest name a request may carry, in bytes. */
export const MAX_NAME_BYTES = 255;
/** Uploads in progress live under names with this prefix, unseen and unreachable by clients. */
export const STAGING_PREFIX = ".fsd-upload-";

// ignoreBOM: a leading U+FEFF is kept, so that the rule below refuses it instead of it vanishing.
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
// C0 controls, DEL and C1 controls.
// deno-lint-ignore no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
/**
 * Characters that print as nothing or move the text around them: format
 * characters (U+FEFF, zero-width ones, bidirectional overrides and
 * isolates) and the line and paragraph separators U+2028 and U+2029.
 */
export const INVISIBLE = /[\p{Cf}\p{Zl}\p{Zp}]/u;

const INVISIBLE_ALL = new RegExp(INVISIBLE.source, "gu");

/** `line` with every invisible or layout character (INVISIBLE) written as \uXXXX: a log line stays one honest line. */
export function escapeInvisible(line: string): string {
  return line.replace(
    INVISIBLE_ALL,
    (c) => `\\u${c.codePointAt(0)!.toString(16).padStart(4, "0")}`,
  );
}

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
  const invisible = INVISIBLE.exec(name);
  if (invisible) {
    const code = invisible[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0");
    throw denied(`name contains an invisible or layout character: U+${code}`);
  }
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
  /** Real paths inside the root that are out of reach all the same (others' homes). */
  readonly #excluded: string[];
  /** Opens are race-free: what was opened is checked, through /proc/self/fd (opened.ts). */
  readonly raceFree: boolean;
  /** The metadata calls under the root: synchronous on local file systems (file_calls.ts). */
  readonly calls: FileCalls;

  private constructor(root: string, excluded: string[], raceFree: boolean, calls: FileCalls) {
    this.root = root;
    this.raceFree = raceFree;
    this.calls = calls;
    this.#prefix = root.endsWith("/") ? root : root + "/";
    this.#excluded = excluded.map((path) => path.endsWith("/") ? path : path + "/");
  }

  /**
   * Opens `dir` as a sandbox, with the real paths `excluded` out of reach;
   * throws if it is missing or not a directory.
   */
  static async open(dir: string, excluded: string[] = []): Promise<Sandbox> {
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
    return new Sandbox(real, excluded, await fdMode(real), await fileCalls());
  }

  /** Whether a real path lies inside the root (or is the root). */
  contains(realPath: string): boolean {
    if (realPath !== this.root && !realPath.startsWith(this.#prefix)) return false;
    const path = realPath + "/";
    return !this.#excluded.some((excluded) => path.startsWith(excluded));
  }

  /**
   * Opens an existing file or directory `name` ("" is the root) inside the
   * root: in fd mode what was opened is checked, so a directory swapped for
   * a symlink meanwhile is never followed out; otherwise its real path is.
   * `directory`: a file there is ERR 1 `directory not found`. Close it.
   */
  async openExisting(name: string, directory = false): Promise<Opened> {
    if (!this.raceFree) {
      const real = await this.resolveExisting(name);
      if (directory && !(await this.calls.stat(real)).isDirectory) throw directoryNotFound(name);
      return { path: real, real, close() {} };
    }
    let opened: Opened;
    try {
      opened = await openNamed(join(this.root, name), directory, this.calls);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound || error instanceof Deno.errors.NotADirectory) {
        await this.#ancestorInside(name);
        if (directory && error instanceof Deno.errors.NotADirectory) {
          throw directoryNotFound(name);
        }
      }
      throw fileError(error, name);
    }
    if (!this.contains(opened.real)) {
      opened.close();
      throw outside(name);
    }
    return opened;
  }

  /** Opens `path` (a directory entry a listing met, maybe a symlink) if it leads inside; else undefined. */
  async openInside(path: string): Promise<Opened | undefined> {
    if (!this.raceFree) {
      const real = await this.calls.realPath(path);
      return this.contains(real) ? { path: real, real, close() {} } : undefined;
    }
    const opened = await openNamed(path, false, this.calls);
    if (this.contains(opened.real)) return opened;
    opened.close();
    return undefined;
  }

  /** The real path of an existing file or directory `name` ("" is the root). */
  async resolveExisting(name: string): Promise<string> {
    if (this.raceFree) {
      const opened = await this.openExisting(name);
      opened.close();
      return opened.real;
    }
    let real: string;
    try {
      real = await this.calls.realPath(join(this.root, name));
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
        real = await this.calls.realPath(join(this.root, ...parts.slice(0, n)));
      } catch {
        continue;
      }
      if (!this.contains(real)) throw outside(name);
      return;
    }
  }

  /** The real path a new file `name` would have (see `openNew`). */
  async resolveNew(name: string): Promise<string> {
    const { directory, path } = await this.openNew(name);
    directory.close();
    return join(directory.real, path.slice(path.lastIndexOf("/") + 1));
  }

  /**
   * Opens the directory of a new file `name`: it must exist inside the root,
   * and nothing (not even a dangling symlink) may hold the name yet. `path`
   * names the new file through the open directory; close `directory` once
   * the file is made.
   */
  async openNew(name: string): Promise<{ directory: Opened; path: string }> {
    if (name === "") throw denied("empty file name");
    const slash = name.lastIndexOf("/");
    const parent = slash < 0 ? "" : name.slice(0, slash);
    const directory = await this.openExisting(parent, true);
    const path = `${directory.path}/${name.slice(slash + 1)}`;
    try {
      await this.#free(name, path);
    } catch (error) {
      directory.close();
      throw error;
    }
    return { directory, path };
  }

  /** Throws ERR 6 if something holds `path` (ERR 2 if it is a symlink leading outside). */
  async #free(name: string, path: string): Promise<void> {
    let existing: Deno.FileInfo;
    try {
      existing = await this.calls.lstat(path);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return;
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

function directoryNotFound(name: string): ProtocolError {
  return new ProtocolError(ErrorCode.NOT_FOUND, `directory not found: ${name}`);
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
