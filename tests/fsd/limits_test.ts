/**
 * The server under pressure: limits, read-only mode, racing and failing
 * uploads, a full disk, leftovers of a crash, graceful shutdown, JSON logs.
 */

import assert from "node:assert/strict";
import { FsdClient } from "../../lib/fsd/client.ts";
import { PeerError } from "../../lib/store/errors.ts";
import { bytesSource } from "../../lib/bytes/source_sink.ts";
import { INSTALLED, runFsd, spawnServe } from "../support/cli.ts";
import {
  canMountSmallDisk,
  dirNames,
  mountSmallDisk,
  randomBytes,
  tempDir,
  text,
  unmount,
} from "../support/files.ts";
import { RawClient, wire } from "../support/raw_client.ts";
import { startServer } from "../support/server.ts";

// ---- limits ----

Deno.test("limits: --max-clients refuses with ERR 0 before any data, and frees the slot on close", async () => {
  await using ctx = await startServer({ maxClients: 2, maxPerIp: 0 });
  const a = await RawClient.greeted(ctx.port);
  const b = await RawClient.greeted(ctx.port);
  await using c = await RawClient.connect(ctx.port);
  assert.match(await c.expectError(0), /^server busy: serving 2 connections, its limit$/);
  await c.expectClosed();
  await ctx.waitForLog(
    /\[3\] connection from 127\.0\.0\.1 port \d+ rejected with error 0: server busy/,
  );
  a.close();
  await ctx.waitForLog(/^\[1\] closed by the client$/);
  await using d = await RawClient.greeted(ctx.port);
  await d.send(wire.drq());
  await d.receiveBlocks();
  b.close();
});

Deno.test("limits: --max-per-ip counts connections from one address", async () => {
  await using ctx = await startServer({ maxPerIp: 2 });
  const held = [await RawClient.greeted(ctx.port), await RawClient.greeted(ctx.port)];
  try {
    await using c = await RawClient.connect(ctx.port);
    assert.match(await c.expectError(0), /^too many connections from 127\.0\.0\.1: at most 2$/);
    await c.expectClosed();
    // the client library reports it as the server's error
    await assert.rejects(FsdClient.connect("127.0.0.1", ctx.port), (e: unknown) => {
      return e instanceof PeerError && e.code === 0 && /too many connections/.test(e.message);
    });
  } finally {
    held.forEach((client) => client.close());
  }
});

Deno.test("limits: --max-upload ends a larger upload with ERR 3 and keeps nothing", async () => {
  await using ctx = await startServer({ maxUploadBytes: 1000 });
  await using client = await RawClient.greeted(ctx.port);
  await client.upload("exact", randomBytes(1000));
  assert.equal((await Deno.stat(`${ctx.root}/exact`)).size, 1000);
  await client.send(wire.wrq("over"));
  await client.expectAck(0);
  await client.send(wire.dat(1, new Uint8Array(512)));
  await client.expectAck(1);
  await client.send(wire.dat(2, new Uint8Array(490))); // 1002 bytes in all
  assert.match(await client.expectError(3), /allocation exceeded: more than 1000 bytes/);
  await client.expectClosed();
  await ctx.waitForLog(/WRQ "over": error 3/);
  assert.deepEqual(await dirNames(ctx.root), ["exact"]);
});

Deno.test("limits: --read-only refuses uploads with ERR 2 and keeps serving", async () => {
  await using ctx = await startServer({ readOnly: true });
  await Deno.writeTextFile(`${ctx.root}/f`, "read me");
  await using client = await RawClient.greeted(ctx.port);
  await client.send(wire.wrq("new"));
  assert.equal(await client.expectError(2), "server is read-only");
  assert.equal(text.decode((await client.download("f")).data), "read me");
  assert.deepEqual(await dirNames(ctx.root), ["f"]);
});

