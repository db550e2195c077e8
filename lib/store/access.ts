/**
 * The access model: who may read and who may write what, the same for every
 * protocol (fsd/1, TFTP, HTTP). A protocol asks `Access` where a name leads
 * for a principal, and serves it through `Access.view`, which applies the
 * answer on top of the `FileStore` (docs/SECURITY.md, "Accounts and access").
 *
 * - Without accounts: everyone reads all of DIR and writes new files in it
 *   (unless the store is read-only).
 * - With accounts, an account without a home reads all of DIR and writes
 *   there if `rw` (an instructor); an account with a home has that home as
 *   its root, writes there if `rw`, and also reads the public area under
 *   its own name (`PUBLIC/...`, read-only, shown in the home's listing).
 * - A client without an account (anonymous: every TFTP client, an fsd/1
 *   client that did not log in) reads the public area (`PUBLIC/...`; the
 *   root lists only it) when there is one; otherwise, with `anonymousRead`,
 *   all of DIR except the accounts' homes; otherwise nothing (ERR 7
 *   `login required`). It never writes.
 *
 * One name per file for everyone: a public file is `PUBLIC/name` for an
 * anonymous client, a student and the instructor alike.
 */

import { ErrorCode, ProtocolError } from "./errors.ts";
import type { FileStore, OpenedFile, StagedWrite } from "./file_store.ts";
import type { ListingEntry } from "./listing.ts";
import { parseName } from "./sandbox.ts";

/** Who makes a request: an account (lib/auth's `Account` is one), or `undefined` for anonymous. */
export interface Principal {
  name: string;
  /** admin: rw, and the live page of the HTTP face from afar. */
  rights: "ro" | "rw" | "admin";
  /** The account's root under DIR; absent: all of DIR. */
  home?: string;
}

/** What a request wants to do with a name: read (download, list) or write (upload, mkdir). */
export type Right = "read" | "write";

export interface AccessConfig {
  /** Whether the server has accounts (--users); without, everyone may do everything. */
  accounts: boolean;
  /** Anonymous clients read all of DIR but the homes (--anonymous read), when there is no public area. */
  anonymousRead?: boolean;
  /** A directory directly under DIR that everyone reads, anonymous clients included (--public). */
  public?: string;
  /** The homes of every account now (to keep them from anonymous readers); reread on each call. */
  homes?: () => Iterable<string>;
}

/**
 * Where a name leads: the area's directory under DIR ("" is DIR), the name
 * inside it, and what the principal may do there.
 */
export interface Location {
  area: string;
  name: string;
  readOnly: boolean;
  /** The accounts' homes are out of reach (an anonymous reader of all of DIR). */
  hideHomes: boolean;
  /** Directories shown in a listing of this name beside its own entries (the public area). */
  mounts: string[];
  /** The listing of this name shows the mounts alone (an anonymous client's root). */
  onlyMounts?: boolean;
}

/** What protocols do with files; `FileStore` and `Access.view`'s answer both are one. */
export interface Files {
  readonly maxUploadBytes: number;
  openRead(
    requested: string | Uint8Array,
    options?: { digests?: boolean; descriptor?: boolean },
  ): Promise<OpenedFile>;
  stageWrite(requested: string | Uint8Array, declaredSize?: number): Promise<StagedWrite>;
  /** `client`: its address, for the rate of new directories. */
  makeDirectory(requested: string | Uint8Array, client?: string): Promise<void>;
}

export const LOGIN_REQUIRED = "login required";

function loginRequired(): ProtocolError {
  return new ProtocolError(ErrorCode.NO_SUCH_USER, LOGIN_REQUIRED);
}

/** Throws unless `name` can be a public area: one plain directory name directly under DIR. */
export function checkPublicName(name: string): void {
  let ok = !name.includes("/");
  try {
    ok &&= name !== "" && parseName(new TextEncoder().encode(name)) === name;
  } catch {
    ok = false;
  }
  if (!ok) {
    throw new Error("expected one directory name directly under DIR");
  }
}

export class Access {
  readonly config: AccessConfig;

  constructor(config: AccessConfig) {
    if (config.public !== undefined) checkPublicName(config.public);
    this.config = config;
  }

  /** What an anonymous client reaches, in words (TFTP's start line says it). */
  describeAnonymous(): string {
    const { accounts, anonymousRead, public: area } = this.config;
    if (!accounts) return "all of DIR";
    if (area !== undefined) return `only ${area}/, read-only`;
    if (anonymousRead) return "all of DIR but the accounts' homes, read-only";
    return "nothing";
  }

  /**
   * Where `name` (already checked by `parseName`) leads for `who` wanting
   * `right`. Throws ProtocolError 7 `login required` for what an anonymous
   * client may not do, 2 for what an account may not.
   */
  locate(who: Principal | undefined, name: string, right: Right): Location {
    const { accounts, anonymousRead, public: area } = this.config;
    const everything = { area: "", name, hideHomes: false, mounts: [] };
    if (!accounts) return { ...everything, readOnly: false };
    const inPublic = area !== undefined && (name === area || name.startsWith(area + "/"));
    if (who && who.home === undefined) return { ...everything, readOnly: who.rights === "ro" };
    if (!who && right === "write") throw loginRequired();
    if (inPublic) {
      if (right === "write") {
        throw new ProtocolError(ErrorCode.ACCESS_VIOLATION, `access denied: ${area}/ is read-only`);
      }
      const rest = name.slice(area.length + 1);
      return { area, name: rest, readOnly: true, hideHomes: false, mounts: [] };
    }
    const mounts = area !== undefined && name === "" ? [area] : [];
    if (who) {
      return { area: who.home!, name, readOnly: who.rights === "ro", hideHomes: false, mounts };
    }
    if (right === "write") throw loginRequired();
    if (area !== undefined) {
      if (name === "") {
        return {
          area: "",
          name,
          readOnly: true,
          hideHomes: false,
          mounts: [area],
          onlyMounts: true,
        };
      }
      throw loginRequired();
    }
    if (anonymousRead) return { ...everything, readOnly: true, hideHomes: true };
    throw loginRequired();
  }

