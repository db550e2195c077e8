/**
 * The file store: what every protocol does with the served directory. Open
 * a name for reading (a file's bytes, or a directory's listing) and stage a
 * name for writing (committed under its name only once complete and synced,
 * never replacing anything). Every path rule, limit and crash-safety rule is
 * inside; a refusal is a ProtocolError whose code is the ERR to send.
 */

import { type ByteSink, type ByteSource, bytesSource, fileSink, fileSource } from "../bytes/mod.ts";
import { hashPrefix, type Sha256, sha256For, toHex } from "../bytes/sha256.ts";
import { join } from "node:path";
import { ErrorCode, ProtocolError } from "./errors.ts";
import { formatListing, readListing } from "./listing.ts";
import { fileError, parseName, Sandbox, STAGING_PREFIX } from "./sandbox.ts";
import { removeStaleStaging, StagedFile } from "./staging.ts";

export interface FileStoreConfig {
  /** The directory to serve. */
  root: string;
  /** Refuse every write with ERR 2, and touch nothing on disk. */
  readOnly?: boolean;
  /** Largest upload in bytes (default 8 GiB; 0: no limit). */
  maxUploadBytes?: number;
}

export const DEFAULT_MAX_UPLOAD_BYTES = 8 * 1024 ** 3;

/** A name opened for reading. */
export interface OpenedFile {
  source: ByteSource;
  size: number;
  kind: "file" | "listing";
  mtime?: Date;
  /** Moves the start past the first `bytes` of a file (a resume), hashing them into `hash` if given. */
  skip(bytes: number, hash?: Sha256): Promise<void>;
  close(): void;
}

/** A name being written: `commit` publishes it, `discard` (always safe to call) removes the rest. */
export interface StagedWrite {
  sink: ByteSink;
  commit(): Promise<void>;
  discard(): Promise<void>;
}

const encoder = new TextEncoder();

export class FileStore {
  readonly readOnly: boolean;
  readonly maxUploadBytes: number;
  #sandbox: Sandbox;
  /** What a refused upload is told: whose rule it is (the server's, or an account's). */
  #readOnlyMessage: string;

  private constructor(
    sandbox: Sandbox,
    readOnly: boolean,
    maxUploadBytes: number,
    readOnlyMessage = "server is read-only",
  ) {
    this.#sandbox = sandbox;
    this.readOnly = readOnly;
    this.maxUploadBytes = maxUploadBytes;
    this.#readOnlyMessage = readOnlyMessage;
  }

  /** Opens the store on `config.root`; throws if it is missing or not a directory. */
  static async open(config: FileStoreConfig): Promise<FileStore> {
    return new FileStore(
      await Sandbox.open(config.root),
      config.readOnly ?? false,
      config.maxUploadBytes ?? DEFAULT_MAX_UPLOAD_BYTES,
    );
  }

  /** The served directory's real path. */
  get root(): string {
    return this.#sandbox.root;
  }

  /**
   * A store rooted at `subdir` (a name under these rules; "" is this root),
   * with the same limits; `readOnly` can only add to this store's.
   */
  async within(subdir: string, readOnly = false, why?: string): Promise<FileStore> {
    const real = await this.#sandbox.resolveExisting(subdir);
    return new FileStore(
      await Sandbox.open(real),
      this.readOnly || readOnly,
      this.maxUploadBytes,
      this.readOnly ? this.#readOnlyMessage : why,
    );
  }

  /**
   * Whether uploads can be stored: write permission granted (asked without
   * a prompt) and a staging file can really be made in the root (a
   * read-only mount or a directory's mode says no).
   */
  async writable(): Promise<boolean> {
    const permission = await Deno.permissions.query({ name: "write", path: this.root });
    if (permission.state !== "granted") return false;
    try {
      const probe = await Deno.makeTempFile({ dir: this.root, prefix: STAGING_PREFIX });
      await Deno.remove(probe);
      return true;
    } catch {
      return false;
    }
  }

  /** Removes uploads an earlier run left unfinished; returns how many. */
  async removeStaleStaging(): Promise<number> {
    return this.readOnly ? 0 : await removeStaleStaging(this.root, STAGING_PREFIX);
  }

