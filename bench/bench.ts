/**
 * `deno task bench`: fsd side by side with a raw TCP copy, curl's TFTP client
 * against tftpd-hpa, and tftp-hpa, all on 127.0.0.1 in one run; then memory,
 * many clients, many idle connections and scaling. Prints one table and
 * writes it as JSON to bench/results/latest.json. docs/PERFORMANCE.md says
 * how to read it.
 *
 *   deno task bench [--quick] [--mb 1024] [--fsd1-mb 64] [--runs 3]
 *
 * Peers come from Debian's packages (tftpd-hpa, tftp-hpa, curl); a missing
 * one is skipped with a note, never faked. --quick is the CI smoke run:
 * small sizes, few clients, same code paths.
 */

import { parseArgs } from "node:util";
import { FsdClient } from "../lib/fsd/client.ts";
import { clientBench } from "./client_bench.ts";
import { compareBench } from "./compare_bench.ts";
import { clusterBench } from "./cluster_bench.ts";
import { pcapBench } from "./pcap_bench.ts";
import {
  freeUdpPort,
  fsdGet as sharedGet,
  fsdServe as sharedServe,
  MAIN,
  memoryKb,
  service,
  timed,
} from "./support.ts";
import { crowdDownloads, scaleBench } from "./scale_bench.ts";
import { tlsBench } from "./tls_bench.ts";
import { httpBench } from "./http_bench.ts";
import { tftpBench } from "./tftp_bench.ts";

const { values } = parseArgs({
  options: {
    quick: { type: "boolean" },
    mb: { type: "string" },
    "fsd1-mb": { type: "string" },
    runs: { type: "string" },
  },
});
const quick = Boolean(values.quick);
const MIB = 1024 * 1024;
const bigMib = Number(values.mb ?? (quick ? 4 : 1024));
const fsd1Mib = Number(values["fsd1-mb"] ?? (quick ? 1 : 64));
// Large transfers run this many rounds, contenders interleaved, and each keeps its best:
// writing a fresh 1 GiB file costs anywhere from 0.3 to 2.5 s on a VM, run to run.
const runs = Number(values.runs ?? (quick ? 1 : 3));
const manyClients = quick ? 20 : 500;
const idleConnections = quick ? 200 : 10_000;
const scaling = quick ? [1024, MIB] : [1024, MIB, 64 * MIB, 1024 * MIB];

const deno = Deno.execPath();
const rawCopy = new URL("./raw_copy.ts", import.meta.url).pathname;
const root = await Deno.makeTempDir({ prefix: "fsd-bench-root-" });
const work = await Deno.makeTempDir({ prefix: "fsd-bench-work-" });
const notes: string[] = [];

interface Row {
  group: string;
  what: string;
  bytes: number;
  seconds: number;
  mibPerSecond: number;
  extra?: string;
}
const rows: Row[] = [];
const targets: { target: string; value: string; pass: boolean }[] = [];

function addRow(group: string, what: string, bytes: number, ms: number, extra?: string): Row {
  const row = {
    group,
    what,
    bytes,
    seconds: ms / 1000,
    mibPerSecond: bytes / MIB / (ms / 1000),
    extra,
  };
  rows.push(row);
  console.log(
    `  ${group} | ${what}: ${(ms / 1000).toFixed(3)} s, ${row.mibPerSecond.toFixed(1)} MiB/s${
      extra ? `, ${extra}` : ""
    }`,
  );
  return row;
}

async function makeFile(name: string, bytes: number): Promise<string> {
  const path = `${root}/${name}`;
  const chunk = new Uint8Array(Math.min(bytes, MIB)).map((_, i) => (i * 2654435761) >>> 24);
  const file = await Deno.open(path, { write: true, create: true, truncate: true });
  for (let left = bytes; left > 0; left -= chunk.length) {
    await file.write(chunk.subarray(0, Math.min(left, chunk.length)));
  }
  file.close();
  return path;
}

async function have(command: string): Promise<boolean> {
  const out = await new Deno.Command("sh", {
    args: ["-c", `command -v ${command}`],
    stdout: "null",
  }).output();
  return out.success;
}

/** `fsd serve ROOT 0` without connection limits, with a raised descriptor limit. */
const fsdServe = (extra: string[] = []) =>
  sharedServe(root, ["--max-clients", "0", "--max-per-ip", "0", ...extra], undefined, {
    raiseFileLimit: true,
  });

const fsdGet = (port: number, name: string, extra: string[] = []) =>
  sharedGet(port, name, work, extra);

