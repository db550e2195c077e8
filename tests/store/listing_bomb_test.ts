/**
 * The listing bomb of issue 18, item 5: directories made as fast as a client
 * can ask, listings of huge directories, and digests hashed for a client
 * that has gone. Listings are capped, made as they are sent, and directory
 * creation is rate-limited per client.
 */

import assert from "node:assert/strict";
import { FsdClient } from "../../lib/fsd/client.ts";
import { FileServer } from "../../lib/fsd/server.ts";
import { PeerError } from "../../lib/store/errors.ts";
import { type ListingEntry, listingSource, MAX_LISTING_ENTRIES } from "../../lib/store/listing.ts";
import { MKDIR_RATE } from "../../lib/store/rate.ts";
import { tempDir } from "../support/files.ts";

async function server(root: string) {
  const started = await FileServer.start({ root, port: 0, hostname: "127.0.0.1" });
  return { port: started.addr.port, [Symbol.asyncDispose]: () => started.close() };
}

Deno.test("listing bomb: one client's new directories are rate-limited (OPT mkdir=1)", async () => {
  await using dir = await tempDir();
  await using served = await server(dir.path);
  const client = await FsdClient.connect("127.0.0.1", served.port);
  try {
    let made = 0;
    let refusal: unknown;
    for (let n = 0; n < MKDIR_RATE.burst * 4 && refusal === undefined; n++) {
      await client.makeDirectory(`d${n}`).then(() => made++, (error) => refusal = error);
    }
    assert.ok(refusal instanceof PeerError, String(refusal));
    assert.equal(refusal.code, 0);
    assert.match(refusal.message, /^too many new directories from 127\.0\.0\.1: try again in 1 s$/);
    // The burst, plus what it earned back meanwhile; never the hundreds a second of the attack.
    assert.ok(made >= MKDIR_RATE.burst && made < MKDIR_RATE.burst * 2, `${made} made`);
    assert.equal((await Array.fromAsync(Deno.readDir(dir.path))).length, made);
  } finally {
    client.close();
  }
});

Deno.test("listing bomb: a directory with too many entries is refused with a clear error", async () => {
  await using dir = await tempDir();
  await Deno.mkdir(`${dir.path}/big`);
  for (let n = 0; n <= MAX_LISTING_ENTRIES; n++) Deno.mkdirSync(`${dir.path}/big/${n}`);
  await using served = await server(dir.path);
  const client = await FsdClient.connect("127.0.0.1", served.port);
  try {
    await assert.rejects(
      client.list("big"),
      (error: unknown) =>
        error instanceof PeerError && error.code === 0 &&
        error.message === `directory too large to list: more than ${MAX_LISTING_ENTRIES} entries`,
    );
  } finally {
    client.close();
  }
});

Deno.test("listing bomb: a listing's digests are computed only as it is read", async () => {
  const entries: ListingEntry[] = Array.from({ length: 1000 }, (_, n) => ({
    kind: "f",
    size: n,
    mtime: new Date(0),
    name: `file-${String(n).padStart(4, "0")}`,
  }));
  let hashed = 0;
  const { source, size } = listingSource(entries, true, () => {
    hashed++;
    return Promise.resolve("a".repeat(64));
  });
  assert.equal(hashed, 0); // the size is known before any hashing
  const buffer = new Uint8Array(512);
  assert.equal(await source.read(buffer), 512);
  // A client that hangs up after the first block has cost a handful of digests, not a thousand.
  assert.ok(hashed > 0 && hashed <= 6, `${hashed} hashed`);
  let total = 512;
  for (let n; (n = await source.read(buffer)) !== null;) total += n;
  assert.equal(total, size);
  assert.equal(hashed, 1000);
});
