/**
 * Soak test for `fsd serve` (not part of CI): mixed get/put/ls load with
 * hostile clients beside it, for a given number of minutes, against the
 * real CLI server on 127.0.0.1. Prints, every few seconds, transfers done,
 * errors, and the server's open file descriptors and RSS, then a summary:
 * both must stay flat.
 *
 *   deno task soak [--minutes 5] [--clients 16] [--hostile 4] [--json FILE]
 *
 * Linux only (reads /proc/PID for the server's descriptors and memory).
 */

import { parseArgs } from "node:util";
import { FsdClient } from "../lib/fsd/client.ts";
import { bytesSource } from "../lib/bytes/source_sink.ts";
import { fuzz, seedDirectory } from "../tests/fsd/fuzz.ts";
import { fsdServe } from "./support.ts";

const { values } = parseArgs({
  options: {
    minutes: { type: "string", default: "5" },
    clients: { type: "string", default: "16" },
    hostile: { type: "string", default: "4" },
    json: { type: "string" },
    interval: { type: "string", default: "5" },
  },
});
const minutes = Number(values.minutes);
const legitClients = Number(values.clients);
const hostileClients = Number(values.hostile);
const intervalMs = Number(values.interval) * 1000;

const root = await Deno.makeTempDir({ prefix: "fsd-soak-" });
await seedDirectory(root);
const sizes = [0, 1, 511, 512, 4096, 65_536, 1_000_000];
for (const size of sizes) {
  await Deno.writeFile(`${root}/file-${size}`, new Uint8Array(size).fill(size & 0xff));
}
await Deno.mkdir(`${root}/uploads`);

// The server's log is counted, not kept: it must never block on a full pipe.
let logLines = 0;
const server = await fsdServe(root, ["--idle-timeout", "5", "--max-per-ip", "0"], (text) => {
  logLines += text.split("\n").length - 1;
});
const port = server.port;
const pid = server.child.pid;

const stats = {
  gets: 0,
  puts: 0,
  lists: 0,
  hostileStreams: 0,
  bytes: 0,
  errors: new Map<string, number>(),
};
const recordError = (error: unknown) => {
  const key = error instanceof Error ? error.message.replace(/\d+/g, "N") : String(error);
  stats.errors.set(key, (stats.errors.get(key) ?? 0) + 1);
};
const deadline = performance.now() + minutes * 60_000;
const discard = { write: (b: Uint8Array) => Promise.resolve(b.length) };

async function legit(worker: number): Promise<void> {
  let i = 0;
  while (performance.now() < deadline) {
    try {
      const client = await FsdClient.connect("127.0.0.1", port, { timeoutMs: 30_000 });
      try {
        for (let n = 0; n < 10 && performance.now() < deadline; n++, i++) {
          const choice = i % 10;
          if (choice < 6) {
            stats.bytes += await client.download(`file-${sizes[i % sizes.length]}`, discard);
            stats.gets++;
          } else if (choice < 9) {
            const data = new Uint8Array((i * 7919) % 100_000);
            stats.bytes += await client.upload(`uploads/w${worker}-${i}`, bytesSource(data));
            stats.puts++;
          } else {
            await client.list("uploads");
            stats.lists++;
          }
        }
      } finally {
        client.close();
      }
    } catch (error) {
      recordError(error);
    }
  }
}

