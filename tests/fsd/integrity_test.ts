/**
 * Integrity on by default, and checks that cannot be done: the CLI as a
 * subprocess against a real server (serve --fsd1 for one without the
 * extension) or a scripted one (an older fsd server that knows no crc32).
 * A check that was asked for and cannot be done exits 1 and keeps nothing;
 * the default check that cannot be done warns and goes on.
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { crc32 } from "node:zlib";
import { Buffer } from "node:buffer";
import { rng } from "./fuzz.ts";
import { crc32Js, hasherFor, toHex } from "../../lib/bytes/sha256.ts";
import { net, runFsd, rw, spawnServe } from "../support/cli.ts";
import { dirNames, randomBytes, tempDir } from "../support/files.ts";
import { fakeServer, RawClient, wire } from "../support/raw_client.ts";
import { startServer } from "../support/server.ts";

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

Deno.test("get - --sha256 WRONG: the data, then exit 1 and the mismatch (with and without --fsd1)", async () => {
  await using ctx = await startServer();
  const content = randomBytes(3000, 4);
  await Deno.writeFile(`${ctx.root}/data.csv`, content);
  for (const fsd1 of [[], ["--fsd1"]]) {
    const args = ["get", "127.0.0.1", String(ctx.port), "data.csv", "-", ...fsd1, "--sha256"];
    const wrong = await runFsd([net(ctx.port)], [...args, "0".repeat(64)]);
    assert.equal(wrong.code, 1, wrong.stderr);
    assert.deepEqual(wrong.stdoutBytes, content);
    assert.match(
      wrong.stderr,
      /^fsd: sha256 mismatch: data\.csv has [0-9a-f]{64}, expected 0{64}\n$/,
    );
    const right = await runFsd([net(ctx.port)], [...args, sha256(content)]);
    assert.equal(right.code, 0, right.stderr);
    assert.deepEqual(right.stdoutBytes, content);
  }
});

Deno.test("get - --continue is a usage error, not silently ignored", async () => {
  const result = await runFsd([], ["get", "127.0.0.1", "9", "f", "-", "--continue"]);
  assert.equal(result.code, 2);
  assert.match(result.stderr, /^fsd: --continue does not mix with LOCAL '-'/);
});

Deno.test("--integrity and --sha256 with --fsd1: exit 1 before anything moves, for get and put", async () => {
  await using ctx = await startServer();
  await using work = await tempDir();
  await Deno.writeFile(`${ctx.root}/f`, randomBytes(100));
  await Deno.writeFile(`${work.path}/up`, randomBytes(100));
  const port = String(ctx.port);
  for (
    const [args, flag] of [
      [["get", "127.0.0.1", port, "f", `${work.path}/f`, "--integrity"], "--integrity"],
      [["get", "127.0.0.1", port, "f", "-", "--integrity", "sha256"], "--integrity"],
      [["put", "127.0.0.1", port, `${work.path}/up`, "--integrity"], "--integrity"],
      [["put", "127.0.0.1", port, `${work.path}/up`, "--sha256"], "--sha256"],
    ]
  ) {
    const result = await runFsd([net(ctx.port), ...rw(work.path)], [...args, "--fsd1"]);
    assert.equal(result.code, 1, result.stderr);
    assert.equal(result.stdout, "");
    assert.equal(
      result.stderr,
      `fsd: ${flag} cannot be checked with --fsd1: plain fsd/1 carries no checksum\n`,
    );
  }
  assert.deepEqual(await dirNames(work.path), ["up"]);
  assert.deepEqual(await dirNames(ctx.root), ["f"]);
});

Deno.test("--integrity over TFTP: exit 1, TFTP carries no checksum", async () => {
  for (
    const args of [["get", "tftp://127.0.0.1:9/f", "--integrity"], [
      "put",
      "tftp://127.0.0.1:9/f",
      "x",
      "--sha256",
    ]]
  ) {
    const result = await runFsd([], args);
    assert.equal(result.code, 1, result.stderr);
    assert.match(
      result.stderr,
      /^fsd: --(integrity|sha256) cannot be checked over TFTP: it carries no checksum\n$/,
    );
  }
});

Deno.test("against a server that speaks only fsd/1: --integrity exits 1 and keeps nothing; the default check warns and goes on", async () => {
  await using served = await tempDir();
  await using work = await tempDir();
  const content = randomBytes(5000, 6);
  await Deno.writeFile(`${served.path}/f.bin`, content);
  await Deno.writeFile(`${work.path}/up.bin`, content);
  await using server = await spawnServe(served.path, 0, ["--fsd1"]);
  const port = String(server.port);
  const flags = [net(server.port), ...rw(work.path)];

  const asked = await runFsd(flags, ["get", "127.0.0.1", port, "f.bin", "--integrity"], {
    cwd: work.path,
  });
  assert.equal(asked.code, 1, asked.stderr);
  assert.match(
    asked.stderr,
    /^fsd: --integrity: the server speaks only fsd\/1, which has no checksum: f\.bin not transferred\n$/,
  );
  const put = await runFsd(flags, [
    "put",
    "127.0.0.1",
    port,
    `${work.path}/up.bin`,
    "x",
    "--sha256",
  ]);
  assert.equal(put.code, 1, put.stderr);
  assert.match(
    put.stderr,
    /^fsd: --sha256: the server speaks only fsd\/1, which has no checksum: x not transferred\n$/,
  );
  assert.deepEqual(await dirNames(work.path), ["up.bin"]);
  assert.deepEqual(await dirNames(served.path), ["f.bin"]);

  const plain = await runFsd(flags, ["get", "127.0.0.1", port, "f.bin"], { cwd: work.path });
  assert.equal(plain.code, 0, plain.stderr);
  assert.match(
    plain.stderr,
    /^fsd: warning: the server speaks only fsd\/1, which has no checksum: files are not checked/m,
  );
  assert.deepEqual(await Deno.readFile(`${work.path}/f.bin`), content);
  const quiet = await runFsd(flags, ["get", "127.0.0.1", port, "f.bin", "-", "--no-integrity"]);
  assert.equal(quiet.code, 0, quiet.stderr);
  assert.equal(quiet.stderr, "");
  assert.deepEqual(quiet.stdoutBytes, content);
});

/** An fsd server from before crc32: greets, and answers an OPT without the crc32 option. */
function olderServer(content: Uint8Array) {
  return fakeServer(async (conn) => {
    const peer = RawClient.over(conn);
    await peer.send(wire.dat(1, new TextEncoder().encode("Hello from old's fileserver")));
    await peer.read(); // ACK 1
    const opt = await peer.read();
    await peer.read(); // RRQ
    assert.ok(opt?.op === "OPT" && opt.options.crc32 === "1");
    await peer.send(wire.oack({ blksize: "512", windowsize: "1", tsize: String(content.length) }));
    if ((await peer.read())?.op !== "ACK") return; // the client gave up: ERR
    await peer.send(wire.dat(1, content));
    await peer.read(); // ACK 1
  });
}

