/**
 * The `eager` option (docs/PROTOCOL.md): on a read (RRQ, DRQ) the data
 * follows the OACK at once and the client sends no ACK 0; on anything else
 * it is answered 0 and nothing changes. A client facing a server that does
 * not know it (no `eager` in the OACK) still sends ACK 0.
 */

import assert from "node:assert/strict";
import { FsdClient } from "../../lib/fsd/client.ts";
import { MemorySink } from "../../lib/bytes/source_sink.ts";
import { randomBytes } from "../support/files.ts";
import { fakeServer, RawClient, readExactly, wire } from "../support/raw_client.ts";
import { startServer } from "../support/server.ts";

const encoder = new TextEncoder();

Deno.test("eager: the data follows the OACK with no ACK 0, and the connection goes on as before", async () => {
  await using ctx = await startServer();
  const content = randomBytes(2500);
  await Deno.writeFile(`${ctx.root}/f`, content);
  await using client = await RawClient.greeted(ctx.port);
  await client.send(
    wire.opt({ blksize: "1000", windowsize: "4", tsize: "0", eager: "1" }),
    wire.rrq("f"),
  );
  assert.deepEqual(await client.expectOack(), {
    blksize: "1000",
    windowsize: "4",
    tsize: "2500",
    eager: "1",
  });
  // No ACK 0: the blocks come anyway.
  const blocks: Uint8Array[] = [];
  for (let block = 1; block <= 3; block++) {
    const packet = await client.read();
    assert.ok(packet?.op === "DAT" && packet.block === block, JSON.stringify(packet));
    blocks.push(packet.data);
  }
  await client.send(wire.ack(3));
  assert.deepEqual(wire.concat(...blocks), content);

  // eager=0, on the same connection: the server waits for ACK 0 again.
  await client.send(wire.opt({ blksize: "1000", eager: "0" }), wire.rrq("f"));
  assert.deepEqual(await client.expectOack(), { blksize: "1000", eager: "0" });
  await client.send(wire.ack(0));
  const first = await client.read();
  assert.ok(first?.op === "DAT" && first.block === 1, JSON.stringify(first));
  await ctx.waitForLog(/RRQ "f": sent file, 2500 bytes/);
});

Deno.test("eager: a directory's listing (DRQ) follows its OACK at once too", async () => {
  await using ctx = await startServer();
  await Deno.writeTextFile(`${ctx.root}/a.txt`, "hello");
  await using client = await RawClient.greeted(ctx.port);
  await client.send(wire.opt({ kind: "0", eager: "1" }), wire.drq());
  assert.deepEqual(await client.expectOack(), { kind: "2", eager: "1" });
  const listing = await client.read();
  assert.ok(listing?.op === "DAT" && listing.block === 1, JSON.stringify(listing));
  assert.match(new TextDecoder().decode(listing.data), /a\.txt/);
  await client.send(wire.ack(1));
});

Deno.test("eager: not a read, so answered 0: an upload's OACK still takes ACK 0's place, mkdir still ends the request", async () => {
  await using ctx = await startServer();
  await using client = await RawClient.greeted(ctx.port);
  await client.send(wire.opt({ tsize: "5", eager: "1" }), wire.wrq("up"));
  assert.deepEqual(await client.expectOack(), { tsize: "5", eager: "0" });
  await client.send(wire.dat(1, encoder.encode("hello")));
  assert.deepEqual(await client.read(), { op: "ACK", block: 1 });
  assert.equal(await Deno.readTextFile(`${ctx.root}/up`), "hello");
  await client.send(wire.opt({ mkdir: "1", eager: "1" }), wire.wrq("made"));
  assert.deepEqual(await client.expectOack(), { mkdir: "1", eager: "0" });
  assert.ok((await Deno.stat(`${ctx.root}/made`)).isDirectory);
});

Deno.test("eager: a value other than 0 or 1 is ERR 8 and a close", async () => {
  await using ctx = await startServer();
  await Deno.writeTextFile(`${ctx.root}/f`, "x");
  for (const value of ["2", "yes", ""]) {
    await using client = await RawClient.greeted(ctx.port);
    await client.send(wire.opt({ eager: value }), wire.rrq("f"));
    assert.match(await client.expectError(8), /eager/);
    await client.expectClosed();
  }
});

Deno.test("eager: the client asks for it, and without it in the OACK (a server that does not know it) sends ACK 0", async () => {
  const content = encoder.encode("from a server without eager");
  let asked: string | undefined;
  let gotAck0 = false;
  await using fake = fakeServer(async (conn) => {
    await conn.write(wire.dat(1, encoder.encode("Hello from an older fsd")));
    // ACK 1 of the greeting, then OPT and RRQ "f": read up to the RRQ's name.
    let received: Uint8Array = new Uint8Array(0);
    const rrqEnd = wire.rrq("f");
    while (!endsWith(received, rrqEnd)) {
      const more = new Uint8Array(1024);
      const n = await conn.read(more);
      if (n === null) return;
      received = wire.concat(received, more.subarray(0, n));
    }
    asked = new TextDecoder().decode(received);
    await conn.write(wire.oack({ blksize: "1000", windowsize: "1" }));
    const ack0 = await readExactly(conn, 4);
    gotAck0 = ack0 !== null && ack0.join() === wire.ack(0).join();
    if (!gotAck0) return;
    await conn.write(wire.dat(1, content));
    await readExactly(conn, 4);
  });
  const client = await FsdClient.connect("127.0.0.1", fake.port);
  try {
    const sink = new MemorySink();
    await client.download("f", sink, { params: { blockSize: 1000, windowSize: 1 } });
    assert.deepEqual(sink.bytes(), content);
  } finally {
    client.close();
  }
  await fake[Symbol.asyncDispose]();
  assert.ok((asked ?? "").includes("eager\u00001\u0000"), "the client asks for eager");
  assert.ok(gotAck0, "ACK 0 came, since the OACK did not grant eager");
});

function endsWith(bytes: Uint8Array, tail: Uint8Array): boolean {
  if (bytes.length < tail.length) return false;
  return tail.every((b, i) => bytes[bytes.length - tail.length + i] === b);
}
