/**
 * What a shared file system costs (issue 22), in `deno task bench` or alone
 * (as root, with GlusterFS and /dev/fuse; skipped with a note otherwise):
 *
 *   deno run --allow-net=127.0.0.1 --allow-read --allow-write --allow-run --allow-sys=uid \
 *     bench/cluster_bench.ts [--quick] [--mb 1024]
 *
 * 1. The scale-out crowd (500 clients x 1 MiB) through HAProxy in front of 3
 *    fsd servers: once on one local directory, once on a GlusterFS replica-3
 *    volume with each server on its own FUSE mount
 *    (deploy/cluster/local-volume.sh).
 * 2. One large file, get and put, with one server on the local directory and
 *    one on a mount of the volume.
 *
 * All of it on one machine: three bricks and three mounts share its cores and
 * disk, so this shows what the shared file system adds to each transfer,
 * never a cluster's speed (which grows with its machines).
 */

import { crowd, have, makeFile, type ScaleRow, startHaproxy } from "./scale_bench.ts";
import { fsdGet, fsdPut, fsdServe, type Service } from "./support.ts";

const MIB = 1024 * 1024;
const LOCAL_VOLUME = new URL("../deploy/cluster/local-volume.sh", import.meta.url).pathname;

export interface ClusterResult {
  rows: ScaleRow[];
  notes: string[];
}

async function volume(base: string, command: "up" | "down"): Promise<void> {
  const out = await new Deno.Command("timeout", {
    args: ["-k", "10", "240", LOCAL_VOLUME, command, base],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(`local-volume.sh ${command}: ${new TextDecoder().decode(out.stderr)}`);
  }
}

/** HAProxy in front of one fsd server on each of `roots`; the crowd's row. */
async function crowdOver(roots: string[], work: string, clients: number, what: string) {
  const flags = ["--max-clients", "0", "--max-per-ip", "0", "--proxy-protocol"];
  const servers: Service[] = [];
  try {
    for (const root of roots) {
      servers.push(await fsdServe(root, [...flags, "--trusted-proxy", "127.0.0.1"]));
    }
    const haproxy = await startHaproxy(work, servers.map((s) => s.port));
    try {
      return await crowd(haproxy.port, clients, what, "cluster");
    } finally {
      await haproxy.stop();
    }
  } finally {
    for (const server of servers) await server.stop();
  }
}

/** `fsd get` then `fsd put` of a `mib` MiB file against one server on `root`. */
async function bigFile(root: string, work: string, mib: number, where: string) {
  const rows: ScaleRow[] = [];
  await makeFile(`${root}/big.bin`, mib * MIB);
  const server = await fsdServe(root);
  try {
    const got = await fsdGet(server.port, "big.bin", work);
    rows.push({ group: "cluster", what: `get ${mib} MiB, ${where}`, bytes: mib * MIB, ms: got.ms });
    await Deno.rename(`${work}/big.bin`, `${work}/up.bin`);
    const put = await fsdPut(server.port, "up.bin", work);
    rows.push({ group: "cluster", what: `put ${mib} MiB, ${where}`, bytes: mib * MIB, ms: put.ms });
  } finally {
    await server.stop();
    await Deno.remove(`${work}/up.bin`).catch(() => {});
  }
  return rows;
}

export async function clusterBench(options: { quick?: boolean; mib?: number } = {}) {
  const result: ClusterResult = { rows: [], notes: [] };
  const clients = options.quick ? 20 : 500;
  const mib = options.mib ?? (options.quick ? 4 : 1024);
  const why = Deno.uid() !== 0
    ? "not root"
    : !(await have("glusterd")) || !(await have("mount.glusterfs"))
    ? "GlusterFS missing (apt-get install glusterfs-server glusterfs-client)"
    : !(await have("haproxy"))
    ? "haproxy missing (apt-get install haproxy)"
    : undefined;
  if (why) {
    result.notes.push(`cluster section skipped: ${why}`);
    return result;
  }
  const local = await Deno.makeTempDir({ prefix: "fsd-cluster-local-" });
  const work = await Deno.makeTempDir({ prefix: "fsd-cluster-work-" });
  const base = await Deno.makeTempDir({ prefix: "fsd-cluster-bench-" });
  try {
    await makeFile(`${local}/one.bin`, MIB);
    result.rows.push(
      await crowdOver([local, local, local], work, clients, "HAProxy + 3 fsd, local directory"),
    );
    result.rows.push(...await bigFile(local, work, mib, "local directory"));
    await volume(base, "up");
    const mounts = [1, 2, 3].map((n) => `${base}/mnt${n}`);
    await makeFile(`${mounts[0]}/one.bin`, MIB);
    result.rows.push(
      await crowdOver(mounts, work, clients, "HAProxy + 3 fsd, GlusterFS replica 3 (3 mounts)"),
    );
    result.rows.push(...await bigFile(mounts[0], work, mib, "GlusterFS replica 3"));
    result.notes.push(
      "cluster: bricks, mounts, servers and clients share one machine's cores and disk; the " +
        "rows show what the shared file system costs, not a cluster's speed",
    );
  } finally {
    await volume(base, "down").catch((error) => result.notes.push(String(error)));
    for (const dir of [local, work, base]) {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  }
  return result;
}

if (import.meta.main) {
  const { parseArgs } = await import("node:util");
  const { values } = parseArgs({ options: { quick: { type: "boolean" }, mb: { type: "string" } } });
  const result = await clusterBench({
    quick: values.quick,
    mib: values.mb ? Number(values.mb) : undefined,
  });
  console.log("| what | seconds | MiB/s | notes |\n| --- | --- | --- | --- |");
  for (const r of result.rows) {
    const mibps = r.bytes / MIB / (r.ms / 1000);
    console.log(
      `| ${r.what} | ${(r.ms / 1000).toFixed(3)} | ${mibps.toFixed(1)} | ${r.extra ?? ""} |`,
    );
  }
  for (const note of result.notes) console.log(`note: ${note}`);
}