Deno.test("limits: --read-only needs only --allow-read on the directory", async () => {
  await using dir = await tempDir();
  await Deno.writeTextFile(`${dir.path}/f`, "ro");
  await using server = await spawnServe(dir.path, 0, ["--read-only"], [
    "--allow-net=127.0.0.1",
    `--allow-read=${dir.path}`,
  ]);
  const port = server.port;
  const got = await runFsd([`--allow-net=127.0.0.1:${port}`], [
    "get",
    "127.0.0.1",
    String(port),
    "f",
    "-",
  ]);
  assert.equal(got.stdout, "ro");
  const put = await runFsd([`--allow-net=127.0.0.1:${port}`], [
    "put",
    "127.0.0.1",
    String(port),
    "-",
    "x",
  ], {
    stdin: text.encode("no"),
  });
  assert.equal(put.code, 1);
  assert.match(put.stderr, /server error 2: server is read-only/);
  assert.equal((await server.stop()).code, 0);
});

// ---- uploads that race, fail or are left behind ----

/**
 * Two clients upload "contested" to the server on `port` at once, the second finishing first:
 * the first gets ERR 6. Returns the second's bytes, the ones the name must hold.
 */
async function raceTwoUploads(port: number): Promise<Uint8Array> {
  await using first = await RawClient.greeted(port);
  await using second = await RawClient.greeted(port);
  const one = randomBytes(700, 1);
  const two = randomBytes(700, 2);
  for (const [client, data] of [[first, one], [second, two]] as const) {
    await client.send(wire.wrq("contested"));
    await client.expectAck(0);
    await client.send(wire.dat(1, data.subarray(0, 512)));
    await client.expectAck(1);
  }
  // both are now mid-upload; the second finishes first
  await second.send(wire.dat(2, two.subarray(512)));
  await second.expectAck(2);
  await first.send(wire.dat(2, one.subarray(512)));
  assert.match(await first.expectError(6), /file already exists: contested/);
  return two;
}

Deno.test("uploads: two racing for one name, exactly one wins and the other gets ERR 6", async () => {
  await using ctx = await startServer();
  const two = await raceTwoUploads(ctx.port);
  assert.deepEqual(await Deno.readFile(`${ctx.root}/contested`), two);
  await ctx.waitForLog(/WRQ "contested": error 6/);
  assert.deepEqual(await dirNames(ctx.root), ["contested"]);
});

Deno.test("uploads, as installed (race-free opens): the loser of two racing uploads gets ERR 6 and leaves no staging file", async () => {
  await using dir = await tempDir();
  await using server = await spawnServe(dir.path, 0, [], INSTALLED);
  const two = await raceTwoUploads(server.port);
  // The server logs the failure once the upload's staging file is gone.
  await server.waitForLine(/WRQ "contested": error 6/);
  assert.deepEqual(await Deno.readFile(`${dir.path}/contested`), two);
  assert.deepEqual(await dirNames(dir.path), ["contested"]);
});

Deno.test("uploads: many clients racing for one name, one winner, all others ERR 6", async () => {
  await using ctx = await startServer();
  const results = await Promise.allSettled(Array.from({ length: 10 }, async (_, i) => {
    const client = await FsdClient.connect("127.0.0.1", ctx.port);
    try {
      return await client.upload("prize", bytesSource(randomBytes(3000, i + 1)));
    } finally {
      client.close();
    }
  }));
  const won = results.filter((r) => r.status === "fulfilled");
  const lost = results.filter((r) => r.status === "rejected");
  assert.equal(won.length, 1);
  for (const r of lost) {
    assert.ok(r.reason instanceof PeerError && r.reason.code === 6, String(r.reason));
  }
  assert.deepEqual(await dirNames(ctx.root), ["prize"]);
});

