/**
 * Client traces and ladder diagrams: `fsd get/put/ls --trace fsd` prints the
 * lines `fsd proxy --trace fsd` prints, `--trace ladder` draws the exchange
 * with long runs summarised, and `--pcap FILE` records the client's own
 * connection.
 */

import assert from "node:assert/strict";
import { arrowLine, Ladder, ladderHeader, packetLabel } from "../../lib/capture/ladder.ts";
import { describePacket } from "../../lib/capture/trace.ts";
import { Opcode, type Packet } from "../../lib/fsd/codec.ts";
import { runFsd, spawnFsd } from "../support/cli.ts";
import { randomBytes, tempDir } from "../support/files.ts";
import { startServer } from "../support/server.ts";
import { decodePdus } from "../support/tshark.ts";
import { needs } from "../support/tools.ts";

const untimed = (line: string) => line.replace(/^\d\d:\d\d:\d\d\.\d{3} /, "");

Deno.test("ladder: arrows as the handouts draw them, client left, server right", () => {
  assert.equal(ladderHeader(), "Client                           Server");
  assert.equal(arrowLine("down", "DAT 1 (27 bytes)"), "  |  <---- DAT 1 (27 bytes) -------  |");
  assert.equal(arrowLine("up", "ACK 1"), "  |  ---- ACK 1 ------------------>  |");
  assert.equal(arrowLine("up", 'RRQ "notes.txt"'), '  |  ---- RRQ "notes.txt" -------->  |');
});

Deno.test("ladder: a label too long for the arrow goes after the server's lifeline, which stays put", () => {
  const long = 'OPT blksize=65464 windowsize=16 tsize=0 name="a rather long file name.txt"';
  for (const direction of ["up", "down"] as const) {
    const line = arrowLine(direction, long);
    assert.equal(line.indexOf("|", 3), arrowLine(direction, "ACK 1").lastIndexOf("|"), line);
    assert.ok(line.endsWith(`|  ${long}`), line);
  }
});

Deno.test("ladder: a 1 GiB download in windows of 16 takes a dozen lines, its last block drawn", () => {
  const lines: string[] = [];
  const ladder = new Ladder((line) => lines.push(line));
  const full = new Uint8Array(65464);
  const dat = (block: number, data: Uint8Array): Packet => ({ op: Opcode.DAT, block, data });
  const ack = (block: number): Packet => ({ op: Opcode.ACK, block });
  ladder.packet("up", { op: Opcode.RRQ, name: new TextEncoder().encode("disk.img") });
  const blocks = Math.floor(2 ** 30 / full.length); // 16402 full blocks
  let block = 0;
  for (let i = 0; i < blocks; i++) {
    block = (block + 1) & 0xffff;
    ladder.packet("down", dat(block, full));
    if (i % 16 === 15) ladder.packet("up", ack(block));
  }
  block = (block + 1) & 0xffff;
  ladder.packet("down", dat(block, full.subarray(0, 2 ** 30 - blocks * full.length)));
  ladder.packet("up", ack(block));
  ladder.close();
  assert.ok(lines.length < 15, lines.join("\n"));
  assert.equal(lines[0], '  |  ---- RRQ "disk.img" --------->  |');
  assert.equal(lines[1], "  |  <---- DAT 1 (65464 bytes) ----  |");
  const summary = lines.find((line) => line.includes("more DAT"))!;
  const [, hiddenDat, hiddenBytes, hiddenAcks] = /(\d+) more DAT \((\d+) bytes\) and (\d+) ACK/
    .exec(summary)!.map(Number);
  assert.equal(hiddenDat, blocks - 6);
  assert.equal(hiddenBytes, (blocks - 6) * full.length);
  assert.equal(hiddenAcks, Math.floor(blocks / 16));
  assert.equal(
    lines.at(-2),
    `  |  <-----------------------------  |  DAT ${block} (${
      2 ** 30 - blocks * full.length
    } bytes)`, // too long for the arrow: after the lifeline, which stays in its column
  );
  assert.equal(lines.at(-1), `  |  ---- ACK ${block} -------------->  |`);
});

Deno.test("ladder: a short run is drawn in full, not summarised", () => {
  const lines: string[] = [];
  const ladder = new Ladder((line) => lines.push(line));
  for (let block = 1; block <= 5; block++) {
    ladder.packet("down", { op: Opcode.DAT, block, data: new Uint8Array(512) });
    ladder.packet("up", { op: Opcode.ACK, block });
  }
  ladder.packet("down", { op: Opcode.DAT, block: 6, data: new Uint8Array(3) });
  ladder.close();
  assert.equal(lines.length, 11);
  assert.ok(!lines.some((line) => line.includes("more DAT")));
});

