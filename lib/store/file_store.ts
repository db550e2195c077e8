/**
 * The file store: what every protocol does with the served directory. Open
 * a name for reading (a file's bytes, or a directory's listing) and stage a
 * name for writing (committed under its name only once complete and synced,
 * never replacing anything). Every path rule, limit and crash-safety rule is
 * inside; a refusal is a ProtocolError whose code is the ERR to send.
 */

import {
  type ByteSink,
  type ByteSource,
  fileSink,
  fileSource,
  SYNC_READ_BYTES,
} from "../bytes/mod.ts";
import { type Hasher, hashPrefix, sha256For, toHex } from "../bytes/sha256.ts";
import { ErrorCode, ProtocolError } from "./errors.ts";
import { type ListingEntry, listingSource, mergeEntries, readListing } from "./listing.ts";
import type { Opened } from "./opened.ts";
import { ClientRate, type RateConfig } from "./rate.ts";
import { fileError, parseName, Sandbox, STAGING_PREFIX } from "./sandbox.ts";
import { onBlockDevice } from "./file_calls.ts";
import { removeStaleStaging, StagedFile } from "./staging.ts";
import { SERVED_DIGESTS, versionOf, worthRemembering } from "./digest_cache.ts";
import { probeSharedDir, RootGuard } from "./shared_dir.ts";

export interface FileStoreConfig {
  /** The directory to serve. */
  root: string;
  /** Refuse every write with ERR 2, and touch nothing on disk. */
  readOnly?: boolean;
  /** Largest upload in bytes (default 8 GiB; 0: no limit). */
  maxUploadBytes?: number;
  /** How often one client may make a directory (default MKDIR_RATE). */
  mkdirRate?: RateConfig;
}

export const DEFAULT_MAX_UPLOAD_BYTES = 8 * 1024 ** 3;

/** How `openRead` reads. */
export interface ReadOptions {
  /** A listing carries each file's SHA-256. */
  digests?: boolean;
  /** Entries a listing shows beside (and over) the directory's own: the access model's mounts. */
  extra?: ListingEntry[];
  /** A listing shows the `extra` entries alone. */
  only?: boolean;
  /**
   * Keep the race-free descriptor the file was opened by, and give it
   * (`OpenedFile.descriptor`) while the file is open: a reader on another
   * thread of this process (TFTP's blocking sender) reads exactly the file
   * checked. Only in fd mode (lib/store/opened.ts); elsewhere none is given.
   */
  descriptor?: boolean;
}

/** The descriptor behind an fd-mode open (its path is /proc/self/fd/N), or undefined. */
function heldDescriptor(opened: Opened): { fd: number; opened: Opened } | undefined {
  const fd = /^\/proc\/self\/fd\/(\d+)$/.exec(opened.path)?.[1];
  return fd === undefined ? undefined : { fd: Number(fd), opened };
}

/** A name opened for reading. */
export interface OpenedFile {
  source: ByteSource;
  size: number;
  kind: "file" | "listing";
  mtime?: Date;
  /** Moves the start past the first `bytes` of a file (a resume), hashing them into `hash` if given. */
  skip(bytes: number, hash?: Hasher): Promise<void>;
  /** The open descriptor of the file, where `ReadOptions.descriptor` asked for it and fd mode gives one. */
  descriptor?: number;
  /** A file's version when opened, if it has one (digest_cache.ts: `fileVersion`). */
  version?: string;
  /** Whether the open file is still `version` (one fstat). */
  unchanged?(): Promise<boolean>;
  close(): void;
}

/** A name being written: `commit` publishes it (with `mtime`, Unix seconds, its time), `discard` (always safe to call) removes the rest. */
export interface StagedWrite {
  sink: ByteSink;
  commit(mtime?: number): Promise<void>;
  discard(): Promise<void>;
}

const SERVER_READ_ONLY = "server is read-only";

