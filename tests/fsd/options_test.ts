/**
 * The options extension: OPT/OACK negotiation, windows of large blocks, the
 * transfer size, refusals; checked with hand-built packets on the wire.
 */

import assert from "node:assert/strict";
import { FsdClient } from "../../lib/fsd/client.ts";
import { PeerError } from "../../lib/store/errors.ts";
import { bytesSource, MemorySink } from "../../lib/bytes/source_sink.ts";
import { runFsd, spawnServe } from "../support/cli.ts";
import { randomBytes, tempDir } from "../support/files.ts";
import { RawClient, wire } from "../support/raw_client.ts";
import { startServer } from "../support/server.ts";

/** Downloads with a window, checking that an ACK is due exactly after each window and the last block. */
async function windowedDownload(client: RawClient, blockSize: number, windowSize: number) {
  const parts: Uint8Array[] = [];
  const blocks: number[] = [];
  const acked: number[] = [];
  let inWindow = 0;
  for (;;) {
    const packet = await client.read();
    assert.ok(packet?.op === "DAT", `expected DAT, got ${JSON.stringify(packet)}`);
    assert.ok(packet.data.length <= blockSize);
    parts.push(packet.data);
    blocks.push(packet.block);
    inWindow++;
    const last = packet.data.length < blockSize;
    if (last || inWindow === windowSize) {
      await client.send(wire.ack(packet.block));
      acked.push(packet.block);
      inWindow = 0;
    }
    if (last) return { data: wire.concat(...parts), blocks, acked };
  }
}

Deno.test("options: the server grants, lowers, and tells the size", async () => {
  await using ctx = await startServer();
  await Deno.writeFile(`${ctx.root}/f`, randomBytes(3000));
  await using client = await RawClient.greeted(ctx.port);
  await client.send(wire.opt({ blksize: "1000", windowsize: "4", tsize: "0" }), wire.rrq("f"));
  assert.deepEqual(await client.expectOack(), { blksize: "1000", windowsize: "4", tsize: "3000" });
  await client.send(wire.ack(0));
  const { blocks, acked } = await windowedDownload(client, 1000, 4);
  assert.deepEqual(blocks, [1, 2, 3, 4]); // 1000, 1000, 1000, 0
  assert.deepEqual(acked, [4]);

  // asking for more than the server allows: lowered, never raised; unknown names left out
  await client.send(
    wire.opt({ blksize: "65464", windowsize: "65535", colour: "blue" }),
    wire.rrq("f"),
  );
  assert.deepEqual(await client.expectOack(), { blksize: "65464", windowsize: "64" });
  await client.send(wire.ack(0));
  assert.equal((await windowedDownload(client, 65464, 64)).data.length, 3000);
  await ctx.waitForLog(
    /RRQ "f": sent file, 3000 bytes in [\d.]+ s \(blksize 65464, windowsize 64\)/,
  );
});

Deno.test("options: windows around the end of the file, exact multiples, a window straddling the last block", async () => {
  await using ctx = await startServer();
  await using client = await RawClient.greeted(ctx.port);
  // blksize 100, window 4: every size class near window and block boundaries
  for (const size of [0, 1, 99, 100, 101, 399, 400, 401, 599, 600, 801, 1000]) {
    const content = randomBytes(size, size + 7);
    await Deno.writeFile(`${ctx.root}/s${size}`, content);
    await client.send(wire.opt({ blksize: "100", windowsize: "4" }), wire.rrq(`s${size}`));
    await client.expectOack();
    await client.send(wire.ack(0));
    const { data, blocks, acked } = await windowedDownload(client, 100, 4);
    assert.deepEqual(data, content, `size ${size}`);
    assert.equal(blocks.length, Math.floor(size / 100) + 1, `size ${size}`);
    const expectedAcks = blocks.filter((_, i) => (i + 1) % 4 === 0 || i === blocks.length - 1);
    assert.deepEqual(acked, expectedAcks, `size ${size}`);
  }
});

Deno.test("options: windowed uploads, acknowledged per window, byte-exact", async () => {
  await using ctx = await startServer();
  await using client = await RawClient.greeted(ctx.port);
  for (const size of [0, 300, 1200, 1250]) {
    const content = randomBytes(size, size + 1);
    await client.send(
      wire.opt({ blksize: "100", windowsize: "3", tsize: String(size) }),
      wire.wrq(`u${size}`),
    );
    assert.deepEqual(await client.expectOack(), {
      blksize: "100",
      windowsize: "3",
      tsize: String(size),
    });
    let block = 1;
    for (let at = 0, inWindow = 0;; at += 100, block++) {
      const chunk = content.subarray(at, at + 100);
      await client.send(wire.dat(block, chunk));
      inWindow++;
      const last = chunk.length < 100;
      if (last || inWindow === 3) {
        await client.expectAck(block);
        inWindow = 0;
      }
      if (last) break;
    }
    assert.deepEqual(await Deno.readFile(`${ctx.root}/u${size}`), content);
  }
});

