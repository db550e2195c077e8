/**
 * The login lab over TCP lines: the server asks for a username and a
 * password, checks the pair against an accounts file (lib/auth/), says
 * whether it matched, and closes; every connection on its own.
 *
 *   Username:            -> the client sends a line
 *   Password:            -> the client sends a line
 *   Username and password are correct.
 *   You are now logged in.
 * or
 *   Username or password is incorrect.
 *
 * The server log shows each name and, masked unless `showPasswords` (the
 * lab's point: a password sent in clear can be read by whoever runs the
 * server or watches the wire), each password.
 */

import type { Authenticator } from "../auth/authenticator.ts";
import { LineTooLongError, MAX_LINE_BYTES, readLines } from "../bytes/lines.ts";
import { writeAll } from "../bytes/source_sink.ts";
import { after } from "../timer.ts";

export interface LoginLabConfig {
  authenticator: Authenticator;
  /** Log passwords as typed instead of "****". */
  showPasswords?: boolean;
  /** A connection that has not finished the exchange after this long is closed (default 60 s). */
  timeoutMs?: number;
}

export const LOGIN_REPLIES = {
  ok: ["Username and password are correct.", "You are now logged in."],
  wrong: ["Username or password is incorrect."],
} as const;

const encoder = new TextEncoder();
/** Longest name or password shown in the log. */
const LOG_CHARS = 100;

/** Runs the exchange on `conn` (a client at `address`); the caller closes it. */
export async function serveLogin(
  conn: {
    read(p: Uint8Array): Promise<number | null>;
    write(p: Uint8Array): Promise<number>;
    close(): void;
  },
  address: string,
  config: LoginLabConfig,
  log: (line: string) => void,
): Promise<void> {
  const abort = new AbortController();
  const timer = after(config.timeoutMs ?? 60_000, () => {
    abort.abort(new Deno.errors.TimedOut("login timed out"));
    conn.close();
  });
  try {
    const lines = readLines(conn, { whole: true });
    const say = (...text: string[]) => writeAll(conn, encoder.encode(text.join("\n") + "\n"));
    await say("Username:");
    const name = await lines.next();
    if (name.done) return;
    log(`Client login with username ${quote(name.value)}`);
    await say("Password:");
    const password = await lines.next();
    if (password.done) return;
    log(`Client entered password ${config.showPasswords ? quote(password.value) : '"****"'}`);
    const result = await config.authenticator.login(
      address,
      name.value,
      password.value,
      abort.signal,
    );
    if (result.ok) {
      await say(...LOGIN_REPLIES.ok);
    } else if (result.reason === "paused") {
      log(`Too many failed logins from ${address}: refused unchecked`);
      await say(
        `Too many failed logins from your address: try again in ${
          Math.ceil(result.retryMs / 1000)
        } s.`,
      );
    } else {
      await say(...LOGIN_REPLIES.wrong);
    }
  } catch (error) {
    if (!(error instanceof LineTooLongError)) throw error;
    log(`Client sent a line over ${MAX_LINE_BYTES} bytes: closing`);
    await writeAll(conn, encoder.encode(LOGIN_REPLIES.wrong.join("\n") + "\n")).catch(() => {});
  } finally {
    timer.cancel();
  }
}

function quote(text: string): string {
  return JSON.stringify(text.length > LOG_CHARS ? `${text.slice(0, LOG_CHARS)}...` : text);
}