export class FileStore {
  readonly readOnly: boolean;
  /** What a refused write says: the server's --read-only, or a read-only account's. */
  #readOnlyReason = SERVER_READ_ONLY;
  readonly maxUploadBytes: number;
  #sandbox: Sandbox;
  #guard: RootGuard;
  /** Shared by every store `within` this one: a client's rate is the server's. */
  #mkdirRate: ClientRate;

  private constructor(
    sandbox: Sandbox,
    guard: RootGuard,
    readOnly: boolean,
    maxUploadBytes: number,
    mkdirRate: ClientRate,
  ) {
    this.#sandbox = sandbox;
    this.#guard = guard;
    this.#mkdirRate = mkdirRate;
    this.readOnly = readOnly;
    this.maxUploadBytes = maxUploadBytes;
  }

  /** Opens the store on `config.root`; throws if it is missing or not a directory. */
  static async open(config: FileStoreConfig): Promise<FileStore> {
    const sandbox = await Sandbox.open(config.root);
    return new FileStore(
      sandbox,
      await RootGuard.of(sandbox.root, sandbox.calls),
      config.readOnly ?? false,
      config.maxUploadBytes ?? DEFAULT_MAX_UPLOAD_BYTES,
      new ClientRate(config.mkdirRate),
    );
  }

  /** What a refused write says (a read-only store): `server is read-only`, or an account's. */
  get readOnlyReason(): string {
    return this.#readOnlyReason;
  }

  /** The served directory's real path. */
  get root(): string {
    return this.#sandbox.root;
  }

  /** Whether opens are race-free here (lib/store/opened.ts): Linux, with --allow-all. */
  get raceFree(): boolean {
    return this.#sandbox.raceFree;
  }