Deno.test("uploads: leftovers of an earlier run are removed at start, nothing else", async () => {
  await using dir = await tempDir();
  await using outside = await tempDir();
  await Deno.mkdir(`${dir.path}/sub/deeper`, { recursive: true });
  await Deno.writeTextFile(`${dir.path}/.fsd-upload-1`, "stale");
  await Deno.writeTextFile(`${dir.path}/sub/deeper/.fsd-upload-2`, "stale");
  await Deno.writeTextFile(`${dir.path}/keep.txt`, "keep");
  await Deno.writeTextFile(`${dir.path}/sub/.fsd-uploaded`, "not ours"); // different prefix
  await Deno.writeTextFile(`${outside.path}/.fsd-upload-3`, "not under the root");
  await Deno.symlink(outside.path, `${dir.path}/link`);
  await using ctx = await startServer({ root: dir.path });
  assert.deepEqual(await dirNames(dir.path), ["keep.txt", "link", "sub"]);
  assert.deepEqual(await dirNames(`${dir.path}/sub`), [".fsd-uploaded", "deeper"]);
  assert.deepEqual(await dirNames(`${dir.path}/sub/deeper`), []);
  assert.deepEqual(await dirNames(outside.path), [".fsd-upload-3"]);
  assert.match(ctx.logs[0], /^removed 2 unfinished upload\(s\) left by an earlier run in /);
});

Deno.test({
  name: "uploads: a full disk is ERR 3, the staging data goes, the server goes on",
  ignore: !canMountSmallDisk(), // needs root to mount a small tmpfs; CI runs as root
  async fn() {
    await using dir = await tempDir();
    assert.ok(mountSmallDisk(dir.path));
    try {
      await using ctx = await startServer({ root: dir.path });
      await using client = await RawClient.greeted(ctx.port);
      await client.send(wire.wrq("too-big"));
      await client.expectAck(0);
      let message = "";
      for (let block = 1; block < 1000; block++) {
        await client.send(wire.dat(block, new Uint8Array(512).fill(7)));
        const answer = await client.read();
        if (answer?.op === "ERR") {
          assert.equal(answer.code, 3);
          message = answer.message;
          break;
        }
        assert.ok(answer?.op === "ACK" && answer.block === block, JSON.stringify(answer));
      }
      assert.match(message, /^disk full: too-big$/);
      await client.expectClosed();
      await ctx.waitForLog(/WRQ "too-big": error 3: disk full/);
      assert.deepEqual(await dirNames(dir.path), []);
      // the space is back and the server still serves
      await using next = await RawClient.greeted(ctx.port);
      await next.upload("small", text.encode("fits"));
      assert.equal(await Deno.readTextFile(`${dir.path}/small`), "fits");
    } finally {
      unmount(dir.path);
    }
  },
});

// ---- graceful shutdown ----

Deno.test("shutdown: idle connections close at once, a running transfer finishes, then all stop", async () => {
  await using ctx = await startServer();
  const content = randomBytes(5000, 3);
  await Deno.writeFile(`${ctx.root}/f`, content);
  await using idle = await RawClient.greeted(ctx.port);
  await using busy = await RawClient.greeted(ctx.port);
  await busy.send(wire.rrq("f"));
  const first = await busy.read();
  assert.ok(first?.op === "DAT" && first.block === 1);

  const stopped = ctx.server.shutdown(30_000);
  await idle.expectClosed();
  await assert.rejects(
    Deno.connect({ hostname: "127.0.0.1", port: ctx.port }),
    Deno.errors.ConnectionRefused,
  );
  // the download goes on to its end
  await busy.send(wire.ack(1));
  const rest = await busy.receiveBlocks();
  assert.deepEqual(wire.concat(first.data, rest.data), content);
  await busy.expectClosed(); // no further requests
  await stopped;
  assert.ok(
    ctx.logs.some((l) => /^shutting down: waiting up to 30\.000 s for 1 connection\(s\)$/.test(l)),
  );
});

Deno.test("shutdown: after the grace period the rest is closed and unfinished uploads are discarded", async () => {
  await using ctx = await startServer();
  await using uploader = await RawClient.greeted(ctx.port);
  await uploader.send(wire.wrq("half"));
  await uploader.expectAck(0);
  await uploader.send(wire.dat(1, new Uint8Array(512)));
  await uploader.expectAck(1);
  await ctx.server.shutdown(100);
  // Cut by the shutdown: the client hears why instead of a bare close.
  assert.equal(await uploader.expectError(0), "server shutting down");
  await uploader.expectClosed();
  assert.deepEqual(await dirNames(ctx.root), []);
  await ctx.waitForLog(/WRQ "half": server shutting down; closing/);
});

