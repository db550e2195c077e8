/** Reading newline-separated text from a connection, with a bound on memory. */

/** Longest line kept whole; a longer one arrives in pieces of this size. */
export const MAX_LINE_BYTES = 64 * 1024;

const decoder = new TextDecoder();

/** A line longer than MAX_LINE_BYTES, where lines must arrive whole. */
export class LineTooLongError extends Error {}

/**
 * Lines from `conn` (without "\n" or "\r\n"), until it ends; a last line
 * without "\n" counts. A line over MAX_LINE_BYTES arrives in pieces, or,
 * with `whole`, throws LineTooLongError (a piece must never pass for the
 * next line: a password).
 */
export async function* readLines(
  conn: { read(p: Uint8Array): Promise<number | null> },
  { whole = false }: { whole?: boolean } = {},
): AsyncGenerator<string> {
  const buffer = new Uint8Array(MAX_LINE_BYTES);
  let used = 0;
  for (;;) {
    if (used === buffer.length) {
      if (whole) throw new LineTooLongError(`line longer than ${MAX_LINE_BYTES} bytes`);
      yield decoder.decode(buffer.subarray(0, used));
      used = 0;
    }
    const n = await conn.read(buffer.subarray(used)).catch(() => null);
    if (n === null) break;
    let start = 0;
    for (let i = used; i < used + n; i++) {
      if (buffer[i] !== 0x0a) continue;
      const end = i > start && buffer[i - 1] === 0x0d ? i - 1 : i;
      yield decoder.decode(buffer.subarray(start, end));
      start = i + 1;
    }
    used += n;
    buffer.copyWithin(0, start, used);
    used -= start;
  }
  if (used > 0) yield decoder.decode(buffer.subarray(0, used));
}
