/**
 * The login exchange of a server with accounts (docs/PROTOCOL.md, "Login"):
 * right after the greeting, before any request, the client sends OPT with
 * exactly `user` and `password`; the server answers OACK `user` when the
 * pair is right, or ERR 7 when it is not (the same for a wrong name as for
 * a wrong password), and the connection stays usable for another try. A
 * request before a login is ERR 7 `login required` (unless anonymous reads
 * are allowed), which is all a plain fsd/1 client ever sees.
 */

import type { Account } from "../auth/accounts.ts";
import type { LoginChecker } from "./remote_login.ts";
import { ErrorCode, ProtocolError } from "../store/errors.ts";
import type { FileStore } from "../store/file_store.ts";
import type { Op } from "../store/log.ts";
import type { OptionPairs } from "./codec.ts";

/** How a server with accounts treats logins. */
export interface LoginPolicy {
  authenticator: LoginChecker;
  /** Clients without an account may download and list (not upload). */
  anonymousRead: boolean;
  /** Why a login from `address` is refused before it is checked (plain text from afar), if it is. */
  refuseFrom?(address: string): string | undefined;
}

export const LOGIN_REQUIRED = "login required";
export const LOGIN_BUSY = "try later: too many logins being checked";
export const LOGIN_FAILED = "login failed: unknown user or wrong password";
/** What the log calls a client that did not log in. */
export const ANONYMOUS = "anonymous";

/** Whether an OPT is a login rather than options for a request. */
export function isLogin(pairs: OptionPairs): boolean {
  return "user" in pairs || "password" in pairs;
}

function refused(message: string): ProtocolError {
  return new ProtocolError(ErrorCode.NO_SUCH_USER, message);
}

function violation(message: string): ProtocolError {
  return new ProtocolError(ErrorCode.ILLEGAL_OPERATION, message);
}

/** One connection's login: none yet, an account, or too late (a request came first). */
export class LoginState {
  /** The account logged in, once one is. */
  account: Account | undefined;
  #policy: LoginPolicy | undefined;
  #address: string;
  #root: FileStore;
  /** The account's store, once logged in. */
  #store: FileStore | undefined;
  /** The whole directory, read-only, for anonymous reads. */
  #anonymous: FileStore | undefined;
  #requested = false;

  constructor(root: FileStore, address: string, policy?: LoginPolicy) {
    this.#root = root;
    this.#address = address;
    this.#policy = policy;
  }

  /** Who requests are made as, for the log (undefined on a server without accounts). */
  get user(): string | undefined {
    if (!this.#policy) return undefined;
    return this.account?.name ?? ANONYMOUS;
  }

  /**
   * The store a request with `op` goes to: the account's root, the whole
   * directory read-only for anonymous reads, or ERR 7 `login required`.
   */
  async storeFor(op: Op): Promise<FileStore> {
    this.#requested = true;
    if (!this.#policy) return this.#root;
    if (this.#store) return this.#store;
    if (this.#policy.anonymousRead && op !== "WRQ") {
      this.#anonymous ??= await this.#root.within("", true);
      return this.#anonymous;
    }
    throw refused(LOGIN_REQUIRED);
  }

  /**
   * A login OPT: OACK pairs on success. A refusal is ProtocolError 7 (the
   * connection goes on); a login out of place is ERR 4 and a malformed one
   * ERR 8 (the connection ends). `signal` abandons a throttled wait.
   */
  async login(pairs: OptionPairs, signal?: AbortSignal): Promise<OptionPairs> {
    const policy = this.#policy;
    if (!policy) {
      throw new ProtocolError(
        ErrorCode.OPTION_REFUSED,
        "option negotiation failed: this server has no accounts",
      );
    }
    if (this.account) throw violation("already logged in");
    if (this.#requested) throw violation("a login must come before any request");
    const names = Object.keys(pairs).sort().join(",");
    if (names !== "password,user") {
      throw new ProtocolError(
        ErrorCode.OPTION_REFUSED,
        "option negotiation failed: a login carries user and password, nothing else",
      );
    }
    const why = policy.refuseFrom?.(this.#address);
    if (why) throw refused(why);
    const { user, password } = pairs;
    const result = await policy.authenticator.login(this.#address, user, password, signal);
    // Invalid UTF-8 arrives as U+FFFD: never a match, after the same work.
    const clean = !user.includes("\ufffd") && !password.includes("\ufffd");
    if (!result.ok) {
      if (result.reason === "busy") throw refused(LOGIN_BUSY);
      if (result.reason === "paused") {
        throw refused(
          `login failed: too many failed logins from ${this.#address}; try again in ${
            Math.ceil(result.retryMs / 1000)
          } s`,
        );
      }
      throw refused(LOGIN_FAILED);
    }
    if (!clean) throw refused(LOGIN_FAILED);
    const { account } = result;
    try {
      this.#store = await this.#root.within(
        account.home ?? "",
        account.rights === "ro",
        `account ${account.name} is read-only`,
      );
    } catch {
      throw new ProtocolError(ErrorCode.NOT_FOUND, `home directory not found: ${account.home}`);
    }
    this.account = account;
    return { user: account.name };
  }
}
