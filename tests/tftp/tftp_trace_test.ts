/**
 * `fsd get/put tftp://... --trace MODE` (issue 19): every datagram on
 * stderr with the names fsd/1's trace, ladder and dissector use (`RRQ
 * "notes.txt"`, `OACK ...`, `DAT 7 (512 bytes)`, `ACK 7`, `ERR 1 ...`),
 * against `fsd serve --tftp` as a subprocess, the client with its documented
 * permissions.
 */

import assert from "node:assert/strict";
import { runFsd, spawnFsd } from "../support/cli.ts";
import { randomBytes, tempDir } from "../support/files.ts";

function serve(dir: string) {
  return spawnFsd(
    ["serve", dir, "0", "--host", "127.0.0.1", "--tftp", "0"],
    ["--allow-net", `--allow-read=${dir}`, `--allow-write=${dir}`],
    /^TFTP server listening on /,
  );
}

const client = (local: string) => [
  "--allow-net=127.0.0.1",
  `--allow-read=${local}`,
  `--allow-write=${local}`,
];

Deno.test("tftp trace: get --trace fsd prints one line per datagram, fsd/1's names", async () => {
  await using served = await tempDir();
  await using local = await tempDir();
  await Deno.writeFile(`${served.path}/notes.txt`, randomBytes(1300));
  await using server = await serve(served.path);
  const got = await runFsd(client(local.path), [
    "get",
    `tftp://127.0.0.1:${server.port}/notes.txt`,
    `${local.path}/notes.txt`,
    "--blksize",
    "512",
    "--window",
    "1",
    "--trace",
    "fsd",
  ]);
  assert.equal(got.code, 0, got.stderr);
  const lines = got.stderr.trim().split("\n").map((line) => line.replace(/^[\d:.]+ /, ""));
  assert.deepEqual(lines, [
    '[1] > RRQ "notes.txt" blksize=512 tsize=0 windowsize=1',
    "[1] < OACK blksize=512 tsize=1300 windowsize=1",
    "[1] > ACK 0",
    "[1] < DAT 1 (512 bytes)",
    "[1] > ACK 1",
    "[1] < DAT 2 (512 bytes)",
    "[1] > ACK 2",
    "[1] < DAT 3 (276 bytes)",
    "[1] > ACK 3",
  ]);
  const missing = await runFsd(client(local.path), [
    "get",
    `tftp://127.0.0.1:${server.port}/missing.txt`,
    `${local.path}/missing.txt`,
    "--trace",
    "fsd",
  ]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /\[1\] < ERR 1 File not found\n/);
});

Deno.test("tftp trace: put --trace ladder draws the upload", async () => {
  await using served = await tempDir();
  await using local = await tempDir();
  await Deno.writeFile(`${local.path}/hw1.txt`, randomBytes(700));
  await using server = await serve(served.path);
  const put = await runFsd(client(local.path), [
    "put",
    `tftp://127.0.0.1:${server.port}/hw1.txt`,
    `${local.path}/hw1.txt`,
    "--blksize",
    "512",
    "--window",
    "1",
    "--trace",
    "ladder",
  ]);
  assert.equal(put.code, 0, put.stderr);
  assert.deepEqual(put.stderr.trimEnd().split("\n"), [
    "Client                           Server",
    '  |  ----------------------------->  |  WRQ "hw1.txt" blksize=512 tsize=700 windowsize=1',
    "  |  <-----------------------------  |  OACK blksize=512 tsize=700 windowsize=1",
    "  |  ---- DAT 1 (512 bytes) ------>  |",
    "  |  <---- ACK 1 ------------------  |",
    "  |  ---- DAT 2 (188 bytes) ------>  |",
    "  |  <---- ACK 2 ------------------  |",
  ]);
  assert.deepEqual(await Deno.readFile(`${served.path}/hw1.txt`), randomBytes(700));
});

Deno.test("tftp trace: --trace text shows each datagram's bytes", async () => {
  await using served = await tempDir();
  await using local = await tempDir();
  await Deno.writeTextFile(`${served.path}/hello.txt`, "hello over TFTP\n");
  await using server = await serve(served.path);
  const got = await runFsd(client(local.path), [
    "get",
    `tftp://127.0.0.1:${server.port}/hello.txt`,
    "-",
    "--fsd1",
    "--trace",
    "text",
  ]);
  assert.equal(got.code, 0, got.stderr);
  assert.equal(got.stdout, "hello over TFTP\n");
  assert.match(got.stderr, /\[1\] > 18 bytes\n {2}\.\.hello\.txt\.octet\./);
  assert.match(got.stderr, /\[1\] < 20 bytes\n {2}\.\.\.\.hello over TFTP/);
});
