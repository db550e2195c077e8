/**
 * Leak check for the server (not part of CI): rounds of fuzzed streams and
 * ordinary get/put/ls against an in-process server, printing the live JS
 * heap after forced garbage collection. RSS moves with the allocator; the
 * heap after GC must stay flat from round to round.
 *
 *   deno run --v8-flags=--expose-gc --allow-net=127.0.0.1 --allow-read --allow-write bench/heap_check.ts [--rounds 8]
 */

import { parseArgs } from "node:util";
import { FsdClient } from "../lib/fsd/client.ts";
import { FileServer } from "../lib/fsd/server.ts";
import { bytesSource } from "../lib/bytes/source_sink.ts";
import { fuzz, seedDirectory } from "../tests/fsd/fuzz.ts";

const { values } = parseArgs({ options: { rounds: { type: "string", default: "8" } } });
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error("run with --v8-flags=--expose-gc");

const root = await Deno.makeTempDir({ prefix: "fsd-heap-" });
await seedDirectory(root);
await Deno.mkdir(`${root}/uploads`);
let events = 0;
const server = await FileServer.start({
  root,
  port: 0,
  hostname: "127.0.0.1",
  maxPerIp: 0,
  log: () => events++,
});
const port = server.addr.port;
const discard = { write: (b: Uint8Array) => Promise.resolve(b.length) };
let uploads = 0;
for (let round = 0; round < Number(values.rounds); round++) {
  await fuzz(port, { seed: 5, streams: 5000, concurrency: 16, first: round * 5000 });
  for (let i = 0; i < 300; i++) {
    const client = await FsdClient.connect("127.0.0.1", port);
    await client.download("seed.txt", discard);
    await client.upload(`uploads/u${uploads++}`, bytesSource(new Uint8Array(3000)));
    await client.list("uploads");
    client.close();
  }
  gc();
  gc();
  const m = Deno.memoryUsage();
  console.log(
    `round ${round}: heap after GC ${(m.heapUsed / 1e6).toFixed(1)} MB, RSS ${
      (m.rss / 1e6).toFixed(1)
    } MB, ` +
      `${events} events logged`,
  );
}
await server.close();
await Deno.remove(root, { recursive: true });
