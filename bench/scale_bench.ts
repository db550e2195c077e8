/**
 * Scale-out figures (issue 12), in `deno task bench` or alone:
 *
 *   deno run --unstable-net --allow-net=127.0.0.1 --allow-read --allow-write --allow-run --allow-sys=uid \
 *     bench/scale_bench.ts [--quick] [--mb 1024] [--runs 3]
 *
 * 1. 500 concurrent clients x 1 MiB (aggregate throughput, p50/p99 per
 *    client) against `fsd serve --workers 1`, `--workers 2`, and HAProxy in
 *    front of 2 fsd servers. The load generator is this one Deno process, on
 *    the same 2 cores as the servers.
 * 2. One large file, file to file: `fsd get` against socat over raw TCP
 *    (`socat -b 65536 -U TCP-LISTEN:...,fork OPEN:file` serving, `socat -b
 *    65536 -u TCP:... CREATE:out` receiving) and nginx with sendfile + curl.
 *    Best of --runs, contenders interleaved.
 *
 * A missing peer (socat, nginx, curl, haproxy) is skipped with a note.
 */

import { FsdClient } from "../lib/fsd/client.ts";
import { haproxyConfig } from "../tests/support/haproxy.ts";
import { fsdGet, fsdServe, type Service, timed } from "./support.ts";

const MIB = 1024 * 1024;

export interface ScaleRow {
  group: string;
  what: string;
  bytes: number;
  ms: number;
  extra?: string;
}

export interface ScaleResult {
  rows: ScaleRow[];
  /** Ratios worth a target line: name, value (fsd's time over the other's, lower is better). */
  ratios: { what: string; ratio: number }[];
  notes: string[];
}

export interface ScaleOptions {
  quick?: boolean;
  /** Size of the file-to-file transfer in MiB (default 1024; quick 16). */
  mib?: number;
  /** Rounds of the file-to-file transfer; each contender keeps its best (default 3; quick 1). */
  runs?: number;
}

export async function have(command: string): Promise<boolean> {
  const out = await new Deno.Command("sh", {
    args: ["-c", `command -v ${command}`],
    stdout: "null",
  })
    .output();
  return out.success;
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  return port;
}

