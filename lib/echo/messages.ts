/**
 * Messages from a TCP peer, as the text servers answer them: a line, or,
 * when no newline comes, what arrived before the peer paused (a short quiet
 * time) or half-closed. The lab's own C client sends "4.40" without a
 * newline and waits for the answer; it gets one after the quiet time.
 */

import { orAfter } from "../timer.ts";

/** Longest message kept whole; a longer one arrives in pieces of this size. */
export const MAX_MESSAGE_BYTES = 64 * 1024;
/** How long a line without its newline may wait for more before it counts as a message. */
export const QUIET_MS = 200;

const decoder = new TextDecoder();

/** Messages from `conn` (without "\n" or "\r\n") until it ends. */
export async function* readMessages(
  conn: { read(p: Uint8Array): Promise<number | null> },
  quietMs = QUIET_MS,
): AsyncGenerator<string> {
  const pending = new Uint8Array(MAX_MESSAGE_BYTES);
  const chunk = new Uint8Array(16 * 1024);
  let used = 0;
  let reading: Promise<number | null> | undefined;
  for (;;) {
    reading ??= conn.read(chunk).catch(() => null);
    const n = used > 0 ? await orAfter(reading, quietMs, "quiet" as const) : await reading;
    if (n === "quiet") {
      yield decoder.decode(pending.subarray(0, used));
      used = 0;
      continue;
    }
    reading = undefined;
    if (n === null) break;
    for (let i = 0; i < n; i++) {
      const byte = chunk[i];
      if (byte === 0x0a) {
        const end = used > 0 && pending[used - 1] === 0x0d ? used - 1 : used;
        yield decoder.decode(pending.subarray(0, end));
        used = 0;
        continue;
      }
      if (used === pending.length) {
        yield decoder.decode(pending);
        used = 0;
      }
      pending[used++] = byte;
    }
  }
  if (used > 0) yield decoder.decode(pending.subarray(0, used));
}
