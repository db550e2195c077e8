/**
 * Accounts on the HTTP face: HTTP Basic (so `curl -u` works) and a login
 * form that gives a browser a session cookie, both checked by the same
 * Authenticator (scrypt, the per-address throttle) as fsd/1, each caller
 * (an account, or anonymous) served through the same access model as fsd/1
 * and TFTP (`Access.view`: --public, homes, rights), and the
 * same rule on clear text: without TLS, logins only from loopback unless
 * allowed. A right login is remembered (bounded, for a while) so that a
 * client sending Basic on every request costs one scrypt check, not one
 * per request.
 */

import type { Account } from "../auth/accounts.ts";
import type { Authenticator } from "../auth/authenticator.ts";
import { toHex } from "../bytes/sha256.ts";
import { isLoopback } from "../net/ip.ts";
import { type Access, accessFor, type Files, type Principal } from "../store/access.ts";
import type { FileStore } from "../store/file_store.ts";
import { HttpError } from "./respond.ts";

export interface HttpAccounts {
  authenticator: Authenticator;
  anonymousRead?: boolean;
  /** --public NAME: anonymous clients read it (and only it). */
  public?: string;
  allowPlaintextLogin?: boolean;
}

/** Who a request is made as, and the files as it sees them. */
export interface Caller {
  files: Files;
  /** Whether it may write into directory `name` (the page offers uploads only then). */
  mayWrite(name: string): boolean;
  /** The account's name; "anonymous" without a login; undefined on a server without accounts. */
  user?: string;
  /** The token the caller's forms carry. */
  csrf: string;
  /** An account with the admin right (the live page). */
  admin: boolean;
}

const SESSION_MS = 12 * 3600_000;
const REMEMBERED_MS = 10 * 60_000;
/** Most sessions and remembered Basic logins kept; the oldest go first. */
const MAX_SESSIONS = 1000;
export const SESSION_COOKIE = "fsd_session";

interface Session {
  account: Account;
  files: Files;
  csrf: string;
  expires: number;
}

export class HttpLogins {
  #root: FileStore;
  #accounts: HttpAccounts | undefined;
  /** The access model fsd/1 and TFTP obey too (lib/store/access.ts). */
  #access: Access;
  #tls: boolean;
  /** The forms' token of callers without a session. */
  readonly csrf = randomToken();
  #sessions = new Map<string, Session>();
  #remembered = new Map<string, Session>();

  constructor(root: FileStore, accounts: HttpAccounts | undefined, tls: boolean) {
    this.#root = root;
    this.#accounts = accounts;
    this.#access = accessFor(accounts);
    this.#tls = tls;
  }

  get enabled(): boolean {
    return this.#accounts !== undefined;
  }

  /**
   * The caller of `request` from `address`: a session cookie, Basic
   * credentials, or nobody (anonymous, if the server allows it). Throws
   * HttpError 401 when a login is needed or wrong.
   */
  async caller(request: Request, address: string, writing: boolean): Promise<Caller> {
    const accounts = this.#accounts;
    const root = this.#root;
    if (!accounts) {
      return { files: root, mayWrite: () => !root.readOnly, csrf: this.csrf, admin: false };
    }
    const session = this.#session(request);
    if (session) return this.#as(session);
    const basic = basicCredentials(request.headers.get("authorization"));
    if (basic) return this.#as(await this.#basic(basic.user, basic.password, address));
    if ((accounts.anonymousRead || accounts.public !== undefined) && !writing) {
      return {
        files: this.#access.view(root, undefined),
        mayWrite: () => false,
        user: "anonymous",
        csrf: this.csrf,
        admin: false,
      };
    }
    throw new HttpError(401, "login required");
  }

  /** A login from the form: the cookie to set. */
  async login(user: string, password: string, address: string): Promise<string> {
    const session = await this.#check(user, password, address);
    const token = randomToken();
    remember(this.#sessions, token, session);
    return `${SESSION_COOKIE}=${token}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${
      SESSION_MS / 1000
    }${this.#tls ? "; Secure" : ""}`;
  }

  /** Ends the session of `request`; the cookie that clears it. */
  logout(request: Request): string {
    const token = cookie(request.headers.get("cookie"), SESSION_COOKIE);
    if (token) this.#sessions.delete(token);
    return `${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0`;
  }

  #session(request: Request): Session | undefined {
    const token = cookie(request.headers.get("cookie"), SESSION_COOKIE);
    const session = token ? this.#sessions.get(token) : undefined;
    if (!session || session.expires < Date.now()) return undefined;
    return session;
  }

  async #basic(user: string, password: string, address: string): Promise<Session> {
    const key = await digestKey(user, password);
    const known = this.#remembered.get(key);
    if (known && known.expires > Date.now()) return known;
    const session = await this.#check(user, password, address);
    remember(this.#remembered, key, { ...session, expires: Date.now() + REMEMBERED_MS });
    return session;
  }

  async #check(user: string, password: string, address: string): Promise<Session> {
    const accounts = this.#accounts;
    if (!accounts) throw new HttpError(404, "this server has no accounts");
    if (!this.#tls && !accounts.allowPlaintextLogin && !isLoopback(address)) {
      throw new HttpError(
        403,
        "login refused: this server takes logins without TLS only from loopback",
      );
    }
    const result = await accounts.authenticator.login(address, user, password);
    if (!result.ok) {
      if (result.reason === "paused") {
        throw new HttpError(
          429,
          `login failed: too many failed logins from ${address}; try again in ${
            Math.ceil(result.retryMs / 1000)
          } s`,
          { "retry-after": String(Math.ceil(result.retryMs / 1000)) },
        );
      }
      throw new HttpError(401, "login failed: unknown user or wrong password");
    }
    const { account } = result;
    const files = this.#access.view(this.#root, account);
    return { account, files, csrf: randomToken(), expires: Date.now() + SESSION_MS };
  }

  #as(session: Session): Caller {
    const access = this.#access;
    const account: Principal = session.account;
    return {
      files: session.files,
      mayWrite: (name) => !this.#root.readOnly && access.may(account, name, "write"),
      user: session.account.name,
      csrf: session.csrf,
      admin: session.account.rights === "admin",
    };
  }
}

function remember(map: Map<string, Session>, key: string, session: Session): void {
  map.delete(key);
  map.set(key, session);
  while (map.size > MAX_SESSIONS) map.delete(map.keys().next().value!);
}

/** `Authorization: Basic base64(user:password)`, or undefined. */
export function basicCredentials(
  header: string | null,
): { user: string; password: string } | undefined {
  const match = /^Basic\s+([A-Za-z0-9+/=]{1,1024})\s*$/i.exec(header ?? "");
  if (!match) return undefined;
  let text: string;
  try {
    const bytes = Uint8Array.from(atob(match[1]), (c) => c.charCodeAt(0));
    text = new TextDecoder().decode(bytes);
  } catch {
    return undefined;
  }
  const colon = text.indexOf(":");
  if (colon < 0) return undefined;
  return { user: text.slice(0, colon), password: text.slice(colon + 1) };
}

/** The value of cookie `name` in a Cookie header. */
export function cookie(header: string | null, name: string): string | undefined {
  for (const part of (header ?? "").split(";")) {
    const [key, value] = part.trim().split("=", 2);
    if (key === name && value && /^[0-9a-f]{32}$/.test(value)) return value;
  }
  return undefined;
}

function randomToken(): string {
  return toHex(crypto.getRandomValues(new Uint8Array(16)));
}

async function digestKey(user: string, password: string): Promise<string> {
  const bytes = new TextEncoder().encode(`${user}\u0000${password}`);
  return toHex(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)));
}
