/**
 * The server's digests of unchanged files (lib/store/digest_cache.ts): a file sent again is not
 * read through the checksum again, and what is remembered is never sent for a file that changed.
 * An in-process server (its cache is this process's), the CLI's get as a subprocess.
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { crc32 } from "node:zlib";
import { toHex } from "../../lib/bytes/sha256.ts";
import {
  DIGEST_CACHE_MIN_BYTES,
  DigestCache,
  fileVersion,
  SERVED_DIGESTS,
  SETTLED_MS,
  versionOf,
} from "../../lib/store/digest_cache.ts";
import { net, runFsd, rw } from "../support/cli.ts";
import { randomBytes, tempDir } from "../support/files.ts";
import { startServer } from "../support/server.ts";

const MIB = 1024 * 1024;
const always = () => Promise.resolve(true);

/** A file's CRC-32 as the SUM carries it (4 bytes, big-endian). */
function crcBytes(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, crc32(bytes));
  return out;
}

/** Resolves once `path` was last changed SETTLED_MS ago (its ctime, whole seconds): it has a version. */
async function settled(path: string): Promise<Deno.FileInfo> {
  for (let i = 0; i < 50; i++) {
    const info = await Deno.stat(path);
    const left = info.ctime!.getTime() + SETTLED_MS - Date.now();
    if (left <= 0) return info;
    await new Promise((resolve) => setTimeout(resolve, Math.min(left + 10, 1000)));
  }
  throw new Error(`${path} never settled`);
}

Deno.test("digest cache: a version names device, inode, size, mtime and ctime, and only a file settled for 2 s has one", () => {
  const base = {
    isFile: true,
    dev: 1,
    ino: 2,
    size: 3 * MIB,
    mtime: new Date(1_000_000),
    ctime: new Date(2_000_000),
  } as Deno.FileInfo;
  const now = 2_000_000 + SETTLED_MS;
  const version = fileVersion(base, now);
  assert.ok(version);
  for (
    const changed of [
      { dev: 9 },
      { ino: 9 },
      { size: 9 },
      { mtime: new Date(1_000_001) },
      { ctime: new Date(2_000_000 - 1000) }, // a write whose mtime was put back
    ]
  ) {
    assert.notEqual(fileVersion({ ...base, ...changed } as Deno.FileInfo, now), version);
  }
  assert.equal(fileVersion(base, now - 1), undefined); // changed less than 2 s ago
  assert.equal(fileVersion({ ...base, ctime: null } as Deno.FileInfo, now), undefined);
  assert.equal(fileVersion({ ...base, isFile: false } as Deno.FileInfo, now), undefined);
});

Deno.test("digest cache: an open file under DIGEST_CACHE_MIN_BYTES gets no version, one of that size does", () => {
  const settledLongAgo = new Date(Date.now() - 60_000);
  const info = (size: number) =>
    ({
      isFile: true,
      dev: 1,
      ino: 2,
      size,
      mtime: settledLongAgo,
      ctime: settledLongAgo,
    }) as Deno.FileInfo;
  const file = { stat: () => Promise.reject(new Error("not asked")) };
  assert.equal(versionOf(file, info(DIGEST_CACHE_MIN_BYTES - 1)).version, undefined);
  assert.ok(versionOf(file, info(DIGEST_CACHE_MIN_BYTES)).version);
});

Deno.test("digest cache: bounded, the least recently used out first; nothing kept for a file changed while read, a small file or one without a version", async () => {
  const cache = new DigestCache(2);
  const file = (version: string | undefined, unchanged = true, size = DIGEST_CACHE_MIN_BYTES) => ({
    size,
    version,
    unchanged: () => Promise.resolve(unchanged),
  });
  const digest = (n: number) => new Uint8Array([n]);
  await cache.remember("crc32", file("a"), digest(1));
  await cache.remember("crc32", file("b"), digest(2));
  assert.deepEqual(cache.get("crc32", file("a")), digest(1)); // a is now the most recent
  assert.equal(cache.get("sha256", file("a")), undefined); // by checksum too
  await cache.remember("crc32", file("c"), digest(3));
  assert.equal(cache.size, 2);
  assert.equal(cache.get("crc32", file("b")), undefined); // b went first
  assert.deepEqual(cache.get("crc32", file("c")), digest(3));
  await cache.remember("crc32", file("d", false), digest(4));
  await cache.remember("crc32", file("e", true, DIGEST_CACHE_MIN_BYTES - 1), digest(5));
  await cache.remember("crc32", file(undefined), digest(6));
  assert.equal(cache.get("crc32", file("d")), undefined);
  assert.equal(cache.get("crc32", file("e", true, DIGEST_CACHE_MIN_BYTES - 1)), undefined);
  assert.equal(cache.size, 2);
});