Deno.test("options: block numbers wrap from 65535 to 0 in windows", async () => {
  await using ctx = await startServer();
  const blockSize = 64;
  const content = randomBytes(65536 * blockSize + 10, 9); // blocks 1..65535, 0, 1
  await Deno.writeFile(`${ctx.root}/wrap`, content);
  const client = await FsdClient.connect("127.0.0.1", ctx.port);
  try {
    const sink = new MemorySink();
    await client.download("wrap", sink, { params: { blockSize, windowSize: 7 } });
    const got = sink.bytes();
    assert.ok(got.length === content.length && got.every((b, i) => b === content[i]));
    await client.upload("wrapped", bytesSource(content), { params: { blockSize, windowSize: 7 } });
  } finally {
    client.close();
  }
  const stored = await Deno.readFile(`${ctx.root}/wrapped`);
  assert.ok(stored.length === content.length && stored.every((b, i) => b === content[i]));
});

Deno.test("options: out-of-range values are ERR 8 and a close", async () => {
  await using ctx = await startServer();
  const cases: Record<string, string>[] = [
    { blksize: "7" },
    { blksize: "65465" },
    { blksize: "lots" },
    { windowsize: "0" },
    { windowsize: "65536" },
    { tsize: "-1" },
    { colour: "blue" }, // nothing this server knows
  ];
  for (const pairs of cases) {
    await using client = await RawClient.greeted(ctx.port);
    await client.send(wire.opt(pairs), wire.rrq("f"));
    assert.match(
      await client.expectError(8),
      /^option negotiation failed: /,
      JSON.stringify(pairs),
    );
    await client.expectClosed();
  }
});

Deno.test("options: OPT must be followed by a request", async () => {
  await using ctx = await startServer();
  for (const next of [wire.ack(0), wire.opt({ blksize: "512" }), wire.dat(1, new Uint8Array(1))]) {
    await using client = await RawClient.greeted(ctx.port);
    await client.send(wire.opt({ blksize: "512" }), next);
    await client.expectError(4);
    await client.expectClosed();
  }
});

Deno.test("options: DAT larger than the negotiated block is illegal", async () => {
  await using ctx = await startServer();
  await using client = await RawClient.greeted(ctx.port);
  await client.send(wire.opt({ blksize: "100" }), wire.wrq("big"));
  await client.expectOack();
  await client.send(wire.dat(1, new Uint8Array(101)));
  assert.match(await client.expectError(4), /data block too large: 101 bytes, at most 100/);
  await client.expectClosed();
});

Deno.test("options: a declared upload over --max-upload is refused before any data, connection usable", async () => {
  await using ctx = await startServer({ maxUploadBytes: 1000 });
  await using client = await RawClient.greeted(ctx.port);
  await client.send(wire.opt({ blksize: "512", tsize: "1001" }), wire.wrq("big"));
  assert.equal(await client.expectError(3), "upload too large: 1001 bytes, at most 1000");
  await client.send(wire.drq());
  await client.receiveBlocks();
  const library = await FsdClient.connect("127.0.0.1", ctx.port);
  try {
    await assert.rejects(
      library.upload("big", bytesSource(new Uint8Array(2000)), {
        params: { blockSize: 1024, windowSize: 4 },
        size: 2000,
      }),
      (e: unknown) => e instanceof PeerError && e.code === 3,
    );
  } finally {
    library.close();
  }
});

Deno.test("options: the client library reads the OACK and hears the size", async () => {
  await using ctx = await startServer();
  const content = randomBytes(200_000, 4);
  await Deno.writeFile(`${ctx.root}/f`, content);
  const client = await FsdClient.connect("127.0.0.1", ctx.port);
  try {
    const sink = new MemorySink();
    let size = -1;
    await client.download("f", sink, {
      params: { blockSize: 4096, windowSize: 8 },
      onSize: (n) => size = n,
    });
    assert.equal(size, 200_000);
    assert.deepEqual(sink.bytes(), content);
    // the connection goes on in fsd/1 afterwards
    const again = new MemorySink();
    await client.download("f", again);
    assert.deepEqual(again.bytes(), content);
  } finally {
    client.close();
  }
});