const fsdPut = async (port: number, name: string, remote: string, extra: string[] = []) => {
  await Deno.remove(`${root}/${remote}`).catch(() => {});
  return await timed(deno, [
    "run",
    "--quiet",
    `--allow-net=127.0.0.1:${port}`,
    `--allow-read=${root}/${name}`,
    MAIN,
    "put",
    "127.0.0.1",
    String(port),
    `${root}/${name}`,
    remote,
    ...extra,
  ]);
};

/** raw_copy.ts from `from` to `to` in `kib` KiB reads and writes; the time in ms. */
async function rawTcp(from: string, to: string, kib = 64): Promise<number> {
  const receiver = await service(deno, [
    "run",
    "--quiet",
    "--allow-net=127.0.0.1",
    "--allow-write",
    rawCopy,
    "receive",
    "0",
    to,
    String(kib),
  ], /listening on (\d+)/);
  const sent = await timed(deno, [
    "run",
    "--quiet",
    "--allow-net=127.0.0.1",
    "--allow-read",
    rawCopy,
    "send",
    String(receiver.port),
    from,
    String(kib),
  ]);
  await receiver.child.status; // it exits once the file is written
  return sent.ms;
}

/** Removes a contender's output, so that the next one writes into memory just freed. */
async function removeOutput(path: string): Promise<void> {
  await Deno.remove(path).catch(() => {});
}

const fsdGetToNull = (port: number, name: string) =>
  timed(deno, [
    "run",
    "--quiet",
    `--allow-net=127.0.0.1:${port}`,
    MAIN,
    "get",
    "127.0.0.1",
    String(port),
    name,
    "-",
  ]);

console.log(
  `fsd benchmark${
    quick ? " (--quick)" : ""
  }: ${Deno.build.os} ${Deno.build.arch}, ${navigator.hardwareConcurrency} cores, Deno ${Deno.version.deno}`,
);
const big = bigMib * MIB;
await makeFile("big.bin", big);
await makeFile("plain.bin", fsd1Mib * MIB);
const server = await fsdServe();

// ---- 1. large transfers: fsd against a raw TCP copy and curl's TFTP client ----
console.log(`\n1. ${bigMib} MiB download and upload, best of ${runs}`);

let tftpd: { stop(): Promise<void>; port: number } | undefined;
if ((await have("in.tftpd")) && Deno.uid?.() === 0) {
  const port = await freeUdpPort();
  const child = new Deno.Command("in.tftpd", {
    args: ["-L", "-a", `127.0.0.1:${port}`, "-s", root, "-u", "root", "-c", "-B", "65464"],
    stdout: "null",
    stderr: "null",
  }).spawn();
  await new Promise((resolve) => setTimeout(resolve, 300)); // it prints nothing when ready
  tftpd = {
    port,
    async stop() {
      child.kill("SIGTERM");
      await child.status;
    },
  };
} else {
  notes.push(
    "tftpd-hpa missing (or not root): curl and tftp-hpa rows skipped; apt-get install tftpd-hpa",
  );
}
const haveCurl = Boolean(tftpd) && await have("curl");
if (tftpd && !haveCurl) notes.push("curl missing: curl rows skipped");

