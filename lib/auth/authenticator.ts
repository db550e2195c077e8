/**
 * Checking a login: a name and a password against the accounts, with the
 * same work and the same answer for a wrong name as for a wrong password,
 * slowed down per address on failures, and at most a few checks running at
 * once (each scrypt check holds 16 MiB and a core for a moment).
 */

import { type Account, type AccountLine, accountsByName, isValidName } from "./accounts.ts";
import { dummyHash, MAX_PASSWORD_BYTES, type ParsedHash, verifyPassword } from "./password.ts";
import { LoginThrottle, type ThrottleConfig } from "./throttle.ts";
import { after } from "../timer.ts";

export type LoginResult =
  | { ok: true; account: Account }
  /** Wrong name or wrong password: the caller cannot tell which, on purpose. */
  | { ok: false; reason: "wrong" }
  /** Too many failures from this address: refused unchecked, for `retryMs` more. */
  | { ok: false; reason: "paused"; retryMs: number }
  /** Too many checks already waiting: refused unchecked; try later. */
  | { ok: false; reason: "busy" };

export interface AuthenticatorConfig {
  throttle?: Partial<ThrottleConfig>;
  /** Most password checks running at once (default 2). */
  maxConcurrentChecks?: number;
  /** Most checks waiting for one of those (default 16); past it a login is refused unchecked. */
  maxQueuedChecks?: number;
}

export class Authenticator {
  #accounts: Map<string, Account>;
  #dummy: ParsedHash;
  #throttle: LoginThrottle;
  #checks: Semaphore;

  private constructor(
    accounts: Map<string, Account>,
    dummy: ParsedHash,
    config: AuthenticatorConfig,
  ) {
    this.#accounts = accounts;
    this.#dummy = dummy;
    this.#throttle = new LoginThrottle(config.throttle);
    this.#checks = new Semaphore(config.maxConcurrentChecks ?? 2, config.maxQueuedChecks ?? 16);
  }

  /** An authenticator for `lines`; unknown names are checked against a dummy hash with the accounts' parameters. */
  static async create(
    lines: AccountLine[],
    config: AuthenticatorConfig = {},
  ): Promise<Authenticator> {
    const accounts = accountsByName(lines);
    return new Authenticator(accounts, await dummyFor(accounts), config);
  }

  /** How many accounts there are. */
  get size(): number {
    return this.#accounts.size;
  }

  /** The homes of the accounts now (the access model keeps them from anonymous readers). */
  homes(): string[] {
    return [...this.#accounts.values()].flatMap((account) => account.home ? [account.home] : []);
  }

  /** Replaces the accounts (a reread file); logins in progress finish against the old ones. */
  async replace(lines: AccountLine[]): Promise<void> {
    const accounts = accountsByName(lines);
    this.#dummy = await dummyFor(accounts);
    this.#accounts = accounts;
  }

  /**
   * Checks `name` and `password` for a client at `address`. A wrong name, a
   * malformed name and a wrong password all cost one scrypt check and give
   * the same result. `signal` abandons the wait (a connection closing).
   */
  async login(
    address: string,
    name: string,
    password: string,
    signal?: AbortSignal,
  ): Promise<LoginResult> {
    if (this.#checks.full) return { ok: false, reason: "busy" };
    const admission = this.#throttle.admit(address);
    if ("pausedMs" in admission) {
      return { ok: false, reason: "paused", retryMs: admission.pausedMs };
    }
    let ok = false;
    try {
      if (admission.waitMs > 0) await sleep(admission.waitMs, signal);
      const account = isValidName(name) ? this.#accounts.get(name) : undefined;
      const hash = account?.hash ?? this.#dummy;
      const matches = await this.#checks.run(
        () => verifyPassword(password.slice(0, MAX_PASSWORD_BYTES + 1), hash),
        signal,
      );
      if (matches === BUSY) return { ok: false, reason: "busy" };
      ok = matches && account !== undefined;
      return ok ? { ok: true, account: account! } : { ok: false, reason: "wrong" };
    } finally {
      this.#throttle.settle(address, ok);
    }
  }
}

async function dummyFor(accounts: Map<string, Account>): Promise<ParsedHash> {
  const first = accounts.values().next().value;
  return await dummyHash(first?.hash.params);
}

/** Waits `ms`; rejects with the signal's reason if it aborts first. */
function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      timer.cancel();
      reject(signal!.reason);
    };
    const timer = after(ms, () => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    });
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

const BUSY = Symbol("busy");

/**
 * At most `limit` tasks at once; at most `queue` more wait, in order (past
 * that, BUSY at once). A waiting task whose `signal` aborts leaves the queue
 * (its connection closed: its check never runs).
 */
class Semaphore {
  #free: number;
  #waiting: (() => void)[] = [];
  constructor(limit: number, readonly queue: number) {
    this.#free = Math.max(1, limit);
  }

  /** Whether a task now would be refused. */
  get full(): boolean {
    return this.#free === 0 && this.#waiting.length >= this.queue;
  }

  async run<T>(task: () => Promise<T>, signal?: AbortSignal): Promise<T | typeof BUSY> {
    if (this.#free > 0) {
      this.#free--;
    } else {
      if (this.#waiting.length >= this.queue) return BUSY;
      signal?.throwIfAborted();
      await new Promise<void>((resolve, reject) => {
        const go = () => {
          signal?.removeEventListener("abort", leave);
          resolve();
        };
        const leave = () => {
          const at = this.#waiting.indexOf(go);
          if (at >= 0) this.#waiting.splice(at, 1);
          reject(signal!.reason);
        };
        this.#waiting.push(go);
        signal?.addEventListener("abort", leave, { once: true });
      });
    }
    try {
      return await task();
    } finally {
      const next = this.#waiting.shift();
      if (next) next();
      else this.#free++;
    }
  }
}