/** Waits until something listens on 127.0.0.1:`port` (from /proc/net/tcp: no probe connection). */
async function listening(port: number): Promise<void> {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, "0")} `;
  for (let i = 0; i < 200; i++) {
    // Through cat: Deno guards /proc behind --allow-all.
    const out = await new Deno.Command("cat", { args: ["/proc/net/tcp"], stdout: "piped" })
      .output();
    const table = new TextDecoder().decode(out.stdout);
    if (table.split("\n").some((line) => line.includes(`0100007F${hex}`) && / 0A /.test(line))) {
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`nothing listens on port ${port}`);
}

export async function makeFile(path: string, bytes: number): Promise<void> {
  const chunk = new Uint8Array(Math.min(bytes, MIB)).map((_, i) => (i * 2654435761) >>> 24);
  const file = await Deno.open(path, { write: true, create: true, truncate: true });
  for (let left = bytes; left > 0; left -= chunk.length) {
    await file.write(chunk.subarray(0, Math.min(left, chunk.length)));
  }
  // On disk before anyone reads it: its writeback must not land on the first contender's time.
  await file.syncData();
  file.close();
}

/**
 * `clients` concurrent downloads of the 1 MiB "one.bin" from `port`: the
 * aggregate milliseconds, the failures, and per-client p50 and p99.
 */
export async function crowdDownloads(
  port: number,
  clients: number,
): Promise<{ ms: number; failures: number; p50: number; p99: number }> {
  const times: number[] = [];
  let failures = 0;
  const started = performance.now();
  await Promise.all(Array.from({ length: clients }, async () => {
    const t0 = performance.now();
    try {
      const client = await FsdClient.connect("127.0.0.1", port, { timeoutMs: 60_000 });
      try {
        const n = await client.download("one.bin", { write: (b) => Promise.resolve(b.length) }, {
          params: { blockSize: 65464, windowSize: 16 },
        });
        if (n !== MIB) failures++;
      } finally {
        client.close();
      }
      times.push(performance.now() - t0);
    } catch {
      failures++;
    }
  }));
  const ms = performance.now() - started;
  times.sort((a, b) => a - b);
  const q = (f: number) => times[Math.min(times.length - 1, Math.floor(f * times.length))] ?? NaN;
  return { ms, failures, p50: q(0.5), p99: q(0.99) };
}

/** `clients` concurrent 1 MiB downloads from `port`, as a row: aggregate ms and per-client p50/p99. */
export async function crowd(
  port: number,
  clients: number,
  what: string,
  group = "scale-out",
): Promise<ScaleRow> {
  const { ms, failures, p50, p99 } = await crowdDownloads(port, clients);
  return {
    group,
    what: `${clients} x 1 MiB, ${what}`,
    bytes: clients * MIB,
    ms,
    extra: `p50 ${p50.toFixed(0)} ms, p99 ${p99.toFixed(0)} ms, ${failures} failures`,
  };
}

function serveWorkers(root: string, workers: number): Promise<Service> {
  const source = new URL("..", import.meta.url).pathname;
  return fsdServe(
    root,
    ["--max-clients", "0", "--max-per-ip", "0", "--workers", String(workers)],
    undefined,
    {
      permissions: [
        "--unstable-net",
        "--allow-net=127.0.0.1",
        `--allow-read=${root},${source}`,
        `--allow-write=${root}`,
      ],
      ready: /port (\d+)(,|\n)/,
    },
  );
}

/** HAProxy from deploy/haproxy.cfg in front of `ports` (fsd/1), listening on a free port. */
export async function startHaproxy(work: string, ports: number[]): Promise<Service> {
  const frontend = freePort();
  // The tests' rewriting of the shipped file: each server into its backend, free ports bound.
  const servers = ports.map((port, i) => ({ name: `fsd${i + 1}`, port }));
  const free = { frontend, httpFrontend: freePort() };
  const config = (await haproxyConfig(free, servers, `ipv4@127.0.0.1:${freePort()}`))
    .split("\n").filter((line) => !/^\s*log stdout/.test(line)).join("\n");
  await Deno.writeTextFile(`${work}/haproxy.cfg`, config);
  const child = new Deno.Command("haproxy", {
    args: ["-db", "-f", `${work}/haproxy.cfg`],
    stdout: "null",
    stderr: "null",
  }).spawn();
  await listening(frontend);
  return {
    child,
    port: frontend,
    async stop() {
      child.kill("SIGTERM");
      return await child.status;
    },
  };
}

async function crowds(root: string, work: string, clients: number, result: ScaleResult) {
  await makeFile(`${root}/one.bin`, MIB);
  for (const workers of [1, 2]) {
    const server = await serveWorkers(root, workers);
    result.rows.push(await crowd(server.port, clients, `fsd serve --workers ${workers}`));
    await server.stop();
  }
  if (!(await have("haproxy"))) {
    result.notes.push("haproxy missing: its scale-out row skipped; apt-get install haproxy");
    return;
  }
  const flags = ["--max-clients", "0", "--max-per-ip", "0", "--proxy-protocol"];
  const servers = await Promise.all(
    [1, 2].map(() => fsdServe(root, [...flags, "--trusted-proxy", "127.0.0.1"])),
  );
  const haproxy = await startHaproxy(work, servers.map((s) => s.port));
  result.rows.push(await crowd(haproxy.port, clients, "HAProxy + 2 fsd servers"));
  await haproxy.stop();
  for (const server of servers) await server.stop();
}

/** socat serving `file` on a port, one fork per connection. */
export async function socatServe(file: string): Promise<Service> {
  const port = freePort();
  const child = new Deno.Command("socat", {
    args: ["-b", "65536", "-U", `TCP-LISTEN:${port},bind=127.0.0.1,reuseaddr,fork`, `OPEN:${file}`],
    stdout: "null",
    stderr: "null",
  }).spawn();
  await listening(port);
  return {
    child,
    port,
    async stop() {
      child.kill("SIGTERM");
      return await child.status;
    },
  };
}

/** nginx with sendfile serving `root` (with `autoindex`, directory listings), in the foreground, everything under `work`. */
export async function nginxServe(root: string, work: string, autoindex = false): Promise<Service> {
  const port = freePort();
  await Deno.mkdir(`${work}/nginx`, { recursive: true });
  const conf = `${work}/nginx/nginx.conf`;
  await Deno.writeTextFile(
    conf,
    `user root;
