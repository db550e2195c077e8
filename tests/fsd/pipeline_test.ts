/**
 * The `pipeline` option (docs/PROTOCOL.md, "Pipelined reads"): on a read
 * (RRQ, DRQ) the data follows the OACK at once and no ACK is due at all, so
 * a client may send its next requests before the answer; on anything else it
 * is answered 0. fsd's client sends downloads ahead of their turn once the
 * server has granted it, several requests to a socket write, and takes turns
 * with a server that does not grant it.
 */

import assert from "node:assert/strict";
import { FsdClient } from "../../lib/fsd/client.ts";
import { NotAnswered } from "../../lib/fsd/pipeline.ts";
import { MemorySink } from "../../lib/bytes/source_sink.ts";
import { randomBytes } from "../support/files.ts";
import { fakeServer, RawClient, readExactly, wire } from "../support/raw_client.ts";
import { startServer } from "../support/server.ts";

const encoder = new TextEncoder();
const PARAMS = { blockSize: 1000, windowSize: 1 };

Deno.test("pipeline: requests sent together are answered in order, no ACK due, a refusal between them included", async () => {
  await using ctx = await startServer();
  const f = randomBytes(2500);
  const g = randomBytes(1000); // an exact multiple: ends with an empty DAT
  await Deno.writeFile(`${ctx.root}/f`, f);
  await Deno.writeFile(`${ctx.root}/g`, g);
  await using client = await RawClient.greeted(ctx.port);
  // Window 1 would want an ACK after every block: pipelined, none is sent, ever.
  const ask = { blksize: "1000", windowsize: "1", tsize: "0", pipeline: "1" };
  await client.send(
    wire.opt(ask),
    wire.rrq("f"),
    wire.opt(ask),
    wire.rrq("missing"),
    wire.opt(ask),
    wire.rrq("g"),
  );
  assert.deepEqual(await client.expectOack(), { ...ask, tsize: "2500" });
  assert.deepEqual(await unacknowledged(client, 1000), { data: f, blocks: [1, 2, 3] });
  assert.match(await client.expectError(1), /missing/);
  assert.deepEqual(await client.expectOack(), { ...ask, tsize: "1000" });
  assert.deepEqual(await unacknowledged(client, 1000), { data: g, blocks: [1, 2] });
  await ctx.waitForLog(/RRQ "g": sent file, 1000 bytes/);
  // The connection goes on: a plain fsd/1 request, acknowledged as ever.
  const plain = await client.download("g");
  assert.deepEqual(plain.data, g);
});

Deno.test("pipeline: an ACK after a pipelined read is a violation: ERR 4 and a close", async () => {
  await using ctx = await startServer();
  await Deno.writeTextFile(`${ctx.root}/f`, "x");
  await using client = await RawClient.greeted(ctx.port);
  await client.send(wire.opt({ pipeline: "1" }), wire.rrq("f"));
  assert.deepEqual(await client.expectOack(), { pipeline: "1" });
  assert.equal(new TextDecoder().decode((await unacknowledged(client, 512)).data), "x");
  await client.send(wire.ack(1));
  assert.match(await client.expectError(4), /ACK/);
  await client.expectClosed();
});

Deno.test("pipeline: a client that sends hundreds of requests ahead and reads none holds one connection, not the server", async () => {
  await using ctx = await startServer();
  await Deno.writeFile(`${ctx.root}/big`, randomBytes(64 * 1024));
  await using hog = await RawClient.greeted(ctx.port);
  const ask = wire.concat(wire.opt({ blksize: "65464", pipeline: "1" }), wire.rrq("big"));
  // 500 requests for 32 MiB of answers: TCP takes a little, then the server waits on its write.
  await hog.send(...Array.from({ length: 500 }, () => ask));
  // Another client is served meanwhile, as ever.
  await using other = await RawClient.greeted(ctx.port);
  assert.equal((await other.download("big")).data.length, 64 * 1024);
});

Deno.test("pipeline: a directory's listing (DRQ) is pipelined too", async () => {
  await using ctx = await startServer();
  await Deno.writeTextFile(`${ctx.root}/a.txt`, "hello");
  await using client = await RawClient.greeted(ctx.port);
  await client.send(
    wire.opt({ kind: "0", pipeline: "1" }),
    wire.drq(),
    wire.opt({ kind: "0", pipeline: "1" }),
    wire.rrq("a.txt"),
  );
  assert.deepEqual(await client.expectOack(), { kind: "2", pipeline: "1" });
  assert.match(new TextDecoder().decode((await unacknowledged(client, 512)).data), /a\.txt/);
  assert.deepEqual(await client.expectOack(), { kind: "1", pipeline: "1" });
  assert.equal(new TextDecoder().decode((await unacknowledged(client, 512)).data), "hello");
});

