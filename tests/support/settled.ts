/** Whether a source's reads were synchronous (tests of SYNC_READ_BYTES). */

import type { ByteSource } from "../../lib/bytes/source_sink.ts";

const PENDING = Symbol("pending");

/** For each read of `source` (`block` bytes at a time) to its end: whether it had settled before anything else could run. */
export async function settledAtOnce(source: ByteSource, block = 64 * 1024): Promise<boolean[]> {
  const buffer = new Uint8Array(block);
  const reads: boolean[] = [];
  for (let n: number | null = 0; n !== null;) {
    const read = source.read(buffer);
    // An already settled promise wins a race it enters first; an op in flight does not.
    reads.push(await Promise.race([read, Promise.resolve(PENDING)]) !== PENDING);
    n = await read;
  }
  return reads;
}