worker_processes 1;
daemon off;
pid ${work}/nginx/nginx.pid;
error_log ${work}/nginx/error.log;
events { worker_connections 64; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  client_body_temp_path ${work}/nginx;
  proxy_temp_path ${work}/nginx;
  fastcgi_temp_path ${work}/nginx;
  uwsgi_temp_path ${work}/nginx;
  scgi_temp_path ${work}/nginx;
  server { listen 127.0.0.1:${port}; root ${root};${autoindex ? " autoindex on;" : ""} }
}
`,
  );
  const child = new Deno.Command("nginx", {
    args: ["-c", conf, "-p", `${work}/nginx`],
    stdout: "null",
    stderr: "null",
  }).spawn();
  await listening(port);
  return {
    child,
    port,
    async stop() {
      child.kill("SIGTERM");
      return await child.status;
    },
  };
}

interface Contender {
  what: string;
  run(): Promise<number>;
}

async function fileToFile(
  root: string,
  work: string,
  mib: number,
  runs: number,
  result: ScaleResult,
) {
  const bytes = mib * MIB;
  await makeFile(`${root}/large.bin`, bytes);
  const out = `${work}/out`;
  await Deno.mkdir(out, { recursive: true });
  const services: Service[] = [];
  const contenders: Contender[] = [];
  const fsd = await fsdServe(root, ["--max-clients", "0"]);
  services.push(fsd);
  const FSD = `fsd get, file to file`;
  contenders.push({
    what: FSD,
    run: async () => (await fsdGet(fsd.port, "large.bin", out)).ms,
  });
  if (await have("socat")) {
    const socat = await socatServe(`${root}/large.bin`);
    services.push(socat);
    contenders.push({
      what: "socat -b 65536, file to file over TCP",
      run: async () =>
        (await timed("socat", [
          "-b",
          "65536",
          "-u",
          `TCP:127.0.0.1:${socat.port}`,
          `CREATE:${out}/socat.bin`,
        ])).ms,
    });
  } else result.notes.push("socat missing: its row skipped; apt-get install socat");
  if ((await have("nginx")) && (await have("curl")) && Deno.uid?.() === 0) {
    const nginx = await nginxServe(root, work);
    services.push(nginx);
    contenders.push({
      what: "nginx (sendfile) + curl, file to file",
      run: async () =>
        (await timed("curl", [
          "-s",
          "-o",
          `${out}/curl.bin`,
          `http://127.0.0.1:${nginx.port}/large.bin`,
        ])).ms,
    });
  } else result.notes.push("nginx or curl missing (or not root): their row skipped");
  const best = new Map<string, number[]>();
  try {
    for (let round = 0; round < runs; round++) {
      // Each round starts with the next contender: nobody always runs right after another.
      const order = contenders.map((_, i) => contenders[(i + round) % contenders.length]);
      for (const contender of order) {
        const ms = await contender.run();
        best.set(contender.what, [...(best.get(contender.what) ?? []), ms]);
        for await (const entry of Deno.readDir(out)) await Deno.remove(`${out}/${entry.name}`);
      }
    }
  } finally {
    for (const s of services) await s.stop();
    await Deno.remove(`${root}/large.bin`).catch(() => {});
  }
  const fsdMs = Math.min(...best.get(FSD)!);
  for (const [what, all] of best) {
    const ms = Math.min(...all);
    const ratio = what === FSD ? "" : `; fsd takes ${(fsdMs / ms).toFixed(2)}x its time`;
    result.rows.push({
      group: "file to file",
      what: `${what}, ${mib} MiB`,
      bytes,
      ms,
      extra: `runs ${all.map((t) => (t / 1000).toFixed(2)).join(" / ")} s${ratio}`,
    });
    if (what !== FSD) result.ratios.push({ what: `fsd get / ${what}`, ratio: fsdMs / ms });
  }
}

export async function scaleBench(options: ScaleOptions = {}): Promise<ScaleResult> {
  const quick = options.quick ?? false;
  const result: ScaleResult = { rows: [], ratios: [], notes: [] };
  const root = await Deno.makeTempDir({ prefix: "fsd-scale-root-" });
  const work = await Deno.makeTempDir({ prefix: "fsd-scale-work-" });
  try {
    await crowds(root, work, quick ? 20 : 500, result);
    await fileToFile(
      root,
      work,
      options.mib ?? (quick ? 16 : 1024),
      options.runs ?? (quick ? 1 : 3),
      result,
    );
  } finally {
    await Deno.remove(root, { recursive: true }).catch(() => {});
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
  return result;
}

if (import.meta.main) {
  const { parseArgs } = await import("node:util");
  const { values } = parseArgs({
    options: { quick: { type: "boolean" }, mb: { type: "string" }, runs: { type: "string" } },
  });
  const result = await scaleBench({
    quick: values.quick,
    mib: values.mb ? Number(values.mb) : undefined,
    runs: values.runs ? Number(values.runs) : undefined,
  });
  console.log("| group | what | seconds | MiB/s | notes |\n| --- | --- | --- | --- | --- |");
  for (const r of result.rows) {
    const mibps = r.bytes / MIB / (r.ms / 1000);
    console.log(
      `| ${r.group} | ${r.what} | ${(r.ms / 1000).toFixed(3)} | ${mibps.toFixed(1)} | ${
        r.extra ?? ""
      } |`,
    );
  }
  for (const note of result.notes) console.log(`note: ${note}`);
}
