/**
 * A regular file read by positional reads (the C library's pread, through
 * Deno's FFI) of a descriptor this process holds open: a thread other than
 * the one that opened it through the store's rules reads exactly that file
 * (`ReadOptions.descriptor`), never a name that may lead elsewhere by now.
 */

import type { ByteSource } from "../bytes/source_sink.ts";
import { EINTR, errno, type Libc } from "../net/libc.ts";

export function descriptorSource(c: Libc, fd: number): ByteSource {
  let offset = 0;
  const readSync = (buffer: Uint8Array): number | null => {
    for (;;) {
      const n = Number(c.pread(fd, buffer, BigInt(buffer.length), BigInt(offset)));
      if (n > 0) {
        offset += n;
        return n;
      }
      if (n === 0) return null;
      const code = errno(c);
      if (code !== EINTR) throw new Error(`cannot read the file: errno ${code}`);
    }
  };
  return {
    regularFile: true,
    readSync,
    read: (buffer) => Promise.resolve(readSync(buffer)),
  };
}
