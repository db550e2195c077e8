/**
 * A client's upload reads a regular file's first SYNC_READ_BYTES
 * synchronously (it serves nobody else, so no hand-off to Deno's threads for
 * a small file), and the rest asynchronously, ahead of the network.
 */

import assert from "node:assert/strict";
import { openLocal } from "../../commands/client/upload.ts";
import { SYNC_READ_BYTES } from "../../lib/bytes/source_sink.ts";
import { settledAtOnce } from "../support/settled.ts";

Deno.test("put: a file's first SYNC_READ_BYTES are read synchronously, the rest ahead, async", async () => {
  const dir = await Deno.makeTempDir();
  const block = 64 * 1024;
  try {
    await Deno.writeFile(`${dir}/small`, new Uint8Array(1000).fill(7));
    await Deno.writeFile(`${dir}/large`, new Uint8Array(8 * block));
    const small = await openLocal(`${dir}/small`);
    const bytes = new Uint8Array(block);
    assert.equal(await small.source.read(bytes), 1000);
    assert.deepEqual(bytes.subarray(0, 1000), new Uint8Array(1000).fill(7));
    assert.equal(await small.source.read(bytes), null);
    small.close();
    const large = await openLocal(`${dir}/large`);
    const synced = SYNC_READ_BYTES / block + 1;
    assert.deepEqual(await settledAtOnce(large.source, block), [
      ...Array(synced).fill(true),
      ...Array(8 + 1 - synced).fill(false),
    ]);
    large.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
