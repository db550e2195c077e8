/**
 * The client's first moments on a connection: the server's first bytes
 * must arrive within a short greeting timeout and look like fsd (a DAT or
 * an ERR), so that a silent listener, an HTTP server or an SSH daemon is
 * named for what it is instead of surfacing as a timeout or a bad opcode.
 */

import { Opcode } from "./codec.ts";
import { closeQuietly } from "../bytes/source_sink.ts";
import type { StreamConn } from "../net/stream_conn.ts";
import { after } from "../timer.ts";

/** How long a client waits for the greeting by default (separate from the transfer timeout). */
export const GREETING_TIMEOUT_MS = 5000;

/** What the peer sent, as one short printable line. */
export function shownText(bytes: Uint8Array): string {
  let text = "";
  for (const b of bytes) {
    if (b === 0x0a || b === 0x0d || text.length >= 60) break;
    text += b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : ".";
  }
  return text;
}

/**
 * The server's first bytes, read by hand within `timeoutMs`; throws
 * NotFsdError ("connected, but no fsd greeting within N s") or, for bytes that
 * cannot start a greeting, "this is not an fsd server (it sent: ...)".
 */
export async function readFirstBytes(conn: StreamConn, timeoutMs: number): Promise<Uint8Array> {
  const buffer = new Uint8Array(4096);
  let timedOut = false;
  const timer = timeoutMs > 0
    ? after(timeoutMs, () => {
      timedOut = true;
      closeQuietly(conn);
    })
    : undefined;
  let n: number | null;
  try {
    n = await conn.read(buffer);
  } catch (error) {
    if (timedOut) {
      throw new NotFsdError(`connected, but no fsd greeting within ${timeoutMs / 1000} s`);
    }
    throw error;
  } finally {
    timer?.cancel();
  }
  if (n === null) throw new Deno.errors.UnexpectedEof("connected, but the server closed at once");
  const first = buffer.subarray(0, n);
  const looksLikeFsd = first[0] === 0 &&
    (n < 2 || first[1] === Opcode.DAT || first[1] === Opcode.ERR);
  if (!looksLikeFsd) {
    throw new NotFsdError(`this is not an fsd server (it sent: ${shownText(first)})`);
  }
  return first;
}

/** The peer is silent or some other service. */
export class NotFsdError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "NotFsdError";
  }
}
