/**
 * The baseline for the benchmark: a minimal Deno TCP file copy. One side
 * reads a file and writes it to the socket in 64 KiB writes; the other
 * writes what arrives to a file. No protocol at all.
 *
 *   deno run --allow-net=127.0.0.1 --allow-read --allow-write bench/raw_copy.ts receive PORT FILE [KIB]
 *   deno run --allow-net=127.0.0.1 --allow-read bench/raw_copy.ts send PORT FILE [KIB]
 *   deno run --allow-net=127.0.0.1 --allow-write bench/raw_copy.ts fetch PORT FILE [KIB]
 *
 * `receive` listens (printing "listening on PORT" when PORT is 0), takes one
 * connection, writes it to FILE and exits; `fetch` connects to PORT instead
 * (a server that sends a file, as socat does in compare_bench.ts: the
 * socket-to-file half of `fsd get` with nothing else). KIB sets the size of each read and
 * write (default 64). With FILE `memory:BYTES` (send) and `memory` (receive)
 * no file is involved: the ceiling of Deno's sockets alone.
 */

const [mode, portText, path, kib] = Deno.args;
const CHUNK = Number(kib ?? 64) * 1024;

/** `path` to read from: a file, or `memory:BYTES` of zeros. */
async function openSource(
  path: string,
): Promise<{ read(b: Uint8Array): Promise<number | null>; close(): void }> {
  if (!path.startsWith("memory:")) return await Deno.open(path, { read: true });
  let left = Number(path.slice("memory:".length));
  return {
    read: (buffer) => {
      if (left === 0) return Promise.resolve(null);
      const n = Math.min(left, buffer.length);
      left -= n;
      return Promise.resolve(n);
    },
    close() {},
  };
}

/** `path` to write to: a file, or `memory` (bytes are dropped). */
async function openSink(
  path: string,
): Promise<{ write(b: Uint8Array): Promise<number>; close(): void }> {
  if (path !== "memory") {
    return await Deno.open(path, { write: true, create: true, truncate: true });
  }
  return { write: (bytes) => Promise.resolve(bytes.length), close() {} };
}

/** Copies `from` to `to` in CHUNK-sized reads, each written out whole. */
async function copy(
  from: { read(b: Uint8Array): Promise<number | null> },
  to: { write(b: Uint8Array): Promise<number> },
): Promise<void> {
  const buffer = new Uint8Array(CHUNK);
  for (;;) {
    const n = await from.read(buffer);
    if (n === null) return;
    for (let at = 0; at < n;) at += await to.write(buffer.subarray(at, n));
  }
}

if (mode === "receive") {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: Number(portText) });
  console.log(`listening on ${listener.addr.port}`);
  const conn = await listener.accept();
  listener.close();
  const file = await openSink(path);
  await copy(conn, file);
  file.close();
  conn.close();
} else if (mode === "fetch") {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: Number(portText) });
  const file = await openSink(path);
  await copy(conn, file);
  file.close();
  conn.close();
} else if (mode === "send") {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: Number(portText) });
  const file = await openSource(path);
  await copy(file, conn);
  file.close();
  conn.close();
} else {
  console.error("usage: raw_copy.ts receive|fetch|send PORT FILE [KIB]");
  Deno.exit(2);
}