  /** Whether `who` may do `right` with `name` (a name under `parseName`'s rules). */
  may(who: Principal | undefined, name: string, right: Right): boolean {
    try {
      const where = this.locate(who, name, right);
      return right === "read" || !where.readOnly;
    } catch {
      return false;
    }
  }

  /**
   * The files as `who` sees them: every name goes through `locate`, then the
   * area's store. `noLogin`: a protocol without logins (TFTP), where a
   * refusal is ERR 2 (access violation) rather than 7 `login required`.
   */
  view(store: FileStore, who: Principal | undefined, { noLogin = false } = {}): Files {
    return new AccessView(this, store, who, noLogin);
  }
}

/** `Files` for one principal: each request routed to its area's store. */
class AccessView implements Files {
  #access: Access;
  #store: FileStore;
  #who: Principal | undefined;
  #areas = new Map<string, Promise<FileStore>>();
  #noLogin: boolean;

  constructor(access: Access, store: FileStore, who: Principal | undefined, noLogin: boolean) {
    this.#access = access;
    this.#store = store;
    this.#who = who;
    this.#noLogin = noLogin;
  }

  #locate(requested: string | Uint8Array, right: Right): Location {
    const name = checked(requested);
    try {
      return this.#access.locate(this.#who, name, right);
    } catch (error) {
      if (!this.#noLogin || !(error instanceof ProtocolError)) throw error;
      if (error.code !== ErrorCode.NO_SUCH_USER) throw error;
      throw new ProtocolError(ErrorCode.ACCESS_VIOLATION, `access denied: ${name}: no login here`);
    }
  }

  get maxUploadBytes(): number {
    return this.#store.maxUploadBytes;
  }

  async openRead(
    requested: string | Uint8Array,
    options: { digests?: boolean; descriptor?: boolean } = {},
  ): Promise<OpenedFile> {
    const where = this.#locate(requested, "read");
    const extra = await this.#mounted(where.mounts);
    return await (await this.#area(where)).openRead(where.name, {
      ...options,
      extra,
      only: where.onlyMounts,
    });
  }

  async stageWrite(requested: string | Uint8Array, declaredSize?: number): Promise<StagedWrite> {
    const where = this.#locate(requested, "write");
    return await (await this.#area(where)).stageWrite(where.name, declaredSize);
  }

  async makeDirectory(requested: string | Uint8Array, client?: string): Promise<void> {
    const where = this.#locate(requested, "write");
    await (await this.#area(where)).makeDirectory(where.name, client);
  }

  /** The listing entries of the directories mounted beside a listing (the public area). */
  async #mounted(mounts: string[]): Promise<ListingEntry[]> {
    const entries: ListingEntry[] = [];
    for (const name of mounts) {
      const entry = await this.#store.describe(name);
      if (entry?.kind === "d") entries.push(entry);
    }
    return entries;
  }

  #area(where: Location): Promise<FileStore> {
    const key = `${where.readOnly ? "r" : "w"}${where.hideHomes ? "h" : "-"}${where.area}`;
    let store = this.#areas.get(key);
    if (!store) {
      const hidden = where.hideHomes ? [...(this.#access.config.homes?.() ?? [])] : [];
      const who = this.#who;
      // A read-only account's own area says so (the public area's refusal is locate's).
      const readOnly = where.readOnly && who?.rights === "ro" && where.area === (who.home ?? "")
        ? readOnlyAccount(who.name)
        : where.readOnly;
      store = this.#store.within(where.area, readOnly, hidden).catch((error) => {
        this.#areas.delete(key);
        if (error instanceof ProtocolError && error.code === ErrorCode.NOT_FOUND) {
          throw new ProtocolError(ErrorCode.NOT_FOUND, `home directory not found: ${where.area}`);
        }
        throw error;
      });
      this.#areas.set(key, store);
    }
    return store;
  }
}

/** What a read-only account's upload or new directory is told. */
export function readOnlyAccount(name: string): string {
  return `access denied: account ${name} is read-only`;
}

function checked(requested: string | Uint8Array): string {
  return typeof requested === "string" ? requested : parseName(requested);
}

/** What `accessFor` reads of a server's accounts (fsd/1's, TFTP's, HTTP's config). */
export interface AccessFlags {
  anonymousRead?: boolean;
  public?: string;
  authenticator: { homes(): Iterable<string> };
}

/** The access model of a server with `accounts` (or without any), one for every protocol. */
export function accessFor(accounts: AccessFlags | undefined): Access {
  return new Access({
    accounts: accounts !== undefined,
    anonymousRead: accounts?.anonymousRead,
    public: accounts?.public,
    homes: () => accounts?.authenticator.homes() ?? [],
  });
}