  /**
   * A store rooted at `subdir` (a name under these rules; "" is this root),
   * with the same limits; `readOnly` can only add to this store's (a string: read-only, and
   * what a refused write says, as `account ada is read-only`).
   */
  async within(
    subdir: string,
    readOnly: boolean | string = false,
    hidden: string[] = [],
  ): Promise<FileStore> {
    const real = await this.#sandbox.resolveExisting(subdir);
    const excluded: string[] = [];
    for (const name of hidden) {
      // A home that does not exist (yet) hides nothing; one that does, by its real path.
      const path = await this.#sandbox.resolveExisting(name).catch(() => undefined);
      if (path !== undefined) excluded.push(path);
    }
    const store = new FileStore(
      await Sandbox.open(real, excluded),
      this.#guard,
      this.readOnly || readOnly !== false,
      this.maxUploadBytes,
      this.#mkdirRate,
    );
    if (!this.readOnly && typeof readOnly === "string") store.#readOnlyReason = readOnly;
    return store;
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

  /**
   * What the directory lacks for several servers to share it (a lock seen
   * through another handle, link(2) refusing an existing name), or
   * undefined; a read-only store writes nothing and is not probed.
   */
  async sharedDirProblem(): Promise<string | undefined> {
    return this.readOnly ? undefined : await probeSharedDir(this.root);
  }

  /**
   * Undefined while the root is still the directory the store opened; else
   * why not (the shared file system was unmounted under the server).
   */
  rootChanged(): Promise<string | undefined> {
    return this.#guard.changed();
  }

  /** ERR 0 with the reason once the root is no longer the directory the store opened. */
  async #checkRoot(): Promise<void> {
    const changed = await this.#guard.changed();
    if (changed) throw new ProtocolError(ErrorCode.OTHER, changed);
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
    options: ReadOptions = {},
  ): Promise<OpenedFile> {
    const name = checkedName(requested);
    // The root is checked once, after the open (one stat per request, not two): unmounted
    // before or while it was opened, what was found (or not) may be the empty mount point's,
    // so a failure to open is reported as the unmount too.
    const opened = await this.#openRead(name, options).catch(async (error) => {
      await this.#checkRoot();
      throw error;
    });
    await this.#checkRoot().catch((error) => {
      opened.close();
      throw error;
    });
    return opened;
  }

  async #openRead(name: string, options: ReadOptions): Promise<OpenedFile> {
    let opened: Opened | undefined;
    try {
      // What is read is what was checked: through the open name (race-free in fd mode).
      opened = await this.#sandbox.openExisting(name);
      const info = await this.#sandbox.calls.stat(opened.path);
      if (info.isDirectory) return await this.#openListing(opened, info, options);
      if (!info.isFile) {
        throw new ProtocolError(ErrorCode.ACCESS_VIOLATION, `not a regular file: ${name}`);
      }
      const calls = this.#sandbox.calls;
      const file = await calls.open(opened.path, { read: true });
      // Its contents are read synchronously where it is on a disk, or where the calls are.
      const sync = onBlockDevice(info.dev) || await calls.syncNow();
      const held = options.descriptor ? heldDescriptor(opened) : undefined;
      if (held !== undefined) opened = undefined; // closed with the file, not now
      const current = versionOf(file, info);
      return {
        source: fileSource(file, sync ? SYNC_READ_BYTES : 0, sync),
        size: info.size,
        kind: "file",
        mtime: info.mtime ?? undefined,
        skip: async (bytes, hash) => {
          if (hash) await hashPrefix(file, bytes, hash);
          else await file.seek(bytes, Deno.SeekMode.Start);
        },
        descriptor: held?.fd,
        version: current.version,
        unchanged: current.unchanged,
        close: () => {
          file.close();
          held?.opened.close();
        },
      };
    } catch (error) {
      throw fileError(error, name);
    } finally {
      opened?.close();
    }
  }

  /** What a listing of DIR would say of `name` (a name under the rules); undefined if nothing. */
  async describe(name: string): Promise<ListingEntry | undefined> {
    let opened: Opened | undefined;
    try {
      opened = await this.#sandbox.openExisting(name);
      const info = await this.#sandbox.calls.stat(opened.path);
      if (!info.isFile && !info.isDirectory) return undefined;
      const kind = info.isDirectory ? "d" : "f";
      return { kind, size: info.isFile ? info.size : 0, mtime: info.mtime ?? new Date(0), name };
    } catch {
      return undefined;
    } finally {
      opened?.close();
    }
  }

  async #openListing(
    directory: Opened,
    info: Deno.FileInfo,
    options: ReadOptions,
  ): Promise<OpenedFile> {
    const { digests = false, extra = [], only = false } = options;
    const own = only ? [] : await readListing(this.#sandbox, directory);
    const entries = mergeEntries(own, extra);
    // Hashing happens as the listing is sent, so the directory must stay reachable until then.
    const held = digests ? await this.#sandbox.openInside(directory.path) : undefined;
    const { source, size } = listingSource(
      entries,
      digests,
      (entry) => this.#digestOf(`${held!.path}/${entry.name}`, entry.size),
    );
    return {
      source,
      size,
      kind: "listing",
      mtime: info.mtime ?? undefined,
      skip: () => Promise.reject(new ProtocolError(ErrorCode.OTHER, "a listing cannot resume")),
      close: () => held?.close(),
    };
  }

  /**
   * The SHA-256 of the listed file at `path`, in hex; "-" if it does not lead inside now. A file
   * listed before and unchanged since is not read again (digest_cache.ts).
   */
  async #digestOf(path: string, size: number): Promise<string> {
    const opened = await this.#sandbox.openInside(path).catch(() => undefined);
    if (!opened) return "-";
    try {
      const file = await this.#sandbox.calls.open(opened.path, { read: true });
      try {
        // A small file is never remembered: no fstat for its version.
        const info = worthRemembering(size) ? await file.stat() : undefined;
        const listed = info?.size === size ? versionOf(file, info) : { size };
        const known = SERVED_DIGESTS.get("sha256", listed);
        if (known) return toHex(known);
        const hash = sha256For(size);
        try {
          await hashPrefix(file, size, hash);
          const digest = await hash.digest();
          await SERVED_DIGESTS.remember("sha256", listed, digest);
          return toHex(digest);
        } finally {
          hash.close();
        }
      } finally {
        file.close();
      }
    } finally {
      opened.close();
    }
  }

  /**
   * Creates the directory `requested` with the rules of a new file: inside
   * the root, a name under every name rule, never replacing anything
   * (ERR 6), refused when read-only (ERR 2), and at most so often for one
   * `client` (its address; ERR 0 past MKDIR_RATE).
   */
  async makeDirectory(requested: string | Uint8Array, client?: string): Promise<void> {
    if (this.readOnly) throw new ProtocolError(ErrorCode.ACCESS_VIOLATION, this.#readOnlyReason);
    const name = checkedName(requested);
    await this.#checkRoot();
    const waitMs = client === undefined ? undefined : this.#mkdirRate.take(client);
    if (waitMs !== undefined) {
      throw new ProtocolError(
        ErrorCode.OTHER,
        `too many new directories from ${client}: try again in ${Math.ceil(waitMs / 1000)} s`,
      );
    }
    try {
      const { directory, path } = await this.#sandbox.openNew(name);
      try {
        // never group- or world-writable, whatever the umask (strict_modes.ts)
        await Deno.mkdir(path, { mode: 0o755 });
      } finally {
        directory.close();
      }
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
    if (this.readOnly) throw new ProtocolError(ErrorCode.ACCESS_VIOLATION, this.#readOnlyReason);
    const name = checkedName(requested);
    const limit = this.maxUploadBytes;
    if (limit > 0 && (declaredSize ?? 0) > limit) {
      throw new ProtocolError(
        ErrorCode.DISK_FULL,
        `upload too large: ${declaredSize} bytes, at most ${limit}`,
      );
    }
    await this.#checkRoot();
    let staged: StagedFile;
    // The directory stays open until the file has its name: staging and link(2) go through it.
    let directory: Opened | undefined;
    try {
      const opened = await this.#sandbox.openNew(name);
      directory = opened.directory;
      staged = await StagedFile.create(opened.path, STAGING_PREFIX);
    } catch (error) {
      directory?.close();
      throw fileError(error, name);
    }
    // Unmounted between the check and the create: the file is beneath the volume; remove it.
    const checkRoot = () => this.#checkRoot();
    await checkRoot().catch(async (error) => {
      await staged.discard();
      directory.close();
      throw error;
    });
    return {
      // Disk errors become ERR 3 (full) or ERR 0 with the reason, not a generic failure.
      sink: flushedBehind(fileSink(staged.file, (error) => fileError(error, name)), staged),
      async commit(mtime?: number) {
        await checkRoot(); // never publish into a directory that is no longer the one served
        try {
          if (mtime !== undefined) await staged.file.utime(mtime, mtime);
          await staged.commit({ sync: true });
        } catch (error) {
          // Left open: in fd mode the staging file's name goes through it, and `discard` removes it.
          throw fileError(error, name);
        }
        directory.close();
      },
      async discard() {
        await staged.discard();
        directory.close();
      },
    };
  }
}

/**
 * `sink`, counting what it writes into `staged` so that an upload, which is
 * flushed before it gets its name, is flushed behind the network as it
 * arrives instead of all at the end (`StagedFile.wrote`).
 */
function flushedBehind(sink: ByteSink, staged: StagedFile): ByteSink {
  return {
    regularFile: sink.regularFile,
    write: (bytes) =>
      sink.write(bytes).then((n) => {
        staged.wrote(n);
        return n;
      }),
  };
}

/** A name from the wire goes through every name rule; a string was checked already. */
function checkedName(requested: string | Uint8Array): string {
  return typeof requested === "string" ? requested : parseName(requested);
}
