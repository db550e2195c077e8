/**
 * Where bytes come from and go to: files, stdin and stdout, memory. A
 * regular file is marked as such, so that readers may read it ahead and
 * writers write behind; nothing else is, since a read on a pipe may wait on
 * a person forever.
 */

/** Where sent bytes come from: a file, stdin, or bytes in memory. */
export interface ByteSource {
  read(buffer: Uint8Array): Promise<number | null>;
  /** Reads are cheap copies from memory: no read buffer is needed in front of it. */
  readonly inMemory?: boolean;
  /** A regular file: a read finishes on its own, so the next one may start before it is needed. */
  readonly regularFile?: boolean;
  /**
   * Offered only where a read cannot stall anyone else (a client; a server
   * reading a file on a disk, or with every mount local:
   * lib/store/file_calls.ts): reads straight
   * into the caller's buffer, with no hand-off to Deno's I/O threads. A TFTP
   * sender reads each block into its datagram so (docs/PERFORMANCE.md).
   */
  readSync?(buffer: Uint8Array): number | null;
}

/** Where received bytes go: a file, stdout, or memory. */
export interface ByteSink {
  write(bytes: Uint8Array): Promise<number>;
  /** A regular file: a write finishes on its own, so it may go on while the next chunk arrives. */
  readonly regularFile?: boolean;
  /**
   * Offered only by a client's sink (a process serving nobody else, where a
   * blocked write stalls no one): received blocks are then written straight
   * from the receive buffer, with no copy and no async op per block.
   */
  writeSync?(bytes: Uint8Array): number;
}

/** `call` made now; its result or error as a settled promise. */
export function now<T>(call: () => T): Promise<T> {
  try {
    return Promise.resolve(call());
  } catch (error) {
    return Promise.reject(error);
  }
}

/**
 * How much of a file `fileSource` reads synchronously: reads stay synchronous
 * until this much has been read, so a file of up to 256 KiB is read whole, its
 * end included (five 64 KiB reads at most, about 10 µs each from the page cache).
 */
export const SYNC_READ_BYTES = 256 * 1024;

/**
 * `file` as a source, read ahead of the network. While at most `syncBytes`
 * have been read, a read is synchronous: a small file's reads (its bytes and
 * the read that finds its end) then cost no hand-off to Deno's I/O threads
 * (about 30 µs each against 10 for the read itself), while a large file is
 * still read ahead asynchronously past that point. Only for callers that
 * know a read cannot stall (a client, or a server on local file systems),
 * which may also offer `readSync` (`offerSync`).
 */
export function fileSource(file: Deno.FsFile, syncBytes = 0, offerSync = false): ByteSource {
  let read = 0;
  return {
    ...(offerSync ? { readSync: (buffer: Uint8Array) => file.readSync(buffer) } : {}),
    read(buffer) {
      if (syncBytes === 0 || read > syncBytes) return file.read(buffer);
      return now(() => {
        const n = file.readSync(buffer);
        read = n === null ? Infinity : read + n;
        return n;
      });
    },
    regularFile: true,
  };
}

/**
 * `file` as a sink, written behind the network; `mapError` turns a write's
 * error into the one to report. The first `syncBytes` are written
 * synchronously: a small file then costs no hand-off to Deno's I/O threads
 * (a page-cache write of 64 KiB takes microseconds, the hand-off about as
 * long again on an idle machine and far longer on a busy one), while a large
 * file is still written behind the network past that point.
 */
export function fileSink(
  file: Deno.FsFile,
  mapError: (error: unknown) => unknown = (error) => error,
  syncBytes = 0,
): ByteSink {
  let synced = 0;
  return {
    write(bytes) {
      const written = synced >= syncBytes ? file.write(bytes) : now(() => {
        const n = file.writeSync(bytes);
        synced += n;
        return n;
      });
      return written.catch((e) => Promise.reject(mapError(e)));
    },
    regularFile: true,
  };
}

/** Writes all of `bytes` with `writeSync`, however short its writes are. */
export function writeAllSync(writeSync: (bytes: Uint8Array) => number, bytes: Uint8Array): void {
  let written = 0;
  while (written < bytes.length) written += writeSync(bytes.subarray(written));
}

/** Writes all of `bytes` to `sink`, however short its writes are. */
export async function writeAll(sink: ByteSink, bytes: Uint8Array): Promise<void> {
  let written = 0;
  while (written < bytes.length) written += await sink.write(bytes.subarray(written));
}

/** A source that yields `bytes`. */
export function bytesSource(bytes: Uint8Array): ByteSource {
  let offset = 0;
  return {
    inMemory: true,
    read(buffer) {
      if (offset >= bytes.length) return Promise.resolve(null);
      const n = Math.min(buffer.length, bytes.length - offset);
      buffer.set(bytes.subarray(offset, offset + n));
      offset += n;
      return Promise.resolve(n);
    },
  };
}

/** A sink that keeps everything written to it in memory. */
export class MemorySink implements ByteSink {
  #parts: Uint8Array[] = [];
  #length = 0;

  write(bytes: Uint8Array): Promise<number> {
    this.#parts.push(bytes.slice());
    this.#length += bytes.length;
    return Promise.resolve(bytes.length);
  }

  bytes(): Uint8Array {
    const out = new Uint8Array(this.#length);
    let offset = 0;
    for (const part of this.#parts) {
      out.set(part, offset);
      offset += part.length;
    }
    return out;
  }
}

/** Whether `a` and `b` hold the same bytes (digests, requests). */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

/** All of `parts`, one after another, in one new array. */
export function concatAll(parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, part) => n + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** `a` followed by `b`, in a new array. */
export function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** The message of an error, or the text of anything else thrown. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Closes `resource`, which may be closed already (by the runtime, a timeout or the peer). */
export function closeQuietly(resource: { close(): void } | undefined): void {
  try {
    resource?.close();
  } catch {
    // already closed
  }
}
