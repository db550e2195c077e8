/**
 * The baseline for the benchmark: a minimal Deno TCP file copy. One side
 * reads a file and writes it to the socket in 64 KiB writes; the other
 * writes what arrives to a file. No protocol at all.
 *
 *   deno run --allow-net=127.0.0.1 --allow-read --allow-write bench/raw_copy.ts receive PORT FILE
 *   deno run --allow-net=127.0.0.1 --allow-read bench/raw_copy.ts send PORT FILE
 *
 * `receive` listens (printing "listening on PORT" when PORT is 0), takes one
 * connection, writes it to FILE and exits.
 */

const [mode, portText, path] = Deno.args;
const CHUNK = 64 * 1024;

if (mode === "receive") {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: Number(portText) });
  console.log(`listening on ${listener.addr.port}`);
  const conn = await listener.accept();
  listener.close();
  const file = await Deno.open(path, { write: true, create: true, truncate: true });
  const buffer = new Uint8Array(CHUNK);
  for (;;) {
    const n = await conn.read(buffer);
    if (n === null) break;
    for (let at = 0; at < n;) at += await file.write(buffer.subarray(at, n));
  }
  file.close();
  conn.close();
} else if (mode === "send") {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: Number(portText) });
  const file = await Deno.open(path, { read: true });
  const buffer = new Uint8Array(CHUNK);
  for (;;) {
    const n = await file.read(buffer);
    if (n === null) break;
    for (let at = 0; at < n;) at += await conn.write(buffer.subarray(at, n));
  }
  file.close();
  conn.close();
} else {
  console.error("usage: raw_copy.ts receive|send PORT FILE");
  Deno.exit(2);
}