Deno.test("digest cache: the server sends a remembered digest for an unchanged file (a resume too), a listing's SHA-256 too, and none for one written since, even with its mtime put back", async () => {
  await using server = await startServer();
  await using local = await tempDir();
  const path = `${server.root}/image.bin`;
  const content = randomBytes(3 * MIB, 11);
  await Deno.writeFile(path, content);
  const info = await settled(path);
  const port = String(server.port);
  const get = (...extra: string[]) =>
    runFsd([net(server.port), ...rw(local.path)], [
      "get",
      "127.0.0.1",
      port,
      "image.bin",
      `${local.path}/image.bin`,
      "-f",
      ...extra,
    ]);

  // Sent once, checked by the client: the server remembers the CRC-32 it sent.
  const first = await get();
  assert.equal(first.code, 0, first.stderr);
  assert.deepEqual(await Deno.readFile(`${local.path}/image.bin`), content);
  const opened = { size: content.length, version: fileVersion(info) };
  assert.deepEqual(SERVED_DIGESTS.get("crc32", opened), crcBytes(content));

  // What is remembered is what the next transfer's SUM carries: a wrong one is caught.
  await SERVED_DIGESTS.remember(
    "crc32",
    { ...opened, unchanged: always },
    new Uint8Array(4),
  );
  const planted = await get();
  assert.equal(planted.code, 1, planted.stderr);
  assert.match(planted.stderr, /crc32 mismatch/);
  await SERVED_DIGESTS.remember(
    "crc32",
    { ...opened, unchanged: always },
    crcBytes(content),
  );

  // A listing's SHA-256 of each file (ls --sha256) is remembered the same way.
  const sha = createHash("sha256").update(content).digest("hex");
  const ls = () => runFsd([net(server.port)], ["ls", "127.0.0.1", port, "--sha256"]);
  const listed = await ls();
  assert.equal(listed.code, 0, listed.stderr);
  assert.match(listed.stdout, new RegExp(`${sha}.*image\\.bin`));
  assert.equal(toHex(SERVED_DIGESTS.get("sha256", opened)!), sha);
  await SERVED_DIGESTS.remember("sha256", { ...opened, unchanged: always }, new Uint8Array(32));
  assert.match((await ls()).stdout, new RegExp(`${"0".repeat(64)}.*image\\.bin`));

  // A resume: the client has the first half; the remembered digest covers the whole file.
  await Deno.remove(`${local.path}/image.bin`);
  const partial = `${local.path}/.fsd-partial-image.bin`;
  await Deno.writeFile(partial, content.subarray(0, content.length / 2));
  const seconds = Math.floor(info.mtime!.getTime() / 1000);
  await Deno.utime(partial, seconds, seconds);
  const resumed = await runFsd([net(server.port), ...rw(local.path)], [
    "get",
    "127.0.0.1",
    port,
    "image.bin",
    `${local.path}/image.bin`,
    "--continue",
    "--json",
  ]);
  assert.equal(resumed.code, 0, resumed.stderr);
  const report = JSON.parse(resumed.stdout.trim().split("\n")[0]);
  assert.equal(report.bytes, content.length / 2); // only the rest moved
  assert.equal(report.verified, true);
  assert.deepEqual(await Deno.readFile(`${local.path}/image.bin`), content);

  // Written in place with the same size, its mtime put back: another version once settled.
  const rewritten = randomBytes(content.length, 12);
  await Deno.writeFile(path, rewritten);
  await Deno.utime(path, info.atime!, info.mtime!);
  const after = await settled(path);
  assert.equal(after.size, info.size);
  assert.equal(after.mtime!.getTime(), info.mtime!.getTime());
  const again = await get();
  assert.equal(again.code, 0, again.stderr);
  assert.notEqual(fileVersion(after), fileVersion(info));
  assert.deepEqual(await Deno.readFile(`${local.path}/image.bin`), rewritten);
  assert.deepEqual(
    SERVED_DIGESTS.get("crc32", { ...opened, version: fileVersion(after) }),
    crcBytes(rewritten),
  );
});