/** One contender of section 1: a run returns its time in ms and removes what it wrote. */
interface Contender {
  what: string;
  run(): Promise<{ ms: number; peakKb?: number }>;
}
const curl = (args: string[]) => timed("curl", ["-s", "--tftp-blksize", "65464", ...args]);
const tftpUrl = (name: string) => `tftp://127.0.0.1:${tftpd!.port}/${name}`;
const FSD_GET = "fsd get (default: 65464-byte blocks, window 16)";
const FSD_PUT = "fsd put (default)";
const RAW_COPY = "raw TCP copy (Deno, 64 KiB writes)";
const CURL_GET = "curl TFTP get, blksize 65464, from tftpd-hpa";
const CURL_PUT = "curl TFTP put, blksize 65464, to tftpd-hpa";
const contenders: Contender[] = [
  {
    what: FSD_GET,
    run: () => fsdGet(server.port, "big.bin").finally(() => removeOutput(`${work}/big.bin`)),
  },
  {
    what: FSD_PUT,
    run: () =>
      fsdPut(server.port, "big.bin", "uploaded.bin").finally(() =>
        removeOutput(`${root}/uploaded.bin`)
      ),
  },
  {
    what: RAW_COPY,
    run: async () => {
      const ms = await rawTcp(`${root}/big.bin`, `${work}/raw.bin`);
      await removeOutput(`${work}/raw.bin`);
      return { ms };
    },
  },
  ...(!haveCurl ? [] : [
    {
      what: CURL_GET,
      run: () =>
        curl(["-o", `${work}/curl.bin`, tftpUrl("big.bin")]).finally(() =>
          removeOutput(`${work}/curl.bin`)
        ),
    },
    {
      what: CURL_PUT,
      run: () =>
        curl(["-T", `${root}/big.bin`, tftpUrl("curl-up.bin")]).finally(() =>
          removeOutput(`${root}/curl-up.bin`)
        ),
    },
  ]),
  // Context, not targets: the protocols without a disk, and the disk without a network.
  {
    what: "fsd get to /dev/null (no file written)",
    run: () => fsdGetToNull(server.port, "big.bin"),
  },
  ...(!haveCurl ? [] : [{
    what: "curl TFTP get to /dev/null (no file written)",
    run: () => curl(["-o", "/dev/null", tftpUrl("big.bin")]),
  }]),
  {
    what: "Deno's sockets alone (memory to memory, 1 MiB writes, no files)",
    run: async () => ({ ms: await rawTcp(`memory:${big}`, "memory", 1024) }),
  },
];
const best = new Map<Contender, { ms: number; peakKb?: number; all: number[] }>();
for (let round = 0; round < runs; round++) {
  for (const contender of contenders) {
    const result = await contender.run();
    const seen = best.get(contender);
    const all = [...(seen?.all ?? []), result.ms];
    best.set(contender, seen && seen.ms <= result.ms ? { ...seen, all } : { ...result, all });
  }
}
const large = new Map<string, Row>();
for (const contender of contenders) {
  const { ms, peakKb, all } = best.get(contender)!;
  const extras = [
    ...(peakKb ? [`client peak RSS ${(peakKb / 1024).toFixed(0)} MB`] : []),
    ...(runs > 1 ? [`runs ${all.map((t) => (t / 1000).toFixed(2)).join(" / ")} s`] : []),
  ];
  large.set(contender.what, addRow("large", contender.what, big, ms, extras.join("; ")));
}
/** `name`'s rate over `other`'s, as a target row. */
function ratioTarget(target: string, name: string, other: string, factor: number): void {
  const mine = large.get(name);
  const theirs = large.get(other);
  if (!mine || !theirs) return;
  const ratio = mine.mibPerSecond / theirs.mibPerSecond;
  targets.push({ target, value: `${ratio.toFixed(2)}×`, pass: ratio >= factor });
}
ratioTarget("download ≥ 0.5× raw TCP copy", FSD_GET, RAW_COPY, 0.5);
ratioTarget("upload ≥ 0.5× raw TCP copy", FSD_PUT, RAW_COPY, 0.5);
ratioTarget("download ≥ 5× curl TFTP (blksize 65464)", FSD_GET, CURL_GET, 5);
ratioTarget("upload ≥ 5× curl TFTP (blksize 65464)", FSD_PUT, CURL_PUT, 5);

// ---- 2. plain fsd/1 against tftp-hpa at 512-byte blocks ----
console.log(`\n2. ${fsd1Mib} MiB at 512-byte blocks, one at a time`);
const plain = addRow(
  "fsd/1",
  "fsd get --fsd1",
  fsd1Mib * MIB,
  (await fsdGet(server.port, "plain.bin", ["--fsd1"])).ms,
);
if (tftpd && (await have("tftp"))) {
  const hpa = await timed("tftp", [
    "127.0.0.1",
    String(tftpd.port),
    "-m",
    "octet",
    "-c",
    "get",
    "plain.bin",
    `${work}/hpa.bin`,
  ]);
  const hpaRow = addRow(
    "fsd/1",
    "tftp-hpa get, 512-byte blocks, from tftpd-hpa",
    fsd1Mib * MIB,
    hpa.ms,
  );
  targets.push({
    target: "fsd/1 ≥ 3× tftp-hpa at 512-byte blocks",
    value: `${(plain.mibPerSecond / hpaRow.mibPerSecond).toFixed(2)}×`,
    pass: plain.mibPerSecond >= 3 * hpaRow.mibPerSecond,
  });
} else if (tftpd) {
  notes.push("tftp-hpa missing: its row skipped; apt-get install tftp-hpa");
}
await tftpd?.stop();
await server.stop();