Deno.test("pipeline: not a read, so answered 0: an upload is acknowledged as ever, mkdir ends the request", async () => {
  await using ctx = await startServer();
  await using client = await RawClient.greeted(ctx.port);
  await client.send(wire.opt({ tsize: "5", pipeline: "1" }), wire.wrq("up"));
  assert.deepEqual(await client.expectOack(), { tsize: "5", pipeline: "0" });
  await client.send(wire.dat(1, encoder.encode("hello")));
  assert.deepEqual(await client.read(), { op: "ACK", block: 1 });
  assert.equal(await Deno.readTextFile(`${ctx.root}/up`), "hello");
  await client.send(wire.opt({ mkdir: "1", pipeline: "1" }), wire.wrq("made"));
  assert.deepEqual(await client.expectOack(), { mkdir: "1", pipeline: "0" });
  assert.ok((await Deno.stat(`${ctx.root}/made`)).isDirectory);
});

Deno.test("pipeline: a value other than 0 or 1 is ERR 8 and a close", async () => {
  await using ctx = await startServer();
  await Deno.writeTextFile(`${ctx.root}/f`, "x");
  for (const value of ["2", "yes", ""]) {
    await using client = await RawClient.greeted(ctx.port);
    await client.send(wire.opt({ pipeline: value }), wire.rrq("f"));
    assert.match(await client.expectError(8), /pipeline/);
    await client.expectClosed();
  }
});

Deno.test("pipeline: fsd's client sends downloads ahead, several requests to a write, and every file arrives whole", async () => {
  await using ctx = await startServer();
  const files = Array.from({ length: 8 }, (_, i) => randomBytes(1500 + 700 * i));
  for (const [i, bytes] of files.entries()) await Deno.writeFile(`${ctx.root}/f${i}`, bytes);
  const writes: Uint8Array[] = [];
  const tap = {
    sent: (bytes: Uint8Array) => writes.push(bytes.slice()),
    received() {},
    closed() {},
  };
  const client = await FsdClient.connect("127.0.0.1", ctx.port, { tap });
  try {
    const sinks = files.map(() => new MemorySink());
    await Promise.all(
      files.map((_, i) => client.download(`f${i}`, sinks[i], { params: PARAMS })),
    );
    for (const [i, bytes] of files.entries()) assert.deepEqual(sinks[i].bytes(), bytes, `f${i}`);
    // The greeting's ACK, then OPT + RRQ eight times, and no other ACK.
    const sent = wire.concat(...writes);
    const rrqs = [...Array(8).keys()].map((i) => countOf(sent, wire.rrq(`f${i}`)));
    assert.deepEqual(rrqs, Array(8).fill(1));
    assert.equal(countOf(sent, encoder.encode("pipeline\u00001\u0000")), 8);
    assert.ok(writes.length < 8, `8 requests in ${writes.length} writes`);
    await ctx.waitForLog(/RRQ "f7": sent file/);
  } finally {
    client.close();
  }
});

Deno.test("pipeline: requests go out in the order of their turns, even one started while the grant is being read", async () => {
  await using ctx = await startServer();
  const files = [0, 1, 2].map((i) => randomBytes(900 + 400 * i, i + 20));
  for (const [i, bytes] of files.entries()) await Deno.writeFile(`${ctx.root}/f${i}`, bytes);
  const client = await FsdClient.connect("127.0.0.1", ctx.port);
  try {
    const sinks = files.map(() => new MemorySink());
    let third: Promise<number> | undefined;
    // f1 waits for f0's answer to learn whether it may go ahead; f2 starts the moment f0's
    // grant is known, before f1 has had a chance to send: f1's request must still go first.
    const first = client.download("f0", sinks[0], {
      params: PARAMS,
      onGranted: () => {
        third = client.download("f2", sinks[2], { params: PARAMS });
      },
    });
    const second = client.download("f1", sinks[1], { params: PARAMS });
    await Promise.all([first, second]);
    await third;
    for (const [i, bytes] of files.entries()) assert.deepEqual(sinks[i].bytes(), bytes, `f${i}`);
  } finally {
    client.close();
  }
});

Deno.test("pipeline: with a server that does not grant it, fsd's client sends each request after the answer before it", async () => {
  const content = encoder.encode("one block");
  let served = 0;
  let violation = "";
  await using fake = fakeServer(async (conn) => {
    await conn.write(wire.dat(1, encoder.encode("Hello from an older fsd")));
    let received: Uint8Array = new Uint8Array(0);
    for (let file = 0; file < 3; file++) {
      // Up to the end of an RRQ: the held ACKs and the OPT come before it.
      while (!endsWithRrq(received)) {
        const more = new Uint8Array(4096);
        const n = await conn.read(more);
        if (n === null) return;
        received = wire.concat(received, more.subarray(0, n));
      }
      received = new Uint8Array(0);
      await conn.write(wire.oack({ blksize: "1000", windowsize: "1" }));
      // ACK 0 must come now: a request sent ahead would be here instead.
      const ack0 = await readExactly(conn, 4);
      if (ack0?.join() !== wire.ack(0).join()) {
        violation = `got ${ack0} instead of ACK 0`;
        return;
      }
      await conn.write(wire.dat(1, content));
      const ack1 = await readExactly(conn, 4);
      if (ack1?.join() !== wire.ack(1).join()) {
        violation = `got ${ack1} instead of ACK 1`;
        return;
      }
      served++;
    }
  });
  const client = await FsdClient.connect("127.0.0.1", fake.port);
  try {
    const sinks = [0, 1, 2].map(() => new MemorySink());
    await Promise.all(sinks.map((sink, i) => client.download(`f${i}`, sink, { params: PARAMS })));
    for (const sink of sinks) assert.deepEqual(sink.bytes(), content);
  } finally {
    client.close();
  }
  await fake[Symbol.asyncDispose]();
  assert.equal(violation, "");
  assert.equal(served, 3);
});

