/**
 * A 1 GiB download and upload over `fsd serve --http-only` with curl
 * (issue 21, Tests): byte-exact (CRC-32 from node:zlib, streamed, never the
 * whole file in memory) and with bounded memory in the server (its peak
 * RSS, /proc/PID/status VmHWM, stays under 300 MiB). The files live on
 * /dev/shm where there is one, so the disk is not what is measured.
 */

import assert from "node:assert/strict";
import { crc32 } from "node:zlib";
import { assertTools, needs } from "../support/tools.ts";
import { serveHttp } from "../support/http.ts";

const MIB = 1024 * 1024;
const SIZE = 1024 * MIB;
const MAX_RSS_MIB = 300;

/** A directory on /dev/shm (or the usual temporary place), removed on dispose. */
async function shmDir(): Promise<{ path: string } & AsyncDisposable> {
  const shm = await Deno.stat("/dev/shm").then((s) => s.isDirectory, () => false);
  const path = await Deno.makeTempDir({ prefix: "fsd-large-", ...(shm && { dir: "/dev/shm" }) });
  return {
    path,
    [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }).catch(() => {}),
  };
}

/** Writes `size` bytes, each MiB different (a seeded block with its index in), and returns their CRC-32. */
async function writeLarge(path: string, size: number): Promise<number> {
  const block = crypto.getRandomValues(new Uint8Array(MIB / 16)).slice();
  const chunk = new Uint8Array(MIB);
  for (let i = 0; i < 16; i++) chunk.set(block, i * block.length);
  using file = await Deno.open(path, { write: true, create: true, truncate: true });
  let crc = 0;
  for (let at = 0, i = 0; at < size; at += MIB, i++) {
    new DataView(chunk.buffer).setUint32(0, i);
    crc = crc32(chunk, crc);
    for (let w = 0; w < chunk.length;) w += await file.write(chunk.subarray(w));
  }
  return crc;
}

/** The CRC-32 and length of everything `stream` carries, a chunk at a time. */
async function crcOf(stream: ReadableStream<Uint8Array>): Promise<{ crc: number; bytes: number }> {
  let crc = 0;
  let bytes = 0;
  for await (const chunk of stream) {
    crc = crc32(chunk, crc);
    bytes += chunk.length;
  }
  return { crc, bytes };
}

/** The process's peak resident memory in MiB (VmHWM; read by cat: Deno allows /proc only to --allow-all). */
async function peakRssMib(pid: number): Promise<number> {
  const out = await new Deno.Command("cat", { args: [`/proc/${pid}/status`] }).output();
  const status = new TextDecoder().decode(out.stdout);
  return Number(/^VmHWM:\s+(\d+) kB$/m.exec(status)![1]) / 1024;
}

Deno.test({
  name: "http 1 GiB: curl download and curl -T upload byte-exact, server memory bounded",
  ...needs("curl"),
  fn: async () => {
    assertTools("curl");
    await using dir = await shmDir();
    const served = `${dir.path}/served`;
    await Deno.mkdir(served);
    const expected = await writeLarge(`${served}/big.bin`, SIZE);
    await using server = await serveHttp(served);
    const base = `http://127.0.0.1:${server.port}`;

    // Download: curl to a pipe, checked as it arrives.
    const get = new Deno.Command("curl", {
      args: ["-sS", "--fail", "--max-time", "120", `${base}/big.bin`],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const [got, getStatus, getErrors] = await Promise.all([
      crcOf(get.stdout),
      get.status,
      new Response(get.stderr).text(),
    ]);
    assert.ok(getStatus.success, getErrors);
    assert.equal(got.bytes, SIZE);
    assert.equal(got.crc, expected);

    // Upload: curl -T of the same file under a new name, published whole.
    const put = await new Deno.Command("curl", {
      args: ["-sS", "--fail", "--max-time", "120", "-T", `${served}/big.bin`, `${base}/copy.bin`],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.ok(put.success, new TextDecoder().decode(put.stderr));
    assert.match(new TextDecoder().decode(put.stdout), /^created: copy\.bin, 1073741824 bytes/);
    using copy = await Deno.open(`${served}/copy.bin`);
    const stored = await crcOf(copy.readable);
    assert.equal(stored.bytes, SIZE);
    assert.equal(stored.crc, expected);

    const peak = await peakRssMib(server.child.pid);
    assert.ok(peak < MAX_RSS_MIB, `server peak RSS ${peak.toFixed(0)} MiB`);
    console.log(`server peak RSS over 1 GiB down and up: ${peak.toFixed(0)} MiB`);
  },
});
