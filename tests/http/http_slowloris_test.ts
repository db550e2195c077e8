/**
 * Slow and idle HTTP clients (issue 21 item 6, issue 18 item 3): every
 * HTTP connection, idle keep-alive ones too, counts in --max-clients and
 * --max-per-ip from accept to close, and no client holds one forever: a
 * request head must be whole within --request-timeout, a keep-alive wait
 * ends after --idle-timeout, a request (its body in, its response out)
 * must move --min-rate. Each attack on loopback against `fsd serve
 * --http-only` as a subprocess, bounded; the log says why each was cut.
 */

import assert from "node:assert/strict";
import { tempDir } from "../support/files.ts";
import { rawRequest, serveHttp } from "../support/http.ts";

const encoder = new TextEncoder();
const GET = "GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n";

/** Resolves true once the server closes `conn` (reads until then; bounded by the caller's deadlines). */
async function closedByServer(conn: Deno.Conn): Promise<boolean> {
  const buffer = new Uint8Array(65536);
  for (let i = 0; i < 100_000; i++) {
    const n = await conn.read(buffer).catch(() => null);
    if (n === null) return true;
  }
  return false;
}

/** A complete keep-alive GET on `conn`, its response read whole: the connection stays open. */
async function keepAliveGet(conn: Deno.Conn): Promise<string> {
  await conn.write(encoder.encode("GET /a.txt HTTP/1.1\r\nhost: x\r\n\r\n"));
  const buffer = new Uint8Array(4096);
  let text = "";
  for (let i = 0; i < 100 && !/\r\n\r\nserved\n$/.test(text); i++) {
    const n = await conn.read(buffer);
    if (n === null) break;
    text += new TextDecoder().decode(buffer.subarray(0, n));
  }
  return text;
}

Deno.test("http slowloris: N half-sent requests cannot hold --max-clients N beyond --request-timeout", async () => {
  await using dir = await tempDir();
  const N = 8;
  await using server = await serveHttp(dir.path, [
    "--max-clients",
    String(N),
    "--request-timeout",
    "1",
    "--idle-timeout",
    "30",
  ]);
  // Each sends most of a request head, then nothing: every place is taken.
  const slow = await Promise.all(Array.from({ length: N }, async () => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    await conn.write(encoder.encode("GET / HTTP/1.1\r\nhost: x\r\nx-slow: "));
    return conn;
  }));
  try {
    // While they hold, a new client is told the server is busy (once all N are admitted).
    let busy = { status: 0, text: "" };
    for (let i = 0; i < 20 && busy.status !== 503; i++) busy = await rawRequest(server.port, GET);
    assert.equal(busy.status, 503, busy.text);
    assert.match(busy.text, new RegExp(`server busy: serving ${N} connections, its limit`));
    // Each is cut by the request deadline, and the log says so, with the client's address.
    for (const conn of slow) assert.ok(await closedByServer(conn));
    await server.waitForLine(
      /^\[\d+\] request timeout: no whole request head within 1 s \(HTTP client 127\.0\.0\.1 port \d+\); closing$/,
      N,
    );
    // The places are free again.
    const after = await rawRequest(server.port, GET);
    assert.equal(after.status, 200, after.text);
  } finally {
    for (const conn of slow) conn.close();
  }
});

