/**
 * What recording costs (not part of CI): `fsd get` of one file through
 * `fsd proxy`, plain, with `--pcap FILE`, and with `--trace ladder`, best of
 * --runs, each side the real CLI on 127.0.0.1; and the proxy's peak memory
 * while it records (the capture writer keeps one 64 KiB buffer).
 *
 *   deno run -A bench/pcap_bench.ts [--mb 256] [--runs 3]
 */

import { parseArgs } from "node:util";
import { fsdGet, fsdServe, MAIN, memoryKb, service } from "./support.ts";

export interface PcapBenchResult {
  mib: number;
  plainMs: number;
  pcapMs: number;
  ladderMs: number;
  pcapBytes: number;
  proxyPeakKb: number;
}

/** Runs the comparison on a `mib` MiB file; prints and returns the figures. */
export async function pcapBench(mib: number, runs: number): Promise<PcapBenchResult> {
  const root = await Deno.makeTempDir({ prefix: "fsd-pcap-bench-" });
  const work = await Deno.makeTempDir({ prefix: "fsd-pcap-bench-out-" });
  const chunk = new Uint8Array(1024 * 1024).map((_, i) => (i * 2654435761) >>> 24);
  const file = await Deno.open(`${root}/big.bin`, { write: true, create: true, truncate: true });
  for (let i = 0; i < mib; i++) await file.write(chunk);
  file.close();
  const server = await fsdServe(root);
  const proxy = (extra: string[]) =>
    service(Deno.execPath(), [
      "run",
      "--quiet",
      "--allow-net=127.0.0.1",
      `--allow-write=${work}`,
      MAIN,
      "proxy",
      "0",
      "127.0.0.1",
      String(server.port),
      "--host",
      "127.0.0.1",
      ...extra,
    ], / port (\d+)/);
  const best = async (extra: string[]) => {
    const relay = await proxy(extra);
    let fastest = Infinity;
    let peak = 0;
    for (let i = 0; i < runs; i++) {
      fastest = Math.min(fastest, (await fsdGet(relay.port, "big.bin", work)).ms);
      peak = Math.max(peak, await memoryKb(relay.child.pid, "VmHWM"));
    }
    await relay.stop();
    return { ms: fastest, peak };
  };
  try {
    const plain = await best([]);
    const pcap = await best(["--pcap", `${work}/bench.pcap`]);
    const pcapBytes = (await Deno.stat(`${work}/bench.pcap`)).size;
    const ladder = await best(["--trace", "ladder"]);
    const rate = (ms: number) => `${(mib / (ms / 1000)).toFixed(1)} MiB/s`;
    console.log(`fsd get of ${mib} MiB through fsd proxy, best of ${runs}:`);
    console.log(`  plain            ${(plain.ms / 1000).toFixed(2)} s  ${rate(plain.ms)}`);
    console.log(`  --pcap FILE      ${(pcap.ms / 1000).toFixed(2)} s  ${rate(pcap.ms)}`);
    console.log(`  --trace ladder   ${(ladder.ms / 1000).toFixed(2)} s  ${rate(ladder.ms)}`);
    console.log(`  capture file: ${(pcapBytes / 2 ** 20).toFixed(1)} MiB for ${runs} runs`);
    console.log(`  proxy peak memory: ${plain.peak} kB plain, ${pcap.peak} kB recording`);
    return {
      mib,
      plainMs: plain.ms,
      pcapMs: pcap.ms,
      ladderMs: ladder.ms,
      pcapBytes,
      proxyPeakKb: pcap.peak,
    };
  } finally {
    await server.stop();
    await Deno.remove(root, { recursive: true });
    await Deno.remove(work, { recursive: true });
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: { mb: { type: "string", default: "256" }, runs: { type: "string", default: "3" } },
  });
  await pcapBench(Number(values.mb), Number(values.runs));
}
