/**
 * The login exchange of a server with accounts (docs/PROTOCOL.md, "Login"):
 * right after the greeting, before any request, the client sends OPT with
 * exactly `user` and `password`; the server answers OACK `user` when the
 * pair is right, or ERR 7 when it is not (the same for a wrong name as for
 * a wrong password), and the connection stays usable for another try. A
 * request before a login is served as anonymous by the access model
 * (lib/store/access.ts): ERR 7 `login required` unless the server has a
 * public area or anonymous reads, which is all a plain fsd/1 client sees.
 */

import type { Account } from "../auth/accounts.ts";
import type { LoginChecker } from "./remote_login.ts";
import { ErrorCode, ProtocolError } from "../store/errors.ts";
import type { Access, Files } from "../store/access.ts";
import type { FileStore } from "../store/file_store.ts";
import type { Op } from "../store/log.ts";
import type { OptionPairs } from "./codec.ts";
import { optionRecord } from "../net/option_pairs.ts";

/** How a server with accounts treats logins. */
export interface LoginPolicy {
  authenticator: LoginChecker;
  /** Why a login from `address` is refused before it is checked (plain text from afar), if it is. */
  refuseFrom?(address: string): string | undefined;
}

export { LOGIN_REQUIRED } from "../store/access.ts";
export const LOGIN_BUSY = "try later: too many logins being checked";
export const LOGIN_FAILED = "login failed: unknown user or wrong password";
/** What the log calls a client that did not log in. */
export const ANONYMOUS = "anonymous";

/** Whether an OPT is a login rather than options for a request. */
export function isLogin(pairs: OptionPairs): boolean {
  return pairs.some(([name]) => name === "user" || name === "password");
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
  #access: Access;
  /** The files as this connection sees them: anonymous until a login. */
  #files: Files | undefined;
  #requested = false;

  constructor(root: FileStore, access: Access, address: string, policy?: LoginPolicy) {
    this.#root = root;
    this.#access = access;
    this.#address = address;
    this.#policy = policy;
  }

  /** Who requests are made as, for the log (undefined on a server without accounts). */
  get user(): string | undefined {
    if (!this.#policy) return undefined;
    return this.account?.name ?? ANONYMOUS;
  }

  /**
   * The files requests go to: without accounts the store itself; with them,
   * the access model's view for the account logged in, or for an anonymous
   * client (whose refusals are ERR 7 `login required`).
   */
  storeFor(_op?: Op): Promise<Files> {
    this.#requested = true;
    if (!this.#policy) return Promise.resolve(this.#root);
    return Promise.resolve(this.#files ??= this.#access.view(this.#root, this.account));
  }

  /**
   * A login OPT: OACK pairs on success. A refusal is ProtocolError 7 (the
   * connection goes on); a login out of place is ERR 4 and a malformed one
   * ERR 8 (the connection ends). `signal` abandons a throttled wait.
   */
  async login(options: OptionPairs, signal?: AbortSignal): Promise<OptionPairs> {
    const pairs = optionRecord(options); // a repeated name: the last value counts
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
      await this.#root.within(account.home ?? "");
    } catch {
      throw new ProtocolError(ErrorCode.NOT_FOUND, `home directory not found: ${account.home}`);
    }
    this.account = account;
    this.#files = undefined;
    return [["user", account.name]];
  }
}
