/**
 * What `fsd proxy` costs a transfer (not part of CI), each side the real CLI
 * on 127.0.0.1, best of --runs:
 *   1. `fsd get` with the default client settings (65464-byte blocks, a
 *      window of 16), straight from `fsd serve` and through `fsd proxy`;
 *   2. the same with `--fsd1` (512-byte blocks, one at a time), on a smaller
 *      file: bound by round trips, which a relay lengthens;
 *   3. a bulk TCP stream, direct and through the proxy: the relay's own cost.
 *
 *   deno run -A bench/proxy_overhead.ts [--mb 1024] [--fsd1-mb 64] [--bulk-mb 1024] [--runs 3]
 */

import { parseArgs } from "node:util";
import { fsdGet, fsdServe, MAIN, service } from "./support.ts";

const { values } = parseArgs({
  options: {
    mb: { type: "string", default: "1024" },
    "fsd1-mb": { type: "string", default: "64" },
    "bulk-mb": { type: "string", default: "1024" },
    runs: { type: "string", default: "3" },
  },
});
const runs = Number(values.runs);
const root = await Deno.makeTempDir({ prefix: "fsd-proxy-bench-" });
const work = await Deno.makeTempDir({ prefix: "fsd-proxy-bench-out-" });
const chunk = new Uint8Array(1024 * 1024).map((_, i) => (i * 2654435761) >>> 24);

async function writeFile(mib: number): Promise<void> {
  const file = await Deno.open(`${root}/big.bin`, { write: true, create: true, truncate: true });
  for (let i = 0; i < mib; i++) await file.write(chunk);
  file.close();
}

/** `fsd proxy` in front of `targetPort`, once it listens. */
const fsdProxy = (targetPort: number) =>
  service(Deno.execPath(), [
    "run",
    "--quiet",
    "--allow-net=127.0.0.1",
    MAIN,
    "proxy",
    "0",
    "127.0.0.1",
    String(targetPort),
    "--host",
    "127.0.0.1",
  ], / port (\d+)/);

/** Milliseconds for one `fsd get` of big.bin. */
const get = async (port: number, extra: string[]) =>
  (await fsdGet(port, "big.bin", work, extra)).ms;

async function best(measure: () => Promise<number>): Promise<number> {
  let fastest = Infinity;
  for (let i = 0; i < runs; i++) fastest = Math.min(fastest, await measure());
  return fastest;
}

function report(title: string, mib: number, direct: number, relayed: number): void {
  const rate = (ms: number) => `${(mib / (ms / 1000)).toFixed(1)} MiB/s`;
  console.log(`${title}, best of ${runs}:`);
  console.log(`  direct          ${(direct / 1000).toFixed(2)} s  ${rate(direct)}`);
  console.log(`  through proxy   ${(relayed / 1000).toFixed(2)} s  ${rate(relayed)}`);
  console.log(`  throughput lost to the proxy: ${((1 - direct / relayed) * 100).toFixed(1)}%`);
}

const server = await fsdServe(root);
const proxy = await fsdProxy(server.port);

const mib = Number(values.mb);
if (mib > 0) {
  await writeFile(mib);
  const direct = await best(() => get(server.port, []));
  const relayed = await best(() => get(proxy.port, []));
  report(
    `fsd get of ${mib} MiB, default client settings (65464-byte blocks, window 16)`,
    mib,
    direct,
    relayed,
  );
}

const fsd1Mib = Number(values["fsd1-mb"]);
if (fsd1Mib > 0) {
  await writeFile(fsd1Mib);
  const direct = await best(() => get(server.port, ["--fsd1"]));
  const relayed = await best(() => get(proxy.port, ["--fsd1"]));
  report(
    `fsd get --fsd1 of ${fsd1Mib} MiB (512-byte blocks, one at a time)`,
    fsd1Mib,
    direct,
    relayed,
  );
}

const bulkMib = Number(values["bulk-mb"]);
if (bulkMib > 0) {
  // A sink that discards; the sender writes 1 MiB chunks and waits for the sink to see the end.
  const sink = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let received: Promise<void> = Promise.resolve();
  const sinking = (async () => {
    for (;;) {
      const conn = await sink.accept().catch(() => null);
      if (!conn) return;
      const buffer = new Uint8Array(256 * 1024);
      received = (async () => {
        while ((await conn.read(buffer)) !== null) { /* discard */ }
        conn.close();
      })();
    }
  })();
  const stream = async (port: number) => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    const started = performance.now();
    for (let sent = 0; sent < bulkMib * 1024 * 1024;) sent += await conn.write(chunk);
    await conn.closeWrite();
    await received;
    conn.close();
    return performance.now() - started;
  };
  const streamProxy = await fsdProxy(sink.addr.port);
  const direct = await best(() => stream(sink.addr.port));
  const relayed = await best(() => stream(streamProxy.port));
  report(
    `bulk TCP stream of ${bulkMib} MiB (1 MiB writes; sender and sink in this process)`,
    bulkMib,
    direct,
    relayed,
  );
  await streamProxy.stop();
  sink.close();
  await sinking;
}

await proxy.stop();
await server.stop();
await Deno.remove(root, { recursive: true });
await Deno.remove(work, { recursive: true });