  /**
   * A regular file's bytes, or a directory's listing. `name` is the name as
   * the client sent it (checked by `parseName` here) or one already checked;
   * "" is the root.
   */
  async openRead(
    requested: string | Uint8Array,
    options: { digests?: boolean } = {},
  ): Promise<OpenedFile> {
    const name = checkedName(requested);
    try {
      const real = await this.#sandbox.resolveExisting(name);
      const info = await Deno.stat(real);
      if (info.isDirectory) return await this.#openListing(real, info, options.digests);
      if (!info.isFile) {
        throw new ProtocolError(ErrorCode.ACCESS_VIOLATION, `not a regular file: ${name}`);
      }
      const file = await Deno.open(real, { read: true });
      return {
        source: fileSource(file),
        size: info.size,
        kind: "file",
        mtime: info.mtime ?? undefined,
        skip: async (bytes, hash) => {
          if (hash) await hashPrefix(file, bytes, hash);
          else await file.seek(bytes, Deno.SeekMode.Start);
        },
        close: () => file.close(),
      };
    } catch (error) {
      throw fileError(error, name);
    }
  }

  async #openListing(real: string, info: Deno.FileInfo, digests = false): Promise<OpenedFile> {
    const entries = await readListing(this.#sandbox, real);
    if (digests) {
      for (const entry of entries) {
        if (entry.kind === "f") entry.sha256 = await digestOf(join(real, entry.name), entry.size);
      }
    }
    const listing = encoder.encode(formatListing(entries, digests));
    return {
      source: bytesSource(listing),
      size: listing.length,
      kind: "listing",
      mtime: info.mtime ?? undefined,
      skip: () => Promise.reject(new ProtocolError(ErrorCode.OTHER, "a listing cannot resume")),
      close() {},
    };
  }

  /**
   * Creates the directory `requested` with the rules of a new file: inside
   * the root, a name under every name rule, never replacing anything
   * (ERR 6), refused when read-only (ERR 2).
   */
  async makeDirectory(requested: string | Uint8Array): Promise<void> {
    if (this.readOnly) throw new ProtocolError(ErrorCode.ACCESS_VIOLATION, this.#readOnlyMessage);
    const name = checkedName(requested);
    try {
      await Deno.mkdir(await this.#sandbox.resolveNew(name));
    } catch (error) {
      throw fileError(error, name);
    }
  }

  /**
   * Stages a new file named `requested` (as for `openRead`); `declaredSize`,
   * when the client said it, is checked against the upload limit before
   * anything is created.
   */
  async stageWrite(requested: string | Uint8Array, declaredSize?: number): Promise<StagedWrite> {
    if (this.readOnly) throw new ProtocolError(ErrorCode.ACCESS_VIOLATION, this.#readOnlyMessage);
    const name = checkedName(requested);
    const limit = this.maxUploadBytes;
    if (limit > 0 && (declaredSize ?? 0) > limit) {
      throw new ProtocolError(
        ErrorCode.DISK_FULL,
        `upload too large: ${declaredSize} bytes, at most ${limit}`,
      );
    }
    let staged: StagedFile;
    try {
      staged = await StagedFile.create(await this.#sandbox.resolveNew(name), STAGING_PREFIX);
    } catch (error) {
      throw fileError(error, name);
    }
    return {
      // Disk errors become ERR 3 (full) or ERR 0 with the reason, not a generic failure.
      sink: fileSink(staged.file, (error) => fileError(error, name)),
      async commit() {
        try {
          await staged.commit({ sync: true });
        } catch (error) {
          throw fileError(error, name);
        }
      },
      discard: () => staged.discard(),
    };
  }
}

/** The SHA-256 of the file at `path`, in hex. */
async function digestOf(path: string, size: number): Promise<string> {
  const hash = sha256For(size);
  const file = await Deno.open(path, { read: true });
  try {
    await hashPrefix(file, size, hash);
    return toHex(await hash.digest());
  } finally {
    file.close();
    hash.close();
  }
}

/** A name from the wire goes through every name rule; a string was checked already. */
function checkedName(requested: string | Uint8Array): string {
  return typeof requested === "string" ? requested : parseName(requested);
}