async function hostile(worker: number): Promise<void> {
  let batch = 0;
  const silent: Deno.Conn[] = [];
  while (performance.now() < deadline) {
    // fuzzed streams
    const report = await fuzz(port, {
      seed: 7 + worker,
      streams: 50,
      concurrency: 2,
      first: batch * 50,
    });
    stats.hostileStreams += report.streams;
    for (const failure of report.failures) recordError(new Error(`fuzz: ${failure.slice(0, 80)}`));
    batch++;
    // a silent connection (left for the idle timeout) and an abandoned upload
    try {
      silent.push(await Deno.connect({ hostname: "127.0.0.1", port }));
      if (silent.length > 20) silent.shift()!.close();
      const quitter = await FsdClient.connect("127.0.0.1", port);
      let sent = 0;
      const endless = {
        read(buffer: Uint8Array) {
          if (sent > 20_000) {
            quitter.close(); // hang up mid-upload
            return Promise.reject(new Error("abandoned"));
          }
          sent += buffer.length;
          return Promise.resolve(buffer.length);
        },
      };
      await quitter.upload(`uploads/abandoned-${worker}-${batch}`, endless).catch(() => {});
    } catch (error) {
      recordError(error);
    }
  }
  for (const conn of silent) conn.close();
}

/** The server's open descriptors and RSS (Deno guards /proc/PID/fd behind --allow-all, so ask sh). */
async function sample(): Promise<{ fds: number; rssMb: number }> {
  const script = `ls /proc/${pid}/fd | wc -l; grep VmRSS /proc/${pid}/status`;
  const out = await new Deno.Command("sh", {
    args: ["-c", script],
    stdout: "piped",
    stderr: "null",
  }).output();
  const [fds, rss] = new TextDecoder().decode(out.stdout).split("\n");
  const rssKb = Number(/(\d+) kB/.exec(rss ?? "")?.[1] ?? 0);
  return { fds: Number(fds), rssMb: Math.round(rssKb / 102.4) / 10 };
}

const samples: { t: number; fds: number; rssMb: number; transfers: number; errors: number }[] = [];
const started = performance.now();
const sampler = setInterval(async () => {
  const s = await sample();
  const transfers = stats.gets + stats.puts + stats.lists;
  const errors = [...stats.errors.values()].reduce((a, b) => a + b, 0);
  const t = Math.round((performance.now() - started) / 1000);
  samples.push({ t, ...s, transfers, errors });
  console.log(
    `t=${String(t).padStart(4)}s transfers=${transfers} hostile=${stats.hostileStreams} ` +
      `errors=${errors} fds=${s.fds} rss=${s.rssMb} MB`,
  );
}, intervalMs);

console.log(
  `soak: ${minutes} min, ${legitClients} clients, ${hostileClients} hostile, server pid ${pid} port ${port}`,
);
await Promise.all([
  ...Array.from({ length: legitClients }, (_, w) => legit(w)),
  ...Array.from({ length: hostileClients }, (_, w) => hostile(w)),
]);
clearInterval(sampler);
const final = await sample();
const status = await server.stop();

const steady = samples.slice(Math.floor(samples.length / 4)); // after warm-up
const range = (key: "fds" | "rssMb") => {
  const xs = steady.map((s) => s[key]);
  return { min: Math.min(...xs), max: Math.max(...xs), first: xs[0], last: xs.at(-1) };
};
const summary = {
  minutes,
  clients: legitClients,
  hostile: hostileClients,
  gets: stats.gets,
  puts: stats.puts,
  lists: stats.lists,
  hostileStreams: stats.hostileStreams,
  megabytes: Math.round(stats.bytes / 1e6),
  errors: Object.fromEntries(stats.errors),
  fds: range("fds"),
  rssMb: range("rssMb"),
  final,
  serverExit: status.code,
  logLines,
  samples,
};
console.log(
  `done: ${summary.gets} gets, ${summary.puts} puts, ${summary.lists} lists, ${summary.megabytes} MB, ` +
    `${summary.hostileStreams} hostile streams; client errors ${JSON.stringify(summary.errors)}`,
);
console.log(
  `fds after warm-up: ${JSON.stringify(summary.fds)}; RSS MB: ${JSON.stringify(summary.rssMb)}`,
);
console.log(`server exit status ${status.code}, ${logLines} log lines`);
if (values.json) await Deno.writeTextFile(values.json, JSON.stringify(summary, null, 2) + "\n");
await Deno.remove(root, { recursive: true });