Deno.test("fsd get --trace fsd prints on stderr the lines fsd proxy --trace fsd prints", async () => {
  await using ctx = await startServer({ name: "lab" });
  await Deno.writeFile(`${ctx.root}/f.bin`, randomBytes(1300, 2));
  const proxy = await spawnFsd(
    ["proxy", "0", "127.0.0.1", String(ctx.port), "--host", "127.0.0.1", "--trace", "fsd"],
    ["--allow-net=127.0.0.1"],
    /^Proxy listening on /,
  );
  let got;
  try {
    got = await runFsd([`--allow-net=127.0.0.1:${proxy.port}`], [
      "get",
      "127.0.0.1",
      String(proxy.port),
      "f.bin",
      "-",
      "--trace",
      "fsd",
      "--blksize",
      "512",
      "--window",
      "2",
    ]);
    await proxy.waitForLine(/^\[1\] closed: /);
  } finally {
    await proxy.stop();
  }
  assert.equal(got.code, 0, got.stderr);
  assert.deepEqual(got.stdoutBytes, randomBytes(1300, 2));
  const client = got.stderr.split("\n").filter((l) => /^\d\d:\d\d:\d\d\.\d{3} \[1\] [<>] /.test(l));
  const relayed = proxy.lines.filter((l) => /^\d\d:\d\d:\d\d\.\d{3} \[1\] [<>] /.test(l));
  assert.deepEqual(client.map(untimed), relayed.map(untimed));
  assert.deepEqual(client.map(untimed).slice(2, 6), [
    "[1] > OPT blksize=512 windowsize=2 tsize=0 crc32=1 kind=0 eager=1 pipeline=1",
    '[1] > RRQ "f.bin"',
    "[1] < OACK blksize=512 windowsize=2 tsize=1300 crc32=1 kind=1 eager=1 pipeline=1",
    "[1] < DAT 1 512 bytes",
  ]);
});