// ---- 3. memory: peak RSS of server and client, as the file grows ----
console.log("\n3. peak RSS during transfers (MB)");
const memory: Record<string, { server: number; client: number }> = {};
for (const mib of quick ? [1, bigMib] : [64, bigMib]) {
  await makeFile("mem.bin", mib * MIB);
  const fresh = await fsdServe();
  const get = await fsdGet(fresh.port, "mem.bin");
  const put = await fsdPut(fresh.port, "mem.bin", "mem-up.bin");
  const serverPeak = await memoryKb(fresh.child.pid, "VmHWM"); // the kernel's own peak
  await fresh.stop();
  memory[`${mib} MiB`] = {
    server: serverPeak / 1024,
    client: Math.max(get.peakKb, put.peakKb) / 1024,
  };
  console.log(
    `  ${mib} MiB get+put: server ${(serverPeak / 1024).toFixed(0)} MB, client ${
      (Math.max(get.peakKb, put.peakKb) / 1024).toFixed(0)
    } MB`,
  );
}
const peaks = Object.values(memory);
targets.push({
  target: "peak RSS ≤ 100 MB, server and client",
  value: peaks.map((p) => `${p.server.toFixed(0)}/${p.client.toFixed(0)}`).join(", ") + " MB",
  pass: peaks.every((p) => p.server <= 100 && p.client <= 100),
});
await Deno.remove(`${root}/mem.bin`).catch(() => {});

// ---- 4. many clients at once ----
console.log(`\n4. ${manyClients} clients at once, each downloading 1 MiB`);
await makeFile("one.bin", MIB);
const crowdServer = await fsdServe();
const { ms: crowdMs, failures, p50, p99 } = await crowdDownloads(crowdServer.port, manyClients);
addRow(
  "many",
  `${manyClients} concurrent 1 MiB downloads (aggregate)`,
  manyClients * MIB,
  crowdMs,
  `p50 ${p50.toFixed(0)} ms, p99 ${p99.toFixed(0)} ms per client, ${failures} failures`,
);
targets.push({
  target: `${manyClients} concurrent clients: zero failures`,
  value: `${failures} failures`,
  pass: failures === 0,
});
await crowdServer.stop();

// ---- 5. idle connections held open ----
console.log(`\n5. ${idleConnections} idle connections held open`);
const idleServer = await fsdServe(["--idle-timeout", "600"]);
const held: Deno.TcpConn[] = [];
let idleNote = "";
try {
  for (let i = 0; i < idleConnections; i++) {
    held.push(await Deno.connect({ hostname: "127.0.0.1", port: idleServer.port }));
  }
} catch (error) {
  idleNote = `could open only ${held.length}: ${(error as Error).message} (raise ulimit -n)`;
  notes.push(idleNote);
}
await new Promise((resolve) => setTimeout(resolve, 500)); // let the server greet them all
const idleRss = (await memoryKb(idleServer.child.pid)) / 1024;
const listStarted = performance.now();
const lister = await FsdClient.connect("127.0.0.1", idleServer.port);
await lister.list();
lister.close();
const listMs = performance.now() - listStarted;
console.log(
  `  ${held.length} held: server RSS ${idleRss.toFixed(0)} MB, a new client's listing in ${
    listMs.toFixed(1)
  } ms`,
);
targets.push({
  target: `${idleConnections} idle connections: server RSS ≤ 300 MB, listing ≤ 200 ms`,
  value: `${held.length} held, ${idleRss.toFixed(0)} MB, ${listMs.toFixed(0)} ms`,
  pass: held.length === idleConnections && idleRss <= 300 && listMs <= 200,
});
for (const conn of held) conn.close();
await idleServer.stop();

// ---- 6. scaling ----
console.log("\n6. time against size (fsd get, default settings)");
const scaleServer = await fsdServe();
const scale: { bytes: number; seconds: number }[] = [];
for (const bytes of scaling) {
  await makeFile("scale.bin", bytes);
  const { ms } = await fsdGet(scaleServer.port, "scale.bin");
  scale.push({ bytes, seconds: ms / 1000 });
  addRow(
    "scaling",
    `fsd get of ${bytes >= MIB ? `${bytes / MIB} MiB` : `${bytes / 1024} KiB`}`,
    bytes,
    ms,
  );
}
await scaleServer.stop();

