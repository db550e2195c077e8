/**
 * Free buffers kept for the next transfer. A job of a thousand small files
 * would otherwise allocate, zero and collect its chunk and batch buffers per
 * file (a 64 KiB file cost the server about 330 KiB of fresh memory, and the
 * garbage collector was its largest single cost). Bounded: buffers over
 * 256 KiB are never kept, and at most 4 MiB wait in all.
 *
 * A buffer is given back only when nothing holds it any more: after its
 * last read or write has settled.
 */

const MAX_KEPT = 256 * 1024;
const MAX_FREE_BYTES = 4 * 1024 * 1024;

const free = new Map<number, Uint8Array[]>();
let freeBytes = 0;

/** A buffer of `size` bytes: a free one (holding old bytes) or a new one. */
export function takeBuffer(size: number): Uint8Array {
  const buffer = free.get(size)?.pop();
  if (!buffer) return new Uint8Array(size);
  freeBytes -= size;
  return buffer;
}

/** Keeps `buffer` for the next `takeBuffer` of its size, if there is room; the caller drops it. */
export function giveBuffer(buffer: Uint8Array | undefined): void {
  if (!buffer || buffer.length > MAX_KEPT || freeBytes + buffer.length > MAX_FREE_BYTES) return;
  // Only whole buffers: a view could share its memory with another that is still in use.
  if (buffer.byteOffset !== 0 || buffer.byteLength !== buffer.buffer.byteLength) return;
  let list = free.get(buffer.length);
  if (!list) free.set(buffer.length, list = []);
  if (list.includes(buffer)) return; // given twice: keep it once, or two takers would share it
  list.push(buffer);
  freeBytes += buffer.length;
}

/** Bytes waiting in free buffers now (for tests). */
export function freeBufferBytes(): number {
  return freeBytes;
}

/** Drops every free buffer (for tests). */
export function dropFreeBuffers(): void {
  free.clear();
  freeBytes = 0;
}
