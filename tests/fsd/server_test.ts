/**
 * Every fsd/1 rule of the server, checked with a raw client that sends
 * hand-built packets over a real socket and reads the bytes that come back.
 */

import assert from "node:assert/strict";
import { dirNames, randomBytes, tempDir, text } from "../support/files.ts";
import { RawClient, type RawClient as Raw, wire } from "../support/raw_client.ts";
import { startServer } from "../support/server.ts";

const ERR = { NOT_FOUND: 1, ACCESS: 2, ILLEGAL: 4, EXISTS: 6 } as const;

/** The connection still serves requests: a listing of the root comes back. */
async function assertUsable(client: Raw): Promise<void> {
  assert.match(await client.listRoot(), /^([fd] \d+ \S+ .+\n)*$/);
}

// ---- greeting ----

Deno.test("greeting: DAT 1 with the server's name, then requests", async () => {
  await using ctx = await startServer({ name: "lab7" });
  await using client = await RawClient.connect(ctx.port);
  const greeting = await client.read();
  assert.equal(greeting?.op, "DAT");
  assert.ok(greeting?.op === "DAT");
  assert.equal(greeting.block, 1);
  assert.equal(text.decode(greeting.data), "Hello from lab7's fileserver");
  await client.send(wire.ack(1));
  await assertUsable(client);
});

