/**
 * The data path of lib/fsd/window.ts and lib/bytes/chunked.ts: file buffers that grow once a transfer is
 * long, reading ahead of and writing behind the network for regular files
 * only, and failures of either surfacing as the transfer's error.
 */

import assert from "node:assert/strict";
import type { TransferParams } from "../../lib/fsd/negotiation.ts";
import { largeBufferSlotsInUse } from "../../lib/bytes/chunked.ts";
import { dropFreeBuffers, freeBufferBytes, giveBuffer, takeBuffer } from "../../lib/bytes/pool.ts";
import {
  type ByteSink,
  type ByteSource,
  fileSink,
  fileSource,
} from "../../lib/bytes/source_sink.ts";
import { runFsd } from "../support/cli.ts";
import { firstDifference, randomBytes, tempDir } from "../support/files.ts";
import { startServer, withClient } from "../support/server.ts";

const MIB = 1024 * 1024;
// Past the 4 MiB switch to 1 MiB buffers, and no multiple of any buffer or block.
const LONG = 9 * MIB + 12_345;

Deno.test("transfer: long files arrive intact both ways between files, across buffer sizes and block sizes", async () => {
  await using ctx = await startServer();
  await using local = await tempDir();
  const content = randomBytes(LONG, 31);
  await Deno.writeFile(`${ctx.root}/long`, content);
  await Deno.writeFile(`${local.path}/long`, content);
  // Blocks that straddle every buffer boundary, the largest block, and fsd/1.
  const cases: (TransferParams | undefined)[] = [
    { blockSize: 1000, windowSize: 5 },
    { blockSize: 65464, windowSize: 16 },
    undefined,
  ];
  for (const [i, params] of cases.entries()) {
    const label = params ? `blksize ${params.blockSize}` : "fsd/1";
    await withClient(ctx.port, async (client) => {
      const into = await Deno.open(`${local.path}/down${i}`, { write: true, createNew: true });
      try {
        assert.equal(await client.download("long", fileSink(into), { params }), LONG);
      } finally {
        into.close();
      }
      const from = await Deno.open(`${local.path}/long`);
      try {
        assert.equal(await client.upload(`up${i}`, fileSource(from), { params }), LONG);
      } finally {
        from.close();
      }
    });
    await ctx.waitForLog(new RegExp(`WRQ "up${i}": received file`)); // the server's side is done
    assert.equal(largeBufferSlotsInUse(), 0, "every transfer gives its large buffers back");
    const down = await Deno.readFile(`${local.path}/down${i}`);
    assert.equal(firstDifference(down, content), -1, `download, ${label}`);
    const up = await Deno.readFile(`${ctx.root}/up${i}`);
    assert.equal(firstDifference(up, content), -1, `upload, ${label}`);
  }
});

Deno.test("transfer: fsd get and fsd put move a long file intact with their defaults", async () => {
  await using ctx = await startServer();
  await using local = await tempDir();
  const content = randomBytes(LONG, 32);
  await Deno.writeFile(`${ctx.root}/long`, content);
  const net = `--allow-net=127.0.0.1:${ctx.port}`;
  const files = [`--allow-read=${local.path}`, `--allow-write=${local.path}`];
  const got = await runFsd(
    [net, ...files],
    ["get", "127.0.0.1", String(ctx.port), "long", `${local.path}/long`],
  );
  assert.equal(got.code, 0, got.stderr);
  assert.equal(firstDifference(await Deno.readFile(`${local.path}/long`), content), -1);
  const put = await runFsd(
    [net, `--allow-read=${local.path}`],
    ["put", "127.0.0.1", String(ctx.port), `${local.path}/long`, "back"],
  );
  assert.equal(put.code, 0, put.stderr);
  assert.equal(firstDifference(await Deno.readFile(`${ctx.root}/back`), content), -1);
});

Deno.test("transfer: a read that fails while reading ahead ends the upload with its error", async () => {
  await using ctx = await startServer();
  let reads = 0;
  const failing: ByteSource = {
    regularFile: true,
    read(buffer) {
      reads++;
      // The failing read is the one started ahead, while earlier windows are still in flight.
      if (reads === 2) return Promise.reject(new Error("input/output error: the disk went away"));
      buffer.fill(7);
      return Promise.resolve(buffer.length);
    },
  };
  await withClient(ctx.port, async (client) => {
    await assert.rejects(
      client.upload("broken", failing, { params: { blockSize: 1000, windowSize: 5 } }),
      /the disk went away/,
    );
  });
  await ctx.waitForLog(/WRQ "broken": .*clos/); // logged once the staging file is gone
  assert.deepEqual([...Deno.readDirSync(ctx.root)], [], "nothing published, nothing staged left");
});

Deno.test("transfer: a write that fails behind the network ends the download with its error", async () => {
  await using ctx = await startServer();
  await Deno.writeFile(`${ctx.root}/long`, randomBytes(LONG, 33));
  let writes = 0;
  const failing: ByteSink = {
    regularFile: true,
    write(bytes) {
      writes++;
      if (writes === 2) return Promise.reject(new Error("no space left on device"));
      return Promise.resolve(bytes.length);
    },
  };
  await withClient(ctx.port, async (client) => {
    await assert.rejects(
      client.download("long", failing, { params: { blockSize: 65464, windowSize: 16 } }),
      /no space left on device/,
    );
  });
});