// ---- 7. recording: fsd proxy --pcap and --trace ladder (bench/pcap_bench.ts) ----
console.log("\n7. fsd get through fsd proxy, plain, recording a capture, drawing a ladder");
const pcap = await pcapBench(quick ? 4 : 256, runs);
for (
  const [what, ms] of [["plain", pcap.plainMs], ["--pcap", pcap.pcapMs], [
    "--trace ladder",
    pcap.ladderMs,
  ]] as const
) {
  addRow("recording", `fsd get via fsd proxy ${what}`, pcap.mib * MIB, ms);
}

// ---- 8. scale-out (--workers, HAProxy) and file to file against socat and nginx ----
console.log("\n8. scale-out and file to file (bench/scale_bench.ts)");
const scaled = await scaleBench({ quick, mib: bigMib, runs });
for (const r of scaled.rows) addRow(r.group, r.what, r.bytes, r.ms, r.extra);
for (const r of scaled.ratios) {
  targets.push({
    target: `${r.what}: ≤ 1× its time`,
    value: `${r.ratio.toFixed(2)}×`,
    pass: r.ratio <= 1,
  });
}
notes.push(...scaled.notes);

// ---- 9. TLS and logins (bench/tls_bench.ts) ----
console.log("\n9. TLS against plain, and what a login costs");
const tlsResult = await tlsBench({ mib: bigMib, runs, logins: quick ? 3 : 10 });
for (const r of tlsResult.rows) addRow(r.group, r.what, r.bytes, r.ms, r.extra);
targets.push(...tlsResult.targets);
notes.push(...tlsResult.notes);

// ---- 10. the client: many files, trees, integrity (bench/client_bench.ts) ----
const client = await clientBench({ quick });
for (const r of client.rows) addRow(r.group, r.what, r.bytes, r.ms, r.extra);
targets.push(...client.targets);
notes.push(...client.notes);

// ---- 11. TFTP: fsd's server and client against tftpd-hpa and atftpd (bench/tftp_bench.ts) ----
for (const row of (await tftpBench({ quick })).rows) {
  addRow("tftp", row.what, row.bytes, row.ms, row.extra);
}

// ---- 12. issue 20's side by side: integrity, many files, trees, socat, start-up (bench/compare_bench.ts) ----
console.log("\n12. side by side: integrity on and off, curl -Z, wget -r, socat, start-up");
const compared = await compareBench({ quick, mib: bigMib, rounds: runs });
for (const r of compared.rows) addRow(r.group, r.what, r.bytes, r.ms, r.extra);
targets.push(...compared.targets);
notes.push(...compared.notes);

// ---- 13. HTTP: the HTTP face against nginx and python3's server (bench/http_bench.ts) ----
console.log("\n13. HTTP: curl against fsd serve --http-only, nginx and python3 -m http.server");
const httpResult = await httpBench({ mib: bigMib, runs });
for (const r of httpResult.rows) addRow(r.group, r.what, r.bytes, r.ms, r.extra);
targets.push(...httpResult.targets);
notes.push(...httpResult.notes);
// ---- 14. cluster: what a shared file system (GlusterFS) costs (bench/cluster_bench.ts) ----
console.log(
  "\n14. cluster: a local directory against a GlusterFS volume (root and GlusterFS only)",
);
const cluster = await clusterBench({ quick, mib: bigMib });
for (const r of cluster.rows) addRow(r.group, r.what, r.bytes, r.ms, r.extra);
notes.push(...cluster.notes);

// ---- the table ----
console.log(
  "\n| group | what | bytes | seconds | MiB/s | notes |\n| --- | --- | --- | --- | --- | --- |",
);
for (const r of rows) {
  console.log(
    `| ${r.group} | ${r.what} | ${r.bytes} | ${r.seconds.toFixed(3)} | ${
      r.mibPerSecond.toFixed(1)
    } | ${r.extra ?? ""} |`,
  );
}
console.log("\n| target | measured | holds |\n| --- | --- | --- |");
for (const t of targets) console.log(`| ${t.target} | ${t.value} | ${t.pass ? "yes" : "NO"} |`);
for (const note of notes) console.log(`note: ${note}`);

const resultsDir = new URL("./results/", import.meta.url).pathname;
await Deno.mkdir(resultsDir, { recursive: true });
await Deno.writeTextFile(
  `${resultsDir}latest.json`,
  JSON.stringify(
    {
      date: new Date().toISOString(),
      quick,
      cores: navigator.hardwareConcurrency,
      rows,
      targets,
      memory,
      scale,
      notes,
    },
    null,
    2,
  ) + "\n",
);
console.log(`\nwritten: bench/results/latest.json`);
await Deno.remove(root, { recursive: true });
await Deno.remove(work, { recursive: true });
