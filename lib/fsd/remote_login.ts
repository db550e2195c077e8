/**
 * Logins for `--workers` with `--users`: the accounts, the per-address
 * throttle and the cap on password checks running at once stay in the
 * parent (one Authenticator for the whole server, reread there on SIGHUP),
 * so that N workers neither multiply an attacker's attempts nor the
 * scrypt checks at once. A worker asks the parent over its message channel,
 * as it asks for connection limits (lib/net/shared_limits.ts).
 */

import type { Authenticator, LoginResult } from "../auth/authenticator.ts";

/** What a session needs of the accounts: a login check (an Authenticator, or a RemoteLogins in a worker). */
export type LoginChecker = Pick<Authenticator, "login" | "homes">;

/** Worker to parent. */
export interface LoginRequest {
  type: "login";
  seq: number;
  address: string;
  name: string;
  password: string;
}

/** Parent to worker. */
export interface LoginReply {
  type: "logged-in";
  seq: number;
  result: LoginResult;
}

/** Most logins a worker waits on at once; more are answered as "paused" without asking. */
const MAX_PENDING = 1024;

/** The worker's side: each login is a question to the parent. */
export class RemoteLogins implements LoginChecker {
  #send: (request: LoginRequest) => void;
  #pending = new Map<number, (result: LoginResult) => void>();
  #seq = 0;

  #homes: string[];

  /** `homes`: the accounts' homes when the worker started (the access model hides them). */
  constructor(send: (request: LoginRequest) => void, homes: string[] = []) {
    this.#send = send;
    this.#homes = homes;
  }

  homes(): string[] {
    return this.#homes;
  }

  login(address: string, name: string, password: string, signal?: AbortSignal) {
    if (this.#pending.size >= MAX_PENDING) {
      return Promise.resolve<LoginResult>({ ok: false, reason: "paused", retryMs: 1000 });
    }
    const seq = ++this.#seq;
    return new Promise<LoginResult>((resolve, reject) => {
      const onAbort = () => reject(signal!.reason);
      signal?.addEventListener("abort", onAbort, { once: true });
      // the answer is awaited even after an abort: the parent's check settles the throttle
      this.#pending.set(seq, (result) => {
        signal?.removeEventListener("abort", onAbort);
        resolve(result);
      });
      this.#send({ type: "login", seq, address, name, password });
    });
  }

  /** An answer from the parent. */
  receive(reply: LoginReply): void {
    const resolve = this.#pending.get(reply.seq);
    this.#pending.delete(reply.seq);
    resolve?.(reply.result);
  }
}

/** The parent's side: checks a worker's login and returns the reply to send it. */
export async function answerLogin(
  authenticator: LoginChecker,
  request: LoginRequest,
): Promise<LoginReply> {
  const result = await authenticator.login(request.address, request.name, request.password);
  return { type: "logged-in", seq: request.seq, result };
}