Deno.test("transfer: a download resolves only once every write behind it has finished and succeeded", async () => {
  await using ctx = await startServer();
  await Deno.writeFile(`${ctx.root}/long`, randomBytes(LONG, 34));
  const params = { blockSize: 65464, windowSize: 16 };
  /** A sink whose writes take a while; the one that completes the file fails if `failLast`. */
  const slowSink = (failLast: boolean) => {
    const sink = {
      finished: 0,
      regularFile: true,
      async write(bytes: Uint8Array) {
        await new Promise((resolve) => setTimeout(resolve, 1));
        if (failLast && sink.finished + bytes.length === LONG) {
          throw new Error("input/output error: the last write");
        }
        sink.finished += bytes.length;
        return bytes.length;
      },
    };
    return sink;
  };
  await withClient(ctx.port, async (client) => {
    const sink = slowSink(false);
    assert.equal(await client.download("long", sink, { params }), LONG);
    assert.equal(sink.finished, LONG);
  });
  await withClient(ctx.port, async (client) => {
    await assert.rejects(client.download("long", slowSink(true), { params }), /the last write/);
  });
  await ctx.server.close();
  assert.equal(largeBufferSlotsInUse(), 0, "a failed transfer gives its large buffers back");
});

Deno.test("transfer: a source that is not a regular file (stdin, a pipe) is never read ahead", async () => {
  await using ctx = await startServer();
  let reads = 0;
  let readsWhenTwoBlocksWereAcked = -1;
  const pipe: ByteSource = {
    read(buffer) {
      reads++;
      if (reads > 1) return Promise.resolve(null);
      buffer.fill(1, 0, 3 * 512);
      return Promise.resolve(3 * 512);
    },
  };
  await withClient(ctx.port, async (client) => {
    const sent = await client.upload("piped", pipe, {
      onProgress: (bytes) => {
        if (bytes === 1024) readsWhenTwoBlocksWereAcked = reads;
      },
    });
    assert.equal(sent, 3 * 512);
  });
  assert.equal(readsWhenTwoBlocksWereAcked, 1, "a second read started before it was needed");
});

Deno.test("transfer: at most 64 transfers hold large buffers at once, and failed ones give them back", async () => {
  await using ctx = await startServer();
  const size = 5 * MIB; // past the switch to large buffers
  const content = randomBytes(size, 35);
  await Deno.writeFile(`${ctx.root}/f`, content);
  let most = 0;
  const discard: ByteSink = { write: (bytes) => Promise.resolve(bytes.length) };
  // 70 downloads: 140 claimants in this process, the server's reads and the clients' writes.
  const sizes = await Promise.all(
    Array.from(
      { length: 70 },
      () =>
        withClient(ctx.port, (client) =>
          client.download("f", discard, {
            params: { blockSize: 65464, windowSize: 16 },
            onProgress: () => most = Math.max(most, largeBufferSlotsInUse()),
          })),
    ),
  );
  assert.ok(sizes.every((n) => n === size));
  assert.ok(most >= 1 && most <= 64, `${most} transfers held large buffers at once`);
  await ctx.server.close(); // its sending sides are done too
  assert.equal(largeBufferSlotsInUse(), 0);
});

Deno.test("transfer: files one after another and at once stay intact though their buffers are reused", async () => {
  await using ctx = await startServer();
  await using local = await tempDir();
  // Sizes around the block (65464), the 64 KiB chunk and the batch, each with its own bytes.
  const sizes = [0, 1, 1024, 65463, 65464, 65536, 65537, 196_404, 300_000, 2 * MIB + 7];
  const contents = sizes.map((size, i) => randomBytes(size, 100 + i));
  for (const [i, content] of contents.entries()) {
    await Deno.writeFile(`${ctx.root}/f${i}`, content);
  }
  const params = { blockSize: 65464, windowSize: 16 };
  const fetch = async (client: Parameters<Parameters<typeof withClient>[1]>[0], i: number) => {
    const path = `${local.path}/d${i}-${crypto.randomUUID()}`;
    const into = await Deno.open(path, { write: true, createNew: true });
    try {
      // Synchronous writes for the first 100,000 bytes, then behind the network.
      await client.download(`f${i}`, fileSink(into, undefined, 100_000), { params });
    } finally {
      into.close();
    }
    const got = await Deno.readFile(path);
    assert.equal(firstDifference(got, contents[i]), -1, `f${i} (${sizes[i]} bytes)`);
  };
  await withClient(ctx.port, async (client) => {
    for (let round = 0; round < 2; round++) {
      for (const i of sizes.keys()) await fetch(client, i);
    }
  });
  // Four connections at once, each through every file: buffers go back and out interleaved.
  await Promise.all(
    [0, 1, 2, 3].map((lane) =>
      withClient(ctx.port, async (client) => {
        for (const i of sizes.keys()) await fetch(client, (i + lane * 3) % sizes.length);
      })
    ),
  );
});

Deno.test("transfer: the buffer pool keeps whole buffers once each, and no more than its bound", () => {
  dropFreeBuffers();
  const before = freeBufferBytes();
  const whole = takeBuffer(4096);
  giveBuffer(whole);
  giveBuffer(whole);
  assert.equal(freeBufferBytes(), before + 4096, "a buffer given twice is kept once");
  assert.equal(takeBuffer(4096), whole, "the next taker of that size gets it");
  assert.notEqual(takeBuffer(4096), whole, "and only one taker does");
  giveBuffer(new Uint8Array(8192).subarray(0, 4096));
  assert.equal(freeBufferBytes(), before, "a view is never kept");
  giveBuffer(new Uint8Array(512 * 1024));
  assert.equal(freeBufferBytes(), before, "nor a buffer over 256 KiB");
  const many = Array.from({ length: 40 }, () => new Uint8Array(200 * 1024));
  many.forEach(giveBuffer);
  assert.ok(freeBufferBytes() <= 4 * MIB, `at most 4 MiB kept, ${freeBufferBytes()} bytes`);
  dropFreeBuffers();
});