Deno.test("options CLI: get and put ask for large blocks by default; --fsd1 does not", async () => {
  await using served = await tempDir();
  await using work = await tempDir();
  const content = randomBytes(300_000, 5);
  await Deno.writeFile(`${served.path}/big.bin`, content);
  await using server = await spawnServe(served.path);
  const port = String(server.port);
  const flags = [
    `--allow-net=127.0.0.1:${port}`,
    `--allow-read=${work.path}`,
    `--allow-write=${work.path}`,
  ];
  const fast = await runFsd(flags, ["get", "127.0.0.1", port, "big.bin"], { cwd: work.path });
  assert.equal(fast.code, 0, fast.stderr);
  assert.deepEqual(await Deno.readFile(`${work.path}/big.bin`), content);
  await server.waitForLine(
    /RRQ "big\.bin": sent file, 300000 bytes in [\d.]+ s \(blksize 65464, windowsize 16\)$/,
  );
  const plain = await runFsd(flags, ["get", "127.0.0.1", port, "big.bin", "plain.bin", "--fsd1"], {
    cwd: work.path,
  });
  assert.equal(plain.code, 0, plain.stderr);
  assert.deepEqual(await Deno.readFile(`${work.path}/plain.bin`), content);
  await server.waitForLine(/RRQ "big\.bin": sent file, 300000 bytes in [\d.]+ s$/);
  const put = await runFsd(flags, [
    "put",
    "127.0.0.1",
    port,
    `${work.path}/plain.bin`,
    "up.bin",
    "--blksize",
    "1024",
    "--window",
    "4",
  ]);
  assert.equal(put.code, 0, put.stderr);
  assert.deepEqual(await Deno.readFile(`${served.path}/up.bin`), content);
  await server.waitForLine(
    /WRQ "up\.bin": received file, 300000 bytes in [\d.]+ s \(blksize 1024, windowsize 4\)$/,
  );
  for (
    const [args, pattern] of [[["--blksize", "7"], /invalid --blksize: 7/], [
      ["--window", "70000"],
      /invalid --window: 70000/,
    ], [["--fsd1", "--window", "2"], /--fsd1 takes no/]] as const
  ) {
    const bad = await runFsd([], ["get", "127.0.0.1", port, "x", ...args]);
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, pattern);
  }
});

Deno.test("options CLI: against a server that speaks only fsd/1, get and put fall back to plain fsd/1", async () => {
  await using served = await tempDir();
  await using work = await tempDir();
  const content = randomBytes(5000, 6);
  await Deno.writeFile(`${served.path}/f.bin`, content);
  await Deno.writeFile(`${work.path}/up.bin`, content);
  await using server = await spawnServe(served.path, 0, ["--fsd1"]);
  const port = String(server.port);
  const flags = [
    `--allow-net=127.0.0.1:${port}`,
    `--allow-read=${work.path}`,
    `--allow-write=${work.path}`,
  ];

  const got = await runFsd(flags, ["get", "127.0.0.1", port, "f.bin"], { cwd: work.path });
  assert.equal(got.code, 0, got.stderr);
  assert.deepEqual(await Deno.readFile(`${work.path}/f.bin`), content);
  // the first connection's OPT was an unknown opcode; the second did plain fsd/1
  await server.waitForLine(/^\[1\] error 4: unknown opcode: 7; closing$/);
  await server.waitForLine(/^\[2\] RRQ "f\.bin": sent file, 5000 bytes in [\d.]+ s$/);

  const stdout = await runFsd(flags, ["get", "127.0.0.1", port, "f.bin", "-"]);
  assert.deepEqual(stdout.stdoutBytes, content);

  const put = await runFsd(flags, ["put", "127.0.0.1", port, `${work.path}/up.bin`]);
  assert.equal(put.code, 0, put.stderr);
  assert.deepEqual(await Deno.readFile(`${served.path}/up.bin`), content);

  const piped = await runFsd([`--allow-net=127.0.0.1:${port}`], [
    "put",
    "127.0.0.1",
    port,
    "-",
    "piped.bin",
  ], {
    stdin: content,
  });
  assert.equal(piped.code, 0, piped.stderr);
  assert.deepEqual(await Deno.readFile(`${served.path}/piped.bin`), content);
  assert.deepEqual((await Array.fromAsync(Deno.readDir(work.path))).map((e) => e.name).sort(), [
    "f.bin",
    "up.bin",
  ]);
});