Deno.test("against an older fsd server without crc32: --integrity exits 1 and keeps nothing; the default warns", async () => {
  await using work = await tempDir();
  const content = randomBytes(300, 7);
  {
    await using server = olderServer(content);
    const asked = await runFsd([net(server.port), ...rw(work.path)], [
      "get",
      "127.0.0.1",
      String(server.port),
      "old.txt",
      "--integrity",
    ], { cwd: work.path });
    assert.equal(asked.code, 1, asked.stderr);
    assert.match(
      asked.stderr,
      /^fsd: --integrity: the server does not send crc32 checksums: old\.txt not transferred\n$/,
    );
    assert.deepEqual(await dirNames(work.path), []);
  }
  {
    await using server = olderServer(content);
    const plain = await runFsd([net(server.port), ...rw(work.path)], [
      "get",
      "127.0.0.1",
      String(server.port),
      "old.txt",
    ], { cwd: work.path });
    assert.equal(plain.code, 0, plain.stderr);
    assert.match(
      plain.stderr,
      /^fsd: warning: the server does not send crc32 checksums: files are not checked/,
    );
    assert.deepEqual(await Deno.readFile(`${work.path}/old.txt`), content);
  }
});

Deno.test("the default check: get and put --json report the CRC-32 of each file, verified", async () => {
  await using ctx = await startServer();
  await using work = await tempDir();
  const content = new TextEncoder().encode("hello");
  await Deno.writeFile(`${ctx.root}/h`, content);
  await Deno.writeFile(`${work.path}/u`, content);
  const got = await runFsd([net(ctx.port), ...rw(work.path)], [
    "get",
    "127.0.0.1",
    String(ctx.port),
    "h",
    `${work.path}/h`,
    "--json",
  ]);
  assert.equal(got.code, 0, got.stderr);
  const sent = await runFsd([net(ctx.port), `--allow-read=${work.path}`], [
    "put",
    "127.0.0.1",
    String(ctx.port),
    `${work.path}/u`,
    "--json",
  ]);
  assert.equal(sent.code, 0, sent.stderr);
  for (const out of [got.stdout, sent.stdout]) {
    const report = JSON.parse(out);
    assert.equal(report.crc32, "3610a686"); // CRC-32 of "hello", as zlib and gzip compute it
    assert.equal(report.verified, true);
    assert.equal(report.sha256, undefined);
  }
});