Deno.test("greeting: a very long name still fits one short block", async () => {
  await using ctx = await startServer({ name: "n".repeat(2000) });
  await using client = await RawClient.connect(ctx.port);
  const greeting = await client.read();
  assert.ok(greeting?.op === "DAT" && greeting.block === 1 && greeting.data.length < 512);
  assert.match(text.decode(greeting.data), /^Hello from n+'s fileserver$/);
});

Deno.test("greeting: any answer but ACK 1 gets ERR 4 and a close", async () => {
  for (
    const answer of [
      wire.ack(2),
      wire.ack(0),
      wire.drq(),
      wire.rrq("x"),
      wire.dat(1, new Uint8Array(3)),
    ]
  ) {
    await using ctx = await startServer();
    await using client = await RawClient.connect(ctx.port);
    await client.read();
    await client.send(answer);
    await client.expectError(ERR.ILLEGAL);
    await client.expectClosed();
  }
});

Deno.test("greeting: the connection is logged", async () => {
  await using ctx = await startServer();
  await using client = await RawClient.greeted(ctx.port);
  const local = client.conn.localAddr as Deno.NetAddr;
  const line = await ctx.waitForLog(/connection from/);
  assert.equal(line, `[1] connection from 127.0.0.1 port ${local.port}`);
});

// ---- idle timeout ----

Deno.test("idle timeout: silent in every state, the connection is closed", async (t) => {
  await using ctx = await startServer({ idleTimeoutMs: 150 });
  await Deno.writeFile(`${ctx.root}/big`, randomBytes(2000));

  await t.step("before answering the greeting", async () => {
    await using client = await RawClient.connect(ctx.port);
    assert.equal((await client.read())?.op, "DAT");
    await client.expectClosed();
  });
  await t.step("between requests", async () => {
    await using client = await RawClient.greeted(ctx.port);
    await client.expectClosed();
  });
  await t.step("during a download (no ACK)", async () => {
    await using client = await RawClient.greeted(ctx.port);
    await client.send(wire.rrq("big"));
    assert.equal((await client.read())?.op, "DAT");
    await client.expectClosed();
  });
  await t.step("during an upload (no DAT)", async () => {
    await using client = await RawClient.greeted(ctx.port);
    await client.upload("partial", new Uint8Array(0)).catch(() => {}); // completes: empty file
    await client.send(wire.wrq("stalled"));
    await client.expectAck(0);
    await client.send(wire.dat(1, new Uint8Array(512)));
    await client.expectAck(1);
    await client.expectClosed();
    await ctx.waitForLog(/WRQ "stalled": idle timeout/);
    assert.deepEqual(await dirNames(ctx.root), ["big", "partial"]);
  });
  assert.equal(ctx.logs.filter((l) => l.includes("idle timeout")).length, 4);
});

Deno.test("idle timeout: a client that keeps talking is not cut off", async () => {
  await using ctx = await startServer({ idleTimeoutMs: 300 });
  await Deno.writeFile(`${ctx.root}/f`, randomBytes(100));
  await using client = await RawClient.greeted(ctx.port);
  // Many requests, each well inside the timeout, for longer than the timeout in all.
  const until = performance.now() + 900;
  let requests = 0;
  while (performance.now() < until) {
    const { data } = await client.download("f");
    assert.equal(data.length, 100);
    requests++;
  }
  assert.ok(requests > 1);
  assert.equal(ctx.logs.some((l) => l.includes("idle timeout")), false);
});

// ---- RRQ ----

Deno.test("RRQ: block boundaries (0, 1, 511, 512, 513, 1024, 1500 bytes)", async () => {
  await using ctx = await startServer();
  await using client = await RawClient.greeted(ctx.port);
  for (const size of [0, 1, 511, 512, 513, 1024, 1500]) {
    const content = randomBytes(size, size + 1);
    await Deno.writeFile(`${ctx.root}/f${size}`, content);
    const { data, blocks } = await client.download(`f${size}`);
    assert.deepEqual(data, content);
    const expectedBlocks = Math.floor(size / 512) + 1; // an exact multiple ends with an empty DAT
    assert.deepEqual(
      blocks,
      Array.from({ length: expectedBlocks }, (_, i) => i + 1),
      `size ${size}`,
    );
  }
});

Deno.test("RRQ: a file in a subdirectory, many requests on one connection", async () => {
  await using ctx = await startServer();
  await Deno.mkdir(`${ctx.root}/a/b`, { recursive: true });
  await Deno.writeTextFile(`${ctx.root}/a/b/c.txt`, "deep");
  await using client = await RawClient.greeted(ctx.port);
  for (let i = 0; i < 5; i++) {
    assert.equal(text.decode((await client.download("a/b/c.txt")).data), "deep");
  }
  await ctx.waitForLog(/RRQ "a\/b\/c.txt": sent file, 4 bytes/);
});

Deno.test("RRQ: a missing file is ERR 1 and the connection stays usable", async () => {
  await using ctx = await startServer();
  await using client = await RawClient.greeted(ctx.port);
  await client.send(wire.rrq("missing.txt"));
  assert.match(await client.expectError(ERR.NOT_FOUND), /file not found: missing.txt/);
  await client.send(wire.rrq("no/such/dir/file"));
  await client.expectError(ERR.NOT_FOUND);
  await assertUsable(client);
  await ctx.waitForLog(/RRQ "missing.txt": refused with error 1/);
});

Deno.test("RRQ: block numbers wrap from 65535 to 0", async () => {
  await using ctx = await startServer();
  const size = 65536 * 512 + 100; // blocks 1..65535, 0, 1
  const content = randomBytes(size, 7);
  await Deno.writeFile(`${ctx.root}/huge`, content);
  await using client = await RawClient.greeted(ctx.port);
  const { data, blocks } = await client.download("huge");
  assert.equal(blocks.length, 65537);
  assert.deepEqual(blocks.slice(65533), [65534, 65535, 0, 1]);
  assert.ok(data.every((b, i) => b === content[i]) && data.length === size);
});

// ---- listings ----

Deno.test("listing: DRQ, an empty name and a directory's name", async () => {
  await using ctx = await startServer();
  await Deno.writeFile(`${ctx.root}/b.txt`, new Uint8Array(1234));
  await Deno.writeFile(`${ctx.root}/a.txt`, new Uint8Array(0));
  await Deno.mkdir(`${ctx.root}/dir`);
  await Deno.writeFile(`${ctx.root}/dir/inner`, new Uint8Array(5));
  const when = new Date("2024-02-29T12:34:56.789Z");
  await Deno.utime(`${ctx.root}/b.txt`, when, when);
  await using client = await RawClient.greeted(ctx.port);

  await client.send(wire.drq());
  const root = text.decode((await client.receiveBlocks()).data);
  const lines = root.split("\n");
  assert.equal(lines.pop(), "");
  assert.deepEqual(lines.map((l) => l.split(" ")[3]), ["a.txt", "b.txt", "dir"]);
  assert.equal(lines[1], "f 1234 2024-02-29T12:34:56Z b.txt");
  assert.match(lines[0], /^f 0 \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ a\.txt$/);
  assert.match(lines[2], /^d 0 \S+Z dir$/);

  assert.equal(text.decode((await client.download("")).data), root);
  assert.match(text.decode((await client.download("dir")).data), /^f 5 \S+ inner\n$/);
});

Deno.test("listing: sorted by bytes, longer than one block, empty directory", async () => {
  await using ctx = await startServer();
  const names = Array.from(
    { length: 40 },
    (_, i) => `file-${String(i).padStart(3, "0")}-${"x".repeat(20)}`,
  );
  names.push("Zebra", "apple", "Äpfel", "zzz");
  for (const name of names) await Deno.writeFile(`${ctx.root}/${name}`, new Uint8Array(0));
  await Deno.mkdir(`${ctx.root}/empty`);
  await using client = await RawClient.greeted(ctx.port);
  const { data, blocks } = await client.download("");
  assert.ok(blocks.length > 1);
  const listed = text.decode(data).trimEnd().split("\n").map((l) =>
    l.split(" ").slice(3).join(" ")
  );
  assert.deepEqual(listed, [...names, "empty"].sort()); // JS sort is code-unit order: same here
  assert.equal(listed[0], "Zebra");
  assert.equal(listed.at(-1), "Äpfel");
  const empty = await client.download("empty");
  assert.deepEqual(empty.data, new Uint8Array(0));
  assert.deepEqual(empty.blocks, [1]);
});

Deno.test("listing: leaves out what a client cannot fetch", async () => {
  await using ctx = await startServer();
  await using outside = await tempDir();
  await Deno.writeTextFile(`${outside.path}/secret`, "secret");
  await Deno.writeTextFile(`${ctx.root}/ok`, "ok");
  await Deno.writeTextFile(`${ctx.root}/ctl\u0001name`, "x");
  await Deno.writeTextFile(`${ctx.root}/back\\slash`, "x");
  await Deno.writeTextFile(`${ctx.root}/.fsd-upload-leftover`, "x");
  await Deno.symlink(`${outside.path}/secret`, `${ctx.root}/escape`);
  await Deno.symlink(outside.path, `${ctx.root}/escape-dir`);
  await Deno.symlink("ok", `${ctx.root}/alias`);
  await Deno.symlink("missing", `${ctx.root}/dangling`);
  await new Deno.Command("mkfifo", { args: [`${ctx.root}/fifo`] }).output();
  await using client = await RawClient.greeted(ctx.port);
  await client.send(wire.drq());
  const listing = text.decode((await client.receiveBlocks()).data);
  assert.deepEqual(listing.trimEnd().split("\n").map((l) => l.split(" ")[3]), ["alias", "ok"]);
  assert.match(listing, /^f 2 \S+ alias$/m); // a symlink inside shows its target's size
});

// ---- path rules: ERR 2, connection stays usable ----

Deno.test("path rules: each broken rule is ERR 2 for RRQ and WRQ, nothing escapes", async () => {
  await using ctx = await startServer();
  await using outside = await tempDir();
  await Deno.writeTextFile(`${outside.path}/secret`, "secret");
  await Deno.symlink(`${outside.path}/secret`, `${ctx.root}/escape`);
  await Deno.symlink(outside.path, `${ctx.root}/escape-dir`);
  await Deno.symlink("/", `${ctx.root}/slash`);
  await Deno.mkdir(`${ctx.root}/sub`);
  const bad: (string | Uint8Array)[] = [
    "../secret",
    "sub/../../secret",
    "/etc/passwd",
    `${outside.path}/secret`,
    "a//b",
    "./x",
    "sub/.",
    "..",
    "sub\\..\\x",
    "a\u0001b",
    "a\u007fb",
    "a\u0085b",
    new Uint8Array([0x61, 0xff, 0x62]),
    new Uint8Array([0xc0, 0xae, 0xc0, 0xae, 0x2f, 0x78]), // overlong "../x"
    "x".repeat(256),
    ".fsd-upload-abc",
    "escape",
    "escape-dir/secret",
    "slash/etc/passwd",
  ];
  await using client = await RawClient.greeted(ctx.port);
  for (const name of bad) {
    await client.send(wire.rrq(name));
    await client.expectError(ERR.ACCESS);
    await client.send(wire.wrq(typeof name === "string" ? name.replace("secret", "new") : name));
    await client.expectError(ERR.ACCESS);
  }
  await assertUsable(client);
  assert.deepEqual(await dirNames(outside.path), ["secret"]);
  assert.deepEqual(await dirNames(ctx.root), ["escape", "escape-dir", "slash", "sub"]);
});

Deno.test("path rules: 255-byte names are fine", async () => {
  await using ctx = await startServer();
  const name = "n".repeat(255);
  await using client = await RawClient.greeted(ctx.port);
  await client.upload(name, text.encode("long"));
  assert.equal(text.decode((await client.download(name)).data), "long");
});

Deno.test("path rules: a symlink that stays inside is followed", async () => {
  await using ctx = await startServer();
  await Deno.mkdir(`${ctx.root}/real`);
  await Deno.writeTextFile(`${ctx.root}/real/f`, "via link");
  await Deno.symlink("real", `${ctx.root}/link`);
  await using client = await RawClient.greeted(ctx.port);
  assert.equal(text.decode((await client.download("link/f")).data), "via link");
  await client.upload("link/g", text.encode("up"));
  assert.equal(await Deno.readTextFile(`${ctx.root}/real/g`), "up");
});

Deno.test("RRQ: a FIFO is refused with ERR 2 without blocking the server", async () => {
  await using ctx = await startServer();
  await new Deno.Command("mkfifo", { args: [`${ctx.root}/fifo`] }).output();
  await using client = await RawClient.greeted(ctx.port);
  await client.send(wire.rrq("fifo"));
  assert.match(await client.expectError(ERR.ACCESS), /not a regular file/);
  await assertUsable(client);
});

// ---- WRQ ----

Deno.test("WRQ: uploads of block-boundary sizes arrive byte-exact", async () => {
  await using ctx = await startServer();
  await using client = await RawClient.greeted(ctx.port);
  for (const size of [0, 1, 511, 512, 513, 1024, 5000]) {
    const content = randomBytes(size, size + 3);
    await client.upload(`up${size}`, content);
    assert.deepEqual(await Deno.readFile(`${ctx.root}/up${size}`), content);
  }
  await ctx.waitForLog(/WRQ "up5000": received file, 5000 bytes/);
});

Deno.test("WRQ: block numbers wrap from 65535 to 0", async () => {
  await using ctx = await startServer();
  const content = randomBytes(65536 * 512 + 1, 11);
  await using client = await RawClient.greeted(ctx.port);
  await client.upload("huge", content);
  const stored = await Deno.readFile(`${ctx.root}/huge`);
  assert.ok(stored.length === content.length && stored.every((b, i) => b === content[i]));
});

Deno.test("WRQ: never replaces a file, ERR 6, connection usable", async () => {
  await using ctx = await startServer();
  await Deno.writeTextFile(`${ctx.root}/taken`, "original");
  await Deno.mkdir(`${ctx.root}/adir`);
  await using client = await RawClient.greeted(ctx.port);
  await client.send(wire.wrq("taken"));
  assert.match(await client.expectError(ERR.EXISTS), /^file already exists: taken$/);
  await client.send(wire.wrq("adir"));
  await client.expectError(ERR.EXISTS);
  await assertUsable(client);
  assert.equal(await Deno.readTextFile(`${ctx.root}/taken`), "original");
});

Deno.test("WRQ: a file created while the upload runs is not replaced", async () => {
  await using ctx = await startServer();
  await using client = await RawClient.greeted(ctx.port);
  await client.send(wire.wrq("race"));
  await client.expectAck(0);
  await client.send(wire.dat(1, new Uint8Array(512).fill(1)));
  await client.expectAck(1);
  await Deno.writeTextFile(`${ctx.root}/race`, "someone else");
  await client.send(wire.dat(2, new Uint8Array(10)));
  assert.match(await client.expectError(ERR.EXISTS), /file already exists: race/);
  await client.expectClosed();
  assert.equal(await Deno.readTextFile(`${ctx.root}/race`), "someone else");
  await ctx.waitForLog(/WRQ "race": error 6/);
  assert.deepEqual(await dirNames(ctx.root), ["race"]);
});

Deno.test("WRQ: into a missing directory is ERR 1", async () => {
  await using ctx = await startServer();
  await Deno.writeTextFile(`${ctx.root}/file`, "x");
  await using client = await RawClient.greeted(ctx.port);
  await client.send(wire.wrq("nodir/new"));
  assert.match(await client.expectError(ERR.NOT_FOUND), /nodir/);
  await client.send(wire.wrq("file/new"));
  await client.expectError(ERR.NOT_FOUND);
  await client.send(wire.wrq(""));
  await client.expectError(ERR.ACCESS);
  await assertUsable(client);
});

Deno.test("WRQ: the file is invisible until complete, and an unfinished upload leaves nothing", async () => {
  await using ctx = await startServer();
  await using uploader = await RawClient.greeted(ctx.port);
  await using watcher = await RawClient.greeted(ctx.port);
  await uploader.send(wire.wrq("pending.bin"));
  await uploader.expectAck(0);
  await uploader.send(wire.dat(1, randomBytes(512)));
  await uploader.expectAck(1);

  await watcher.send(wire.rrq("pending.bin"));
  await watcher.expectError(ERR.NOT_FOUND);
  await watcher.send(wire.drq());
  assert.equal(text.decode((await watcher.receiveBlocks()).data), "");

  uploader.close();
  await ctx.waitForLog(/WRQ "pending.bin": failed: /);
  assert.deepEqual(await dirNames(ctx.root), []);
});

// ---- violations: ERR 4 and close ----

Deno.test("violations: each gets ERR 4 and the connection is closed", async (t) => {
  await using ctx = await startServer();
  await Deno.writeFile(`${ctx.root}/f`, randomBytes(2000));

  const cases: [string, (c: Raw) => Promise<void>][] = [
    ["DAT outside a transfer", (c) => c.send(wire.dat(1, new Uint8Array(4)))],
    ["ACK outside a transfer", (c) => c.send(wire.ack(1))],
    ["unknown opcode 7", (c) => c.send(new Uint8Array([0, 7, 0, 0]))],
    ["opcode 0", (c) => c.send(new Uint8Array([0, 0]))],
    ["opcode 65535", (c) => c.send(new Uint8Array([255, 255]))],
    [
      "a name longer than the server accepts",
      (c) => c.send(new Uint8Array([0, 1, ...new Uint8Array(2000).fill(97)])),
    ],
    ["ACK with the wrong block during a download", async (c) => {
      await c.send(wire.rrq("f"));
      await c.read();
      await c.send(wire.ack(2));
    }],
    ["a request during a download", async (c) => {
      await c.send(wire.rrq("f"));
      await c.read();
      await c.send(wire.rrq("f"));
    }],
    ["DAT during a download", async (c) => {
      await c.send(wire.rrq("f"));
      await c.read();
      await c.send(wire.dat(1, new Uint8Array(1)));
    }],
    ["DAT with the wrong block during an upload", async (c) => {
      await c.send(wire.wrq("u1"));
      await c.expectAck(0);
      await c.send(wire.dat(2, new Uint8Array(10)));
    }],
    ["DAT block 0 during an upload", async (c) => {
      await c.send(wire.wrq("u2"));
      await c.expectAck(0);
      await c.send(wire.dat(0, new Uint8Array(10)));
    }],
    ["DAT of more than 512 bytes during an upload", async (c) => {
      await c.send(wire.wrq("u3"));
      await c.expectAck(0);
      await c.send(wire.dat(1, new Uint8Array(513)));
    }],
    ["DAT claiming 65535 bytes", async (c) => {
      await c.send(wire.wrq("u4"));
      await c.expectAck(0);
      await c.send(wire.dat(1, new Uint8Array(10), 65535));
    }],
    ["a request during an upload", async (c) => {
      await c.send(wire.wrq("u5"));
      await c.expectAck(0);
      await c.send(wire.drq());
    }],
    ["ACK during an upload", async (c) => {
      await c.send(wire.wrq("u6"));
      await c.expectAck(0);
      await c.send(wire.ack(1));
    }],
  ];
  for (const [name, provoke] of cases) {
    await t.step(name, async () => {
      await using client = await RawClient.greeted(ctx.port);
      await provoke(client);
      await client.expectError(ERR.ILLEGAL);
      await client.expectClosed();
    });
  }
  await t.step("no upload was left behind", async () => {
    for (let i = 1; i <= 6; i++) await ctx.waitForLog(new RegExp(`WRQ "u${i}": error 4`));
    assert.deepEqual(await dirNames(ctx.root), ["f"]);
  });
});

Deno.test("violations: an ERR from the client ends the connection without a reply", async () => {
  await using ctx = await startServer();
  await Deno.writeFile(`${ctx.root}/f`, randomBytes(2000));
  await using idle = await RawClient.greeted(ctx.port);
  await idle.send(wire.err(0, "bye"));
  await idle.expectClosed();
  await using downloading = await RawClient.greeted(ctx.port);
  await downloading.send(wire.rrq("f"));
  await downloading.read();
  await downloading.send(wire.err(3, "disk full"));
  await downloading.expectClosed();
  await ctx.waitForLog(/client sent error 3: "disk full"; closing/);
});

// ---- framing ----

Deno.test("framing: packets split into single bytes and packed together are understood", async () => {
  await using ctx = await startServer();
  await Deno.writeTextFile(`${ctx.root}/f`, "content");
  await using client = await RawClient.connect(ctx.port);
  await client.read();
  // ACK 1, RRQ f and its ACK 1 all in one write
  await client.send(wire.ack(1), wire.rrq("f"));
  const dat = await client.read();
  assert.ok(dat?.op === "DAT" && text.decode(dat.data) === "content");
  // a request one byte per write
  for (const byte of wire.concat(wire.ack(1), wire.rrq("f"))) {
    await client.send(new Uint8Array([byte]));
  }
  const again = await client.read();
  assert.ok(again?.op === "DAT" && text.decode(again.data) === "content");
  await client.send(wire.ack(1));
  await assertUsable(client);
});

// ---- concurrency ----

Deno.test("concurrency: silent and stalled clients do not delay others", async () => {
  await using ctx = await startServer();
  const content = randomBytes(100_000, 5);
  await Deno.writeFile(`${ctx.root}/f`, content);
  const silent = await Promise.all(Array.from({ length: 20 }, () => RawClient.connect(ctx.port)));
  const stalled = await Promise.all(Array.from({ length: 5 }, () => RawClient.greeted(ctx.port)));
  for (const client of stalled) {
    await client.send(wire.rrq("f"));
    await client.read(); // and never ACK
  }
  const halfUpload = await RawClient.greeted(ctx.port);
  await halfUpload.send(wire.wrq("slow"));
  await halfUpload.expectAck(0);
  try {
    const clients = await Promise.all(
      Array.from({ length: 30 }, () => RawClient.greeted(ctx.port)),
    );
    const results = await Promise.all(clients.map((c) => c.download("f")));
    for (const { data } of results) assert.deepEqual(data, content);
    clients.forEach((c) => c.close());
  } finally {
    [...silent, ...stalled, halfUpload].forEach((c) => c.close());
  }
});

Deno.test("concurrency: garbage on one connection never stops the server", async () => {
  await using ctx = await startServer();
  await Deno.writeTextFile(`${ctx.root}/f`, "still here");
  const junk = [
    new Uint8Array([0]),
    new Uint8Array([0, 3, 0]),
    randomBytes(4096, 99),
    new Uint8Array([0, 5, 0, 1, ...new Uint8Array(10_000).fill(65)]),
    new Uint8Array([0, 1]),
  ];
  for (const bytes of junk) {
    await using client = await RawClient.connect(ctx.port);
    await client.read();
    await client.send(bytes);
    client.close();
  }
  await using client = await RawClient.greeted(ctx.port);
  assert.equal(text.decode((await client.download("f")).data), "still here");
});

// ---- lifecycle ----

Deno.test("close(): ends every connection and frees the port", async () => {
  const ctx = await startServer();
  const port = ctx.port;
  const client = await RawClient.greeted(ctx.port);
  await ctx[Symbol.asyncDispose]();
  await client.expectClosed();
  client.close();
  const again = Deno.listen({ hostname: "127.0.0.1", port });
  again.close();
});

Deno.test("the server logs each request with its outcome", async () => {
  await using ctx = await startServer();
  await Deno.writeTextFile(`${ctx.root}/f`, "abc");
  await using client = await RawClient.greeted(ctx.port);
  await client.download("f");
  await client.upload("g", text.encode("xy"));
  await client.send(wire.rrq("nope"));
  await client.expectError(ERR.NOT_FOUND);
  client.close();
  await ctx.waitForLog(/closed by the client/);
  assert.deepEqual(
    ctx.logs.map((l) => l.replace(/port \d+/, "port P").replace(/[\d.]+ s$/, "T s")),
    [
      "[1] connection from 127.0.0.1 port P",
      '[1] RRQ "f": sent file, 3 bytes in T s',
      '[1] WRQ "g": received file, 2 bytes in T s',
      '[1] RRQ "nope": refused with error 1: file not found: nope',
      "[1] closed by the client",
    ],
  );
});

Deno.test("the example session in docs/PROTOCOL.md, byte for byte", async () => {
  await using ctx = await startServer({ name: "lab" });
  await Deno.writeTextFile(`${ctx.root}/a.txt`, "hello");
  const hex = (bytes: Uint8Array) =>
    Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join(" ");
  await using client = await RawClient.connect(ctx.port);
  const read = async (n: number) => {
    const buffer = new Uint8Array(n);
    for (let got = 0; got < n;) got += (await client.conn.read(buffer.subarray(got)))!;
    return buffer;
  };
  assert.equal(hex(await read(6)), "00 03 00 01 00 1b");
  assert.equal(text.decode(await read(27)), "Hello from lab's fileserver");
  await client.send(new Uint8Array([0x00, 0x04, 0x00, 0x01]));
  await client.send(new Uint8Array([0x00, 0x01, 0x61, 0x2e, 0x74, 0x78, 0x74, 0x00]));
  assert.equal(hex(await read(11)), "00 03 00 01 00 05 68 65 6c 6c 6f");
  await client.send(new Uint8Array([0x00, 0x04, 0x00, 0x01]));
  await client.send(new Uint8Array([0x00, 0x01, 0x6e, 0x6f, 0x00]));
  assert.equal(hex(await read(4)), "00 05 00 01");
  assert.equal(text.decode(await read(19)), "file not found: no\0");
});
