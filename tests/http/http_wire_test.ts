/**
 * The HTTP face's own HTTP/1.1 (lib/http/wire*.ts): request heads parsed
 * strictly (smuggling shapes refused, sizes bounded), chunked bodies,
 * pipelined requests on one connection, 100-continue, HEAD and keep-alive,
 * against `fsd serve --http-only` over raw sockets on loopback.
 */

import assert from "node:assert/strict";
import { BadRequest, keepsAlive, MAX_HEAD, parseHead } from "../../lib/http/wire.ts";
import { tempDir } from "../support/files.ts";
import { rawRequest, serveHttp } from "../support/http.ts";

const encoder = new TextEncoder();
const head = (text: string) => parseHead(encoder.encode(text + "\r\n\r\n"));

Deno.test("http wire: request heads by the rules; smuggling shapes refused", () => {
  const ok = head("GET /a%20b?json HTTP/1.1\r\nHost: x\r\nConnection: close");
  assert.equal(ok.method, "GET");
  assert.equal(ok.target, "/a%20b?json");
  assert.equal(keepsAlive(ok), false);
  assert.equal(keepsAlive(head("GET / HTTP/1.1\r\nhost: x")), true);
  assert.equal(keepsAlive(head("GET / HTTP/1.0")), false);
  assert.equal(head("GET http://x:1/p?q HTTP/1.1\r\nhost: x").target, "/p?q");
  const refused: [string, number, RegExp][] = [
    ["GET / HTTP/1.1\r\nhost: x\r\ncontent-length: 1\r\ntransfer-encoding: chunked", 400, /both/],
    ["PUT / HTTP/1.1\r\nhost: x\r\ncontent-length: 1\r\ncontent-length: 2", 400, /content-length/],
    ["PUT / HTTP/1.1\r\nhost: x\r\ncontent-length: -1", 400, /content-length/],
    ["PUT / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: gzip, chunked", 501, /not supported/],
    ["GET / HTTP/1.1\r\nhost: x\r\n folded: line", 400, /bad header line/],
    ["GET / HTTP/1.1\r\nhost: x\r\nbad name: v", 400, /bad header line/],
    ["GET / HTTP/1.1", 400, /no host/],
    ["GET / HTTP/2.0\r\nhost: x", 400, /request line/],
    ["GET  / HTTP/1.1\r\nhost: x", 400, /request line/],
    ["GET * HTTP/1.1\r\nhost: x", 400, /not a path/],
    ["GET / HTTP/1.1\r\nhost: x\r\n" + "a: b\r\n".repeat(101).slice(0, -2), 431, /too many/],
  ];
  for (const [text, status, message] of refused) {
    assert.throws(() => head(text), (error: unknown) => {
      assert.ok(error instanceof BadRequest, text);
      assert.equal(error.status, status, text);
      assert.match(error.message, message, text);
      return true;
    });
  }
});

Deno.test("http wire: pipelining, chunked uploads, 100-continue, oversized heads", async () => {
  await using dir = await tempDir();
  await Deno.writeTextFile(`${dir.path}/a.txt`, "served\n");
  await using server = await serveHttp(dir.path);
  // Two requests in one write: two answers, in order, on one connection.
  const both = await rawRequest(
    server.port,
    "HEAD /a.txt HTTP/1.1\r\nhost: x\r\n\r\nGET /a.txt HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
  );
  const statuses = [...both.text.matchAll(/^HTTP\/1\.1 (\d{3})/gm)].map((m) => m[1]);
  assert.deepEqual(statuses, ["200", "200"]);
  assert.ok(both.text.endsWith("\r\n\r\nserved\n"), both.text);
  // HTTP/1.0 knows no chunks: a body of unknown length (?tar) comes as it is, ended by closing.
  const old = await rawRequest(server.port, "GET /?tar HTTP/1.0\r\n\r\n");
  assert.equal(old.status, 200);
  assert.doesNotMatch(old.text, /transfer-encoding/i);
  assert.match(old.text, /\r\nconnection: close\r\n/);
  assert.ok(old.text.includes("a.txt"));
  // A chunked upload, with an extension and a trailer.
  const put = await rawRequest(
    server.port,
    "PUT /c.txt HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n" +
      "4;ext=1\r\nabcd\r\n3\r\nefg\r\n0\r\ntrailer: x\r\n\r\n",
  );
  assert.equal(put.status, 201, put.text);
  assert.equal(await Deno.readTextFile(`${dir.path}/c.txt`), "abcdefg");
  // Expect: 100-continue: the interim answer comes before the body is sent.
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  try {
    await conn.write(
      encoder.encode(
        "PUT /e.txt HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\nexpect: 100-continue\r\nconnection: close\r\n\r\n",
      ),
    );
    const buffer = new Uint8Array(4096);
    const n = await conn.read(buffer);
    assert.equal(new TextDecoder().decode(buffer.subarray(0, n!)), "HTTP/1.1 100 Continue\r\n\r\n");
    await conn.write(encoder.encode("xyz"));
    let text = "";
    for (let i = 0; i < 50; i++) {
      const m = await conn.read(buffer);
      if (m === null) break;
      text += new TextDecoder().decode(buffer.subarray(0, m));
    }
    assert.match(text, /^HTTP\/1\.1 201 /);
  } finally {
    conn.close();
  }
  assert.equal(await Deno.readTextFile(`${dir.path}/e.txt`), "xyz");
  // A head past the limit: 431, and the server goes on.
  const huge = await rawRequest(
    server.port,
    `GET / HTTP/1.1\r\nhost: x\r\nx-big: ${"a".repeat(MAX_HEAD)}\r\n\r\n`,
  );
  assert.equal(huge.status, 431);
  const smuggled = await rawRequest(
    server.port,
    "POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 4\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n",
  );
  assert.equal(smuggled.status, 400);
  assert.equal(
    (await rawRequest(server.port, "GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"))
      .status,
    200,
  );
  await server.waitForLine(/error 431: request head too large/);
});

Deno.test("http wire: on SIGTERM idle keep-alive connections close at once; a running download finishes", async () => {
  await using dir = await tempDir();
  await Deno.writeTextFile(`${dir.path}/a.txt`, "served\n");
  await Deno.writeFile(`${dir.path}/big.bin`, new Uint8Array(32 * 1024 * 1024));
  await using server = await serveHttp(dir.path, ["--shutdown-grace", "60"]);
  const idle = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  const busy = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  try {
    await idle.write(encoder.encode("GET /a.txt HTTP/1.1\r\nhost: x\r\n\r\n"));
    const buffer = new Uint8Array(65536);
    assert.match(
      new TextDecoder().decode(buffer.subarray(0, (await idle.read(buffer))!)),
      /^HTTP\/1\.1 200/,
    );
    // A download begun and not yet read: it holds the server's attention through the shutdown.
    await busy.write(encoder.encode("GET /big.bin HTTP/1.1\r\nhost: x\r\n\r\n"));
    let total = (await busy.read(buffer)) ?? 0;
    assert.ok(total > 0);
    const stopping = server.stop();
    await server.waitForLine(/^shutting down: waiting up to 60\.000 s for 1 connection\(s\)$/);
    assert.equal(await idle.read(buffer), null, "the idle connection is closed at once");
    for (let i = 0; i < 100_000; i++) {
      const n = await busy.read(buffer);
      if (n === null) break;
      total += n;
    }
    assert.ok(total > 32 * 1024 * 1024, `the download finished: ${total} bytes`);
    assert.equal((await stopping).code, 0);
  } finally {
    idle.close();
    busy.close();
  }
});