Deno.test("shutdown: the CLI finishes a transfer on SIGTERM and exits 0; a second signal stops at once", async () => {
  await using dir = await tempDir();
  await Deno.writeFile(`${dir.path}/f`, randomBytes(3000, 4));
  {
    await using server = await spawnServe(dir.path, 0, ["--shutdown-grace", "30"]);
    await using busy = await RawClient.greeted(server.port);
    await busy.send(wire.rrq("f"));
    assert.equal((await busy.read())?.op, "DAT");
    server.child.kill("SIGTERM");
    await server.waitForLine(/^shutting down: waiting up to 30\.000 s for 1 connection/);
    await busy.send(wire.ack(1));
    const rest = await busy.receiveBlocks();
    assert.equal(rest.blocks.at(-1), 6);
    assert.equal((await server.exited()).code, 0); // by itself, once the transfer is done
  }
  {
    await using server = await spawnServe(dir.path, 0, ["--shutdown-grace", "600"]);
    await using busy = await RawClient.greeted(server.port);
    await busy.send(wire.wrq("never-finished"));
    await busy.expectAck(0);
    server.child.kill("SIGTERM");
    await server.waitForLine(/^shutting down/);
    server.child.kill("SIGINT");
    assert.equal((await server.exited()).code, 0);
    assert.equal(await busy.expectError(0), "server shutting down");
    await busy.expectClosed();
  }
  assert.deepEqual(await dirNames(dir.path), ["f"]);
});

// ---- logs ----

Deno.test("logs: --log json writes one JSON event per line", async () => {
  await using dir = await tempDir();
  await Deno.writeTextFile(`${dir.path}/f`, "abc");
  await using server = await spawnServe(dir.path, 0, ["--log", "json"]);
  await using client = await RawClient.greeted(server.port);
  await client.download("f");
  await client.send(wire.rrq("../x"));
  await client.expectError(2);
  client.close();
  await server.waitForLine(/"event":"close"/);
  const events = server.lines.slice(1).map((line) => JSON.parse(line));
  assert.deepEqual(events.map((e) => e.event), ["connection", "request", "request", "close"]);
  const [connection, sent, refused, close] = events;
  assert.equal(connection.address, "127.0.0.1");
  assert.equal(typeof connection.port, "number");
  assert.ok(!Number.isNaN(Date.parse(connection.time)));
  assert.deepEqual(
    { op: sent.op, name: sent.name, outcome: sent.outcome, kind: sent.kind, bytes: sent.bytes },
    { op: "RRQ", name: "f", outcome: "ok", kind: "file", bytes: 3 },
  );
  assert.equal(typeof sent.ms, "number");
  assert.deepEqual(
    { outcome: refused.outcome, code: refused.code, name: refused.name },
    { outcome: "refused", code: 2, name: "../x" },
  );
  assert.equal(close.reason, "client");
  assert.ok(events.every((e) => e.id === 1));
});

Deno.test("logs: a failed transfer is logged with the bytes it moved", async () => {
  await using ctx = await startServer();
  await using client = await RawClient.greeted(ctx.port);
  await client.send(wire.wrq("cut"));
  await client.expectAck(0);
  await client.send(wire.dat(1, new Uint8Array(512)), wire.dat(2, new Uint8Array(512)));
  await client.expectAck(1);
  await client.expectAck(2);
  client.close();
  await ctx.waitForLog(/WRQ "cut": failed/);
  const close = ctx.events.find((e) => e.event === "close");
  assert.ok(close?.event === "close");
  assert.equal(close.reason, "failure");
  assert.equal(close.bytes, 1024);
  assert.equal(close.op, "WRQ");
});

Deno.test("serve: new flags reject nonsense with usage errors", async () => {
  for (
    const [args, pattern] of [
      [["--log", "xml"], /invalid --log: xml/],
      [["--max-clients", "many"], /invalid --max-clients: many/],
      [["--max-upload", "lots"], /invalid --max-upload: lots/],
      [["--shutdown-grace", "-1"], /./],
    ] as const
  ) {
    const result = await runFsd([], ["serve", ".", "0", ...args]);
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, pattern);
  }
});