Deno.test("pipeline: a connection that closes under downloads sent ahead fails the one answering and leaves the rest to be tried again", async () => {
  await using ctx = await startServer();
  await Deno.writeFile(`${ctx.root}/f`, randomBytes(3000));
  const client = await FsdClient.connect("127.0.0.1", ctx.port);
  try {
    const sink = () => new MemorySink();
    // The first answer grants pipeline; then three go ahead, and the first of them breaks.
    await client.download("f", sink(), { params: PARAMS });
    const broken: MemorySink = new MemorySink();
    broken.write = () => Promise.reject(new Error("disk gone"));
    const outcomes = await Promise.allSettled([
      client.download("f", broken, { params: PARAMS }),
      client.download("f", sink(), { params: PARAMS }),
      client.download("f", sink(), { params: PARAMS }),
    ]);
    assert.equal(outcomes[0].status, "rejected");
    for (const later of outcomes.slice(1)) {
      assert.ok(later.status === "rejected" && later.reason instanceof NotAnswered, String(later));
    }
    assert.ok(client.closed);
  } finally {
    client.close();
  }
});

Deno.test("pipeline: a server that closes between two answers leaves the downloads sent ahead after them to be tried again", async () => {
  const content = encoder.encode("one block");
  const answer = wire.concat(
    wire.oack({ blksize: "1000", windowsize: "1", pipeline: "1" }),
    wire.dat(1, content),
  );
  await using fake = fakeServer(async (conn) => {
    await conn.write(wire.dat(1, encoder.encode("Hello from fsd")));
    let received: Uint8Array = new Uint8Array(0);
    const requested = async (name: string) => {
      while (countOf(received, wire.rrq(name)) === 0) {
        const more = new Uint8Array(4096);
        const n = await conn.read(more);
        if (n === null) return false;
        received = wire.concat(received, more.subarray(0, n));
      }
      return true;
    };
    if (!await requested("f0")) return;
    await conn.write(answer); // grants pipeline: f1 and f2 are then sent ahead
    if (!await requested("f2")) return;
    await conn.write(answer); // f1's answer; then the close, before any of f2's
  });
  const client = await FsdClient.connect("127.0.0.1", fake.port);
  try {
    const sinks = [0, 1, 2].map(() => new MemorySink());
    await client.download("f0", sinks[0], { params: PARAMS });
    const outcomes = await Promise.allSettled(
      [1, 2].map((i) => client.download(`f${i}`, sinks[i], { params: PARAMS })),
    );
    assert.equal(outcomes[0].status, "fulfilled", String(outcomes[0]));
    assert.deepEqual(sinks[1].bytes(), content);
    const last = outcomes[1];
    assert.ok(last.status === "rejected" && last.reason instanceof NotAnswered, String(last));
  } finally {
    client.close();
  }
});

/** DAT blocks up to the short one, sending no ACK (a pipelined read's). */
async function unacknowledged(
  client: RawClient,
  blockSize: number,
): Promise<{ data: Uint8Array; blocks: number[] }> {
  const parts: Uint8Array[] = [];
  const blocks: number[] = [];
  for (;;) {
    const packet = await client.read();
    if (packet?.op !== "DAT") throw new Error(`expected DAT, got ${JSON.stringify(packet)}`);
    parts.push(packet.data);
    blocks.push(packet.block);
    if (packet.data.length < blockSize) return { data: wire.concat(...parts), blocks };
  }
}

/** Whether `bytes` ends with an RRQ (opcode 1, a name, its zero). */
function endsWithRrq(bytes: Uint8Array): boolean {
  return [0, 1, 2].some((i) => {
    const rrq = wire.rrq(`f${i}`);
    return bytes.length >= rrq.length &&
      rrq.every((b, at) => bytes[bytes.length - rrq.length + at] === b);
  });
}

function countOf(bytes: Uint8Array, needle: Uint8Array): number {
  let count = 0;
  outer: for (let at = 0; at + needle.length <= bytes.length; at++) {
    for (let i = 0; i < needle.length; i++) if (bytes[at + i] !== needle[i]) continue outer;
    count++;
  }
  return count;
}
