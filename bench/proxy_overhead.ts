/**
 * What `fsd proxy` costs a transfer (not part of CI): `fsd get` of one file
 * straight from `fsd serve`, then through `fsd proxy` with no faults, each
 * run as the real CLI on 127.0.0.1, best of --runs; then a bulk TCP stream
 * of the same size, direct and through the proxy, for the relay's own cost.
 *
 *   deno run -A bench/proxy_overhead.ts [--mb 1024] [--bulk-mb 1024] [--runs 3]
 */

import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    mb: { type: "string", default: "1024" },
    "bulk-mb": { type: "string", default: "1024" },
    runs: { type: "string", default: "3" },
  },
});
const mib = Number(values.mb);
const runs = Number(values.runs);
const main = new URL("../main.ts", import.meta.url).pathname;
const root = await Deno.makeTempDir({ prefix: "fsd-proxy-bench-" });
const work = await Deno.makeTempDir({ prefix: "fsd-proxy-bench-out-" });
const chunk = new Uint8Array(1024 * 1024).map((_, i) => (i * 2654435761) >>> 24);
const file = await Deno.open(`${root}/big.bin`, { write: true, create: true });
for (let i = 0; i < mib; i++) await file.write(chunk);
file.close();

/** Starts a long-running fsd command and returns its port once it prints it. */
async function start(args: string[]): Promise<{ port: number; child: Deno.ChildProcess }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--quiet",
      "--allow-net=127.0.0.1",
      `--allow-read=${root}`,
      `--allow-write=${root}`,
      main,
      ...args,
    ],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`${args[0]} exited early`);
    seen += value;
    const match = / port (\d+)/.exec(seen);
    if (match) {
      (async () => {
        while (!(await reader.read()).done) { /* drain the log */ }
      })();
      return { port: Number(match[1]), child };
    }
  }
}

async function get(port: number): Promise<number> {
  const started = performance.now();
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--quiet",
      `--allow-net=127.0.0.1:${port}`,
      `--allow-read=${work}`,
      `--allow-write=${work}`,
      main,
      "get",
      "127.0.0.1",
      String(port),
      "big.bin",
      `${work}/copy.bin`,
      "--force",
    ],
    stdout: "null",
    stderr: "inherit",
  }).output();
  if (!out.success) throw new Error("fsd get failed");
  return performance.now() - started;
}

const server = await start(["serve", root, "0", "--host", "127.0.0.1"]);
const proxy = await start(["proxy", "0", "127.0.0.1", String(server.port), "--host", "127.0.0.1"]);
const best = async (port: number) => {
  let fastest = Infinity;
  for (let i = 0; i < runs; i++) fastest = Math.min(fastest, await get(port));
  return fastest;
};
const direct = await best(server.port);
const relayed = await best(proxy.port);
const rate = (ms: number) => (mib / (ms / 1000)).toFixed(1);
console.log(
  `fsd get of ${mib} MiB, best of ${runs}, fsd/1 (512-byte blocks, lock-step), 127.0.0.1:`,
);
console.log(`  direct          ${(direct / 1000).toFixed(2)} s  ${rate(direct)} MiB/s`);
console.log(`  through proxy   ${(relayed / 1000).toFixed(2)} s  ${rate(relayed)} MiB/s`);
console.log(`  throughput lost to the proxy: ${((1 - direct / relayed) * 100).toFixed(1)}%`);

// The proxy's own data path, with no round trips in the way: a bulk TCP stream.
async function bulk(port: number, bytes: number): Promise<number> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const started = performance.now();
  for (let sent = 0; sent < bytes;) {
    const n = await conn.write(chunk);
    sent += n;
  }
  await conn.closeWrite();
  await received; // the sink saw the end of the stream
  conn.close();
  return performance.now() - started;
}
let received: Promise<void> = Promise.resolve();
const sink = Deno.listen({ hostname: "127.0.0.1", port: 0 });
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
const streamProxy = await start([
  "proxy",
  "0",
  "127.0.0.1",
  String(sink.addr.port),
  "--host",
  "127.0.0.1",
]);
const bulkMib = Number(values["bulk-mb"]);
const bulkBytes = bulkMib * 1024 * 1024;
const bestBulk = async (port: number) => {
  let fastest = Infinity;
  for (let i = 0; i < runs; i++) fastest = Math.min(fastest, await bulk(port, bulkBytes));
  return fastest;
};
const bulkDirect = await bestBulk(sink.addr.port);
const bulkRelayed = await bestBulk(streamProxy.port);
const bulkRate = (ms: number) => (bulkMib / (ms / 1000)).toFixed(1);
console.log(`bulk TCP stream of ${bulkMib} MiB (1 MiB writes), best of ${runs}:`);
console.log(`  direct          ${(bulkDirect / 1000).toFixed(2)} s  ${bulkRate(bulkDirect)} MiB/s`);
console.log(
  `  through proxy   ${(bulkRelayed / 1000).toFixed(2)} s  ${bulkRate(bulkRelayed)} MiB/s`,
);
console.log(
  `  throughput lost to the proxy: ${((1 - bulkDirect / bulkRelayed) * 100).toFixed(1)}%`,
);
sink.close();
await sinking;

for (const { child } of [proxy, server, streamProxy]) {
  child.kill("SIGTERM");
  await child.status;
}
await Deno.remove(root, { recursive: true });
await Deno.remove(work, { recursive: true });