Deno.test("http slowloris: a head dribbled one byte at a time is cut; a keep-alive request is timed from its first byte", async () => {
  await using dir = await tempDir();
  await Deno.writeTextFile(`${dir.path}/a.txt`, "served\n");
  await using server = await serveHttp(dir.path, [
    "--request-timeout",
    "1",
    "--idle-timeout",
    "30",
  ]);
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  try {
    // A first request served, then the next one begun and never finished.
    assert.match(await keepAliveGet(conn), /^HTTP\/1\.1 200 /);
    const head = encoder.encode("GET /a.txt HTTP/1.1\r\nhost: x\r\n");
    let sent = 0;
    const dribbling = (async () => {
      for (; sent < head.length; sent++) {
        try {
          await conn.write(head.subarray(sent, sent + 1));
        } catch {
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    })();
    assert.ok(await closedByServer(conn));
    await dribbling;
    assert.ok(sent < head.length, "the whole head got through");
    await server.waitForLine(
      /^\[\d+\] request timeout: a request head took over 1 s to arrive \(HTTP client 127\.0\.0\.1 port \d+\); closing$/,
    );
  } finally {
    conn.close();
  }
});

Deno.test("http: idle keep-alive connections count in --max-per-ip until --idle-timeout closes them", async () => {
  await using dir = await tempDir();
  await Deno.writeTextFile(`${dir.path}/a.txt`, "served\n");
  await using server = await serveHttp(dir.path, ["--max-per-ip", "2", "--idle-timeout", "2"]);
  const idle = await Promise.all(
    [0, 1].map(() => Deno.connect({ hostname: "127.0.0.1", port: server.port })),
  );
  try {
    // Each served a request and now waits, idle, for the next.
    for (const conn of idle) assert.match(await keepAliveGet(conn), /^HTTP\/1\.1 200 /);
    const refused = await rawRequest(server.port, GET);
    assert.equal(refused.status, 503, refused.text);
    assert.match(refused.text, /too many connections from 127\.0\.0\.1: at most 2/);
    await server.waitForLine(/rejected with error 503: too many connections from 127\.0\.0\.1/);
    // The idle timeout ends both, and says so.
    for (const conn of idle) assert.ok(await closedByServer(conn));
    await server.waitForLine(
      /^\[\d+\] idle timeout: no request for 2 s on a keep-alive connection \(HTTP client 127\.0\.0\.1 port \d+\); closing$/,
      2,
    );
    const after = await rawRequest(server.port, GET);
    assert.equal(after.status, 200, after.text);
  } finally {
    for (const conn of idle) conn.close();
  }
});

Deno.test("http slowloris: a body slower than --min-rate is cut, and the upload leaves nothing", async () => {
  await using dir = await tempDir();
  await using server = await serveHttp(dir.path, [
    "--request-timeout",
    "1",
    "--min-rate",
    "1000",
    "--idle-timeout",
    "30",
  ]);
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  try {
    // 100 kB announced, 10 bytes sent: silent, but well within the 30 s idle timeout.
    await conn.write(
      encoder.encode(
        "PUT /slow.bin HTTP/1.1\r\nhost: x\r\ncontent-length: 100000\r\n\r\n0123456789",
      ),
    );
    assert.ok(await closedByServer(conn));
    await server.waitForLine(
      /^\[\d+\] PUT "slow\.bin": too slow: under 1000 bytes\/s for 1 s \(HTTP client 127\.0\.0\.1\); closing$/,
    );
  } finally {
    conn.close();
  }
  assert.deepEqual([...Deno.readDirSync(dir.path)], []);
});

Deno.test("http slowloris: a client that stops reading its download is cut by --min-rate", async () => {
  await using dir = await tempDir();
  await Deno.writeFile(`${dir.path}/big.bin`, new Uint8Array(64 * 1024 * 1024));
  await using server = await serveHttp(dir.path, [
    "--request-timeout",
    "1",
    "--min-rate",
    "100000",
    "--idle-timeout",
    "30",
  ]);
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  try {
    // Asks, then reads nothing: the socket buffers fill and the server's writes stall.
    await conn.write(encoder.encode("GET /big.bin HTTP/1.1\r\nhost: x\r\n\r\n"));
    await server.waitForLine(
      /^\[\d+\] GET "big\.bin": too slow: under 100000 bytes\/s for 1 s \(HTTP client 127\.0\.0\.1\); closing$/,
    );
  } finally {
    conn.close();
  }
});

Deno.test("http: through a trusted proxy each request counts as the client X-Forwarded-For names", async () => {
  await using dir = await tempDir();
  await Deno.writeTextFile(`${dir.path}/a.txt`, "served\n");
  await using server = await serveHttp(dir.path, [
    "--proxy-protocol",
    "--trusted-proxy",
    "127.0.0.1",
    "--max-per-ip",
    "1",
  ]);
  // Two keep-alive connections from the proxy, both open: the proxy itself is not one client.
  const conns = await Promise.all(
    [0, 1].map(() => Deno.connect({ hostname: "127.0.0.1", port: server.port })),
  );
  try {
    for (const [i, conn] of conns.entries()) {
      await conn.write(
        encoder.encode(
          `GET /a.txt HTTP/1.1\r\nhost: x\r\nx-forwarded-for: 10.0.0.${i + 1}\r\n\r\n`,
        ),
      );
      const buffer = new Uint8Array(4096);
      const n = await conn.read(buffer);
      assert.match(new TextDecoder().decode(buffer.subarray(0, n!)), /^HTTP\/1\.1 200 /);
    }
    await server.waitForLine(/GET "a\.txt": sent file/, 2);
  } finally {
    for (const conn of conns) conn.close();
  }
});