Deno.test("fsd put and ls --trace ladder draw the exchange on stderr", async () => {
  await using ctx = await startServer({ name: "lab" });
  await using work = await tempDir();
  await Deno.writeTextFile(`${work.path}/up.txt`, "up");
  const net = [`--allow-net=127.0.0.1:${ctx.port}`];
  const port = String(ctx.port);
  const put = await runFsd([...net, `--allow-read=${work.path}`], [
    "put",
    "127.0.0.1",
    port,
    `${work.path}/up.txt`,
    "--fsd1",
    "--trace",
    "ladder",
  ]);
  assert.equal(put.code, 0, put.stderr);
  assert.deepEqual(put.stderr.trimEnd().split("\n"), [
    "Client                           Server",
    "  |  <---- DAT 1 (27 bytes) -------  |",
    "  |  ---- ACK 1 ------------------>  |",
    '  |  ---- WRQ "up.txt" ----------->  |',
    "  |  <---- ACK 0 ------------------  |",
    "  |  ---- DAT 1 (2 bytes) -------->  |",
    "  |  <---- ACK 1 ------------------  |",
  ]);
  const ls = await runFsd(net, ["ls", "127.0.0.1", port, "--trace", "ladder"]);
  assert.equal(ls.code, 0, ls.stderr);
  assert.match(ls.stderr, /---- DRQ -+>/);
  assert.match(ls.stdout, /up\.txt/);
  const bad = await runFsd(net, ["ls", "127.0.0.1", port, "--trace", "loud"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /invalid --trace: loud: expected fsd, ladder, hex, text or none/);
});

Deno.test("fsd get, put and ls --pcap FILE record the client's own connection", async (t) => {
  await using ctx = await startServer({ name: "lab" });
  await using work = await tempDir();
  await Deno.writeTextFile(`${ctx.root}/notes.txt`, "hello notes\n");
  await Deno.writeTextFile(`${work.path}/up.txt`, "uploaded");
  const port = String(ctx.port);
  const net = `--allow-net=127.0.0.1:${port}`;
  const runs = {
    get: await runFsd([net, `--allow-write=${work.path}`, `--allow-read=${work.path}`], [
      "get",
      "127.0.0.1",
      port,
      "notes.txt",
      `${work.path}/notes.txt`,
      "--fsd1",
      "--pcap",
      `${work.path}/get.pcap`,
    ]),
    put: await runFsd([net, `--allow-write=${work.path}`, `--allow-read=${work.path}`], [
      "put",
      "127.0.0.1",
      port,
      `${work.path}/up.txt`,
      "--fsd1",
      "--pcap",
      `${work.path}/put.pcap`,
    ]),
    ls: await runFsd([net, `--allow-write=${work.path}/ls.pcap`], [
      "ls",
      "127.0.0.1",
      port,
      "--pcap",
      `${work.path}/ls.pcap`,
    ]),
  };
  for (const [name, run] of Object.entries(runs)) {
    assert.equal(run.code, 0, `${name}: ${run.stderr}`);
    const file = await Deno.readFile(`${work.path}/${name}.pcap`);
    const mode = (await Deno.stat(`${work.path}/${name}.pcap`)).mode! & 0o777;
    assert.equal(mode, 0o600, "a capture holds everything: its owner's only");
    assert.deepEqual([...file.subarray(0, 4)], [0xd4, 0xc3, 0xb2, 0xa1], "pcap magic");
  }
  await t.step({
    name: "tshark decodes the three captures",
    ...needs("tshark"),
    fn: async () => {
      const info = async (name: string) =>
        (await decodePdus(`${work.path}/${name}.pcap`)).map((p) => p.info);
      assert.deepEqual(await info("get"), [
        "DAT 1 (27 bytes)",
        "ACK 1",
        'RRQ "notes.txt"',
        "DAT 1 (12 bytes)",
        "ACK 1",
      ]);
      assert.deepEqual(await info("put"), [
        "DAT 1 (27 bytes)",
        "ACK 1",
        'WRQ "up.txt"',
        "ACK 0",
        "DAT 1 (8 bytes)",
        "ACK 1",
      ]);
      assert.deepEqual((await info("ls")).slice(0, 3), ["DAT 1 (27 bytes)", "ACK 1", "DRQ"]);
    },
  });
});

Deno.test("fsd proxy --trace ladder draws each connection, lines tagged with its id", async () => {
  await using ctx = await startServer({ name: "lab" });
  await Deno.writeTextFile(`${ctx.root}/notes.txt`, "hello notes\n");
  const proxy = await spawnFsd(
    ["proxy", "0", "127.0.0.1", String(ctx.port), "--host", "127.0.0.1", "--trace", "ladder"],
    ["--allow-net=127.0.0.1"],
    /^Proxy listening on /,
  );
  try {
    const got = await runFsd([`--allow-net=127.0.0.1:${proxy.port}`], [
      "get",
      "127.0.0.1",
      String(proxy.port),
      "notes.txt",
      "-",
      "--fsd1",
    ]);
    assert.equal(got.code, 0, got.stderr);
    await proxy.waitForLine(/^\[1\] closed: /);
  } finally {
    await proxy.stop();
  }
  assert.deepEqual(proxy.lines.filter((l) => l.startsWith("[1]  ") || l.includes("Client")), [
    "[1] Client                           Server",
    "[1]   |  <---- DAT 1 (27 bytes) -------  |",
    "[1]   |  ---- ACK 1 ------------------>  |",
    '[1]   |  ---- RRQ "notes.txt" -------->  |',
    "[1]   |  <---- DAT 1 (12 bytes) -------  |",
    "[1]   |  ---- ACK 1 ------------------>  |",
  ]);
});

Deno.test("fsd proxy --pcap into a directory that does not exist: a clear error", async () => {
  const proxy = await runFsd(["--allow-net", "--allow-write"], [
    "proxy",
    "0",
    "127.0.0.1",
    "1",
    "--host",
    "127.0.0.1",
    "--pcap",
    "/nonexistent/dir/x.pcap",
  ]);
  assert.equal(proxy.code, 1);
  assert.match(proxy.stderr, /^fsd: cannot write capture file \/nonexistent\/dir\/x\.pcap: /);
});

Deno.test("traces hide the values of secret-looking options (a trace is a log)", () => {
  const opt: Packet = {
    op: Opcode.OPT,
    options: [["user", "ada"], ["password", "hunter2"], ["token", "t0k"], ["blksize", "512"]],
  };
  for (const line of [describePacket(opt), packetLabel(opt)]) {
    assert.equal(line, "OPT user=ada password=*** token=*** blksize=512");
  }
});
