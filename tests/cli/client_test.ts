/** The client library against the real server, and against fake servers that misbehave. */

import assert from "node:assert/strict";
import { FsdClient } from "../../lib/fsd/client.ts";
import { NotFsdError } from "../../lib/fsd/greeting.ts";
import { PeerError, ProtocolError } from "../../lib/store/errors.ts";
import { bytesSource, MemorySink } from "../../lib/bytes/source_sink.ts";
import { randomBytes, text } from "../support/files.ts";
import { fakeServer, readExactly, wire, withDeadline } from "../support/raw_client.ts";
import { startServer } from "../support/server.ts";

Deno.test("client: greeting, download, upload and listing on one connection", async () => {
  await using ctx = await startServer({ name: "box" });
  const content = randomBytes(70_000, 3);
  await Deno.writeFile(`${ctx.root}/data.bin`, content);
  const client = await FsdClient.connect("127.0.0.1", ctx.port);
  try {
    assert.equal(client.greeting, "Hello from box's fileserver");
    const sink = new MemorySink();
    const progress: number[] = [];
    assert.equal(
      await client.download("data.bin", sink, { onProgress: (n) => progress.push(n) }),
      content.length,
    );
    assert.deepEqual(sink.bytes(), content);
    assert.equal(progress.at(-1), content.length);
    assert.equal(await client.upload("copy.bin", bytesSource(content)), content.length);
    assert.deepEqual(await Deno.readFile(`${ctx.root}/copy.bin`), content);
    const entries = await client.list();
    assert.deepEqual(entries.map((e) => [e.kind, e.size, e.name]), [
      ["f", 70_000, "copy.bin"],
      ["f", 70_000, "data.bin"],
    ]);
    assert.ok(entries.every((e) => e.mtime instanceof Date && !Number.isNaN(e.mtime.getTime())));
  } finally {
    client.close();
  }
});

Deno.test("client: a refusal is a PeerError and the connection stays usable", async () => {
  await using ctx = await startServer();
  await Deno.writeTextFile(`${ctx.root}/there`, "yes");
  await Deno.mkdir(`${ctx.root}/d`);
  const client = await FsdClient.connect("127.0.0.1", ctx.port);
  try {
    await assert.rejects(client.download("missing", new MemorySink()), (e: unknown) => {
      return e instanceof PeerError && e.code === 1 && e.message === "file not found: missing";
    });
    await assert.rejects(client.upload("there", bytesSource(new Uint8Array(3))), (e: unknown) => {
      return e instanceof PeerError && e.code === 6;
    });
    await assert.rejects(client.download("../x", new MemorySink()), (e: unknown) => {
      return e instanceof PeerError && e.code === 2;
    });
    await assert.rejects(client.list("there"), /not a directory: there/);
    assert.deepEqual((await client.list("d")).length, 0);
    const sink = new MemorySink();
    await client.download("there", sink);
    assert.equal(text.decode(sink.bytes()), "yes");
  } finally {
    client.close();
  }
});

Deno.test("client: a short read from the source never ends a block early", async () => {
  await using ctx = await startServer();
  const content = randomBytes(5000, 9);
  let offset = 0;
  // Hands out 7 bytes at a time, like a slow pipe.
  const trickle = {
    read(buffer: Uint8Array) {
      if (offset >= content.length) return Promise.resolve(null);
      const n = Math.min(7, buffer.length, content.length - offset);
      buffer.set(content.subarray(offset, offset + n));
      offset += n;
      return Promise.resolve(n);
    },
  };
  const client = await FsdClient.connect("127.0.0.1", ctx.port);
  try {
    await client.upload("trickled", trickle);
  } finally {
    client.close();
  }
  assert.deepEqual(await Deno.readFile(`${ctx.root}/trickled`), content);
});

Deno.test("client: gives up on a server that says nothing", async () => {
  let release!: () => void;
  const released = new Promise<void>((resolve) => release = resolve);
  await using fake = fakeServer(() => released);
  try {
    await assert.rejects(
      FsdClient.connect("127.0.0.1", fake.port, { timeoutMs: 200 }),
      (e: unknown) =>
        e instanceof NotFsdError && e.message === "connected, but no fsd greeting within 0.2 s",
    );
  } finally {
    release();
  }
});

Deno.test("client: gives up on a server that stalls mid-transfer", async () => {
  let release!: () => void;
  const released = new Promise<void>((resolve) => release = resolve);
  await using fake = fakeServer(async (conn) => {
    await conn.write(wire.dat(1, text.encode("hi")));
    await readExactly(conn, 4 + 4); // ACK 1, RRQ "f"
    await conn.write(wire.dat(1, new Uint8Array(512)));
    await released;
  });
  const client = await FsdClient.connect("127.0.0.1", fake.port, { timeoutMs: 200 });
  try {
    await assert.rejects(client.download("f", new MemorySink()), Deno.errors.TimedOut);
  } finally {
    client.close();
    release();
  }
});

Deno.test("client: a server breaking the protocol gets ERR 4 and the connection is closed", async () => {
  let heard: Uint8Array | undefined;
  await using fake = fakeServer(async (conn) => {
    await conn.write(wire.dat(1, text.encode("hi")));
    await readExactly(conn, 4 + 4); // ACK 1, RRQ "f"
    await conn.write(wire.dat(2, new Uint8Array(10))); // DAT 2 where DAT 1 is due
    heard = await readExactly(conn, 4) ?? undefined;
  });
  const client = await FsdClient.connect("127.0.0.1", fake.port);
  try {
    await assert.rejects(client.download("f", new MemorySink()), (e: unknown) => {
      return e instanceof ProtocolError &&
        /wrong block number: got DAT 2, expected DAT 1/.test(e.message);
    });
    await assert.rejects(client.list(), Deno.errors.NotConnected);
  } finally {
    client.close();
  }
  await fake[Symbol.asyncDispose]();
  assert.deepEqual(heard?.subarray(0, 4), new Uint8Array([0, 5, 0, 4]));
});

Deno.test("client: an oversized greeting is refused", async () => {
  await using fake = fakeServer(async (conn) => {
    for (let block = 1; block <= 20; block++) {
      await conn.write(wire.dat(block, new Uint8Array(512)));
      const answer = await readExactly(conn, 4);
      if (answer === null || answer[1] !== 4) return; // closed, or ERR instead of ACK
    }
  });
  await assert.rejects(
    withDeadline(FsdClient.connect("127.0.0.1", fake.port), "connect"),
    (e: unknown) => e instanceof ProtocolError && /allocation exceeded/.test(e.message),
  );
});

Deno.test("client: a refused connection is reported", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  await assert.rejects(FsdClient.connect("127.0.0.1", port), Deno.errors.ConnectionRefused);
});