Deno.test("integrity: the JavaScript CRC-32 of a small transfer is zlib's, however the bytes are split, and a hasher moves from one to the other mid-file", async () => {
  const bytes = randomBytes(3 * 1024 * 1024 + 17, 9);
  const expected = crc32(bytes);
  for (const cut of [0, 1, 511, 65_536, 1_000_000]) {
    const head = bytes.subarray(0, cut);
    assert.equal(crc32Js(bytes.subarray(cut), crc32Js(head)), expected, `cut at ${cut}`);
    assert.equal(crc32Js(bytes.subarray(cut), crc32(head)), expected, `zlib, then JavaScript`);
  }
  // One hasher through 3 MiB in 64 KiB parts, its size unknown (past the first MiB it switches
  // to node:zlib) or known to be over a MiB (node:zlib from the start): the same CRC.
  for (const size of [undefined, bytes.length]) {
    const hasher = hasherFor("crc32", size);
    for (let at = 0; at < bytes.length; at += 65_536) {
      await hasher.update(bytes.subarray(at, at + 65_536));
    }
    const digest = await hasher.digest();
    assert.equal(new DataView(digest.buffer).getUint32(0), expected, `size ${size}`);
  }
  assert.equal(crc32Js(new Uint8Array(0)), 0);
  // Every byte value in each of the eight places of an eight-byte step (all eight tables).
  for (let place = 0; place < 8; place++) {
    for (let value = 0; value < 256; value++) {
      const eight = new Uint8Array(8);
      eight[place] = value;
      assert.equal(crc32Js(eight), crc32(eight), `byte ${value} at ${place}`);
    }
  }
  // Eight bytes at a time, then the rest one by one: every length and offset of a short run,
  // from any running CRC, is zlib's.
  const random = rng(20);
  for (let n = 0; n < 2_000; n++) {
    const at = Math.floor(random() * 64);
    const part = bytes.subarray(at, at + Math.floor(random() * 200));
    const start = n % 4 === 0 ? 0 : Math.floor(random() * 2 ** 32);
    assert.equal(crc32Js(part, start), crc32(part, start), `${part.length} bytes at ${at}`);
  }
});

Deno.test("integrity: a digest's hex is lower-case, two digits a byte", () => {
  const all = Uint8Array.from({ length: 256 }, (_, i) => i);
  assert.equal(toHex(all), Buffer.from(all).toString("hex"));
  assert.equal(toHex(new Uint8Array(0)), "");
});

Deno.test("integrity: node:zlib starts loading only once the jobs' expected CRC-32 bytes pass 1 MiB (get -r says what it will fetch)", async () => {
  const fixture = new URL("../support/fixtures/crc_loading.ts", import.meta.url).pathname;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", "--no-prompt", fixture],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  assert.deepEqual(JSON.parse(new TextDecoder().decode(out.stdout)), [false, false, false, true]);
});
