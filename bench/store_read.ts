/**
 * The file store's own cost, without the network: FileStore.openRead of a
 * large file read to its end in 1 MiB chunks, and the time of one open of a
 * small file (3 rounds). Run it with --allow-all for race-free opens and
 * with --allow-read=DIR --allow-write=DIR for checked-then-used ones:
 *
 *   deno run --allow-read=DIR --allow-write=DIR bench/store_read.ts DIR big.bin
 *   deno run --allow-all bench/store_read.ts DIR big.bin
 */

import { FileStore } from "../lib/store/file_store.ts";

const [root, name] = Deno.args;
if (!root || !name) throw new Error("usage: store_read.ts DIR FILE (FILE under DIR)");
const store = await FileStore.open({ root });
const buffer = new Uint8Array(1 << 20);
for (let round = 1; round <= 3; round++) {
  let started = performance.now();
  const opened = await store.openRead(name);
  let total = 0;
  for (let n; (n = await opened.source.read(buffer)) !== null;) total += n;
  opened.close();
  const readMs = performance.now() - started;
  started = performance.now();
  for (let i = 0; i < 2000; i++) (await store.openRead(name)).close();
  const openUs = (performance.now() - started) * 1000 / 2000;
  const rate = total / 2 ** 20 / (readMs / 1000);
  console.log(
    `round ${round}: ${total} bytes in ${readMs.toFixed(0)} ms (${rate.toFixed(0)} MiB/s); ` +
      `one open ${openUs.toFixed(0)} µs (race-free opens: ${store.raceFree})`,
  );
}
