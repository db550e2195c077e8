/**
 * TFTP: the codec, netascii, option negotiation, and the server's rules on
 * real UDP sockets (TIDs, retransmission, windows, rollover, uploads,
 * per-client roots), with a raw peer and fsd's own TFTP client.
 */

import assert from "node:assert/strict";
import { MemorySink } from "../../lib/bytes/source_sink.ts";
import { bytesSource } from "../../lib/bytes/source_sink.ts";
import { encodeError, encodeRequest, Opcode, parsePacket } from "../../lib/tftp/codec.ts";
import { encodeNetascii, NetasciiDecoder } from "../../lib/tftp/netascii.ts";
import {
  acceptOack,
  askedPairs,
  CLIENT_MAX_WINDOW,
  clientWindow,
  grant,
  MAX_THREAD_WINDOW_BYTES,
  MAX_WINDOW_BYTES,
  parseAsked,
  slides,
} from "../../lib/tftp/options.ts";
import { tftpDownload, tftpUpload } from "../../lib/tftp/client.ts";
import { randomBytes, text } from "../support/files.ts";
import { rawDownload, RawPeer, startTftp, tftp } from "../support/tftp.ts";

const LIMITS = { maxBlockSize: 65464, maxWindowSize: 64, timeoutMs: 1000 };

Deno.test("codec: a request with options round-trips; names stay bytes", () => {
  const bytes = encodeRequest(Opcode.RRQ, "a/b.bin", "octet", [["blksize", "1428"]]);
  const packet = parsePacket(bytes);
  assert.equal(packet.op, Opcode.RRQ);
  if (packet.op !== Opcode.RRQ) return;
  assert.equal(text.decode(packet.name), "a/b.bin");
  assert.equal(packet.mode, "octet");
  assert.deepEqual(packet.options, [["blksize", "1428"]]);
  const upper = parsePacket(tftp.rrq("x", "NetASCII", "BLKSIZE", "8"));
  assert.ok(upper.op === Opcode.RRQ && upper.mode === "netascii");
  assert.deepEqual(upper.op === Opcode.RRQ && upper.options, [["blksize", "8"]]);
});

Deno.test("codec: malformed datagrams are illegal operations, never read past their end", () => {
  const cases: [string, Uint8Array][] = [
    ["empty", new Uint8Array(0)],
    ["one byte", new Uint8Array([0])],
    ["no mode", tftp.join([0, 1], text.encode("file"), [0])],
    ["unterminated name", tftp.join([0, 1], text.encode("file"))],
    ["unterminated mode", tftp.join([0, 1], text.encode("file\0octet"))],
    ["unknown mode", tftp.rrq("file", "binary")],
    ["mail mode", tftp.rrq("file", "mail")],
    ["option without value", tftp.rrq("file", "octet", "blksize")],
    ["oversized request", tftp.rrq("x".repeat(3000))],
    ["ERROR of 2 bytes", new Uint8Array([0, 5])],
    ["ERROR of 3 bytes", new Uint8Array([0, 5, 0])],
    ["short ACK", new Uint8Array([0, 4, 0])],
    ["long ACK", new Uint8Array([0, 4, 0, 1, 0])],
    ["DATA past the block size", tftp.data(1, new Uint8Array(513))],
    ["unknown opcode", new Uint8Array([0, 9, 0, 0])],
  ];
  for (const [label, bytes] of cases) {
    assert.throws(
      () => parsePacket(bytes, 512),
      (e: Error & { code?: number }) => e.code === 4,
      label,
    );
  }
  // An ERROR of exactly 4 bytes (no text, no terminator) is still an ERROR.
  const error = parsePacket(new Uint8Array([0, 5, 0, 1]));
  assert.deepEqual(error, { op: Opcode.ERROR, code: 1, message: "" });
});

Deno.test("netascii: LF <-> CR LF and CR <-> CR NUL, split anywhere", () => {
  const local = text.encode("one\ntwo\r\nbare\rend\n");
  const wire = new Uint8Array(local.length * 2);
  const n = encodeNetascii(local, wire);
  assert.equal(text.decode(wire.subarray(0, n)), "one\r\ntwo\r\0\r\nbare\r\0end\r\n");
  for (let split = 0; split <= n; split++) {
    const decoder = new NetasciiDecoder();
    const out = new Uint8Array(n + 2);
    let m = decoder.decode(wire.subarray(0, split), out);
    m += decoder.decode(wire.subarray(split, n), out.subarray(m));
    m += decoder.finish(out.subarray(m));
    assert.deepEqual(out.subarray(0, m), local, `split at ${split}`);
  }
});

Deno.test("options: unknown ignored, repeated or out of range refused, too large lowered", () => {
  const asked = parseAsked([["utimeout", "9".repeat(200)], ["blksize", "100000"], [
    "windowsize",
    "1000",
  ]]);
  const { params, oack } = grant(asked, { ...LIMITS, maxBlockSize: 1428 });
  assert.equal(params.blockSize, 1428);
  assert.equal(params.windowSize, 64);
  assert.deepEqual(oack, [["blksize", "1428"], ["windowsize", "64"]]);
  const refused: [string, string][][] = [
    [["blksize", "512"], ["blksize", "1024"]],
    [["blksize", "7"]],
    [["blksize", "-1"]],
    [["blksize", "0x200"]],
    [["blksize", "9".repeat(300)]],
    [["timeout", "0"]],
    [["timeout", "256"]],
    [["windowsize", "0"]],
    [["windowsize", "65536"]],
    [["tsize", "abc"]],
  ];
  for (const options of refused) {
    assert.throws(() => parseAsked(options), (e: Error & { code?: number }) => e.code === 8);
  }
  // Windows are bounded in bytes too: 64 KiB blocks get a window of three (192 KiB at most, to
  // fit a default 208 KiB receive buffer).
  const big = grant(parseAsked([["blksize", "65464"], ["windowsize", "64"]]), LIMITS);
  assert.equal(big.params.windowSize, 3);
  assert.ok(big.params.windowSize * big.params.blockSize <= MAX_WINDOW_BYTES);
  assert.equal(MAX_WINDOW_BYTES, 192 * 1024);
});

Deno.test("options: a sliding window on a sender thread holds up to 16 blocks of 65464; RFC 7440 windows and the event loop keep 192 KiB", () => {
  const sliding = parseAsked([["blksize", "65464"], ["windowsize", "64"], ["ackevery", "8"]]);
  const onThread = grant(sliding, LIMITS, 1 << 30, true);
  assert.equal(onThread.params.windowSize, 16);
  assert.equal(MAX_THREAD_WINDOW_BYTES, 16 * 65464);
  assert.deepEqual(onThread.oack.slice(-2), [["windowsize", "16"], ["ackevery", "8"]]);
  // Never more than asked, nor than --tftp-max-window.
  const asked4 = parseAsked([["blksize", "65464"], ["windowsize", "4"], ["ackevery", "2"]]);
  assert.equal(grant(asked4, LIMITS, 1 << 30, true).params.windowSize, 4);
  assert.equal(grant(sliding, { ...LIMITS, maxWindowSize: 5 }, 1 << 30, true).params.windowSize, 5);
  // The same request on the event loop, and an RFC 7440 window on a thread: three blocks.
  assert.equal(grant(sliding, LIMITS, 1 << 30).params.windowSize, 3);
  const rfc7440 = parseAsked([["blksize", "65464"], ["windowsize", "64"]]);
  assert.equal(grant(rfc7440, LIMITS, 1 << 30, true).params.windowSize, 3);
});

Deno.test("options: fsd's client asks for a download's window by its receive buffer (3 to 16 blocks), 3 for an upload or an unknown buffer", () => {
  // A datagram of 65464 bytes takes 70,997 of a default 212,992-byte buffer: three fit.
  assert.equal(clientWindow(65464, true, 212_992), 3);
  assert.equal(clientWindow(65464, true, 425_984), 3);
  assert.equal(clientWindow(65464, true, 1 << 21), 15);
  assert.equal(clientWindow(65464, true, 1 << 23), CLIENT_MAX_WINDOW);
  assert.equal(CLIENT_MAX_WINDOW, 16);
  assert.equal(clientWindow(8192, true, 212_992), 11);
  assert.equal(clientWindow(512, true, 212_992), 16);
  assert.equal(clientWindow(65464, true, undefined), 3, "Deno's socket: its buffer is unknown");
  assert.equal(clientWindow(65464, false, 1 << 23), 3, "an upload fills the server's buffer");
});

Deno.test("options: ackevery is granted only below the window granted; a client refuses any other", () => {
  const ask = (...pairs: [string, string][]) => grant(parseAsked(pairs), LIMITS).oack;
  assert.deepEqual(ask(["windowsize", "4"], ["ackevery", "1"]), [
    ["windowsize", "4"],
    ["ackevery", "1"],
  ]);
  // Not below the window (here lowered to 3 by 64 KiB blocks), or with no window: not granted,
  // RFC 7440's windows (or lock-step) go on.
  assert.deepEqual(ask(["blksize", "65464"], ["windowsize", "8"], ["ackevery", "3"]), [
    ["blksize", "65464"],
    ["windowsize", "3"],
  ]);
  assert.deepEqual(ask(["ackevery", "1"]), []);
  assert.equal(
    slides(grant(parseAsked([["windowsize", "3"], ["ackevery", "1"]]), LIMITS).params),
    true,
  );
  assert.equal(slides(grant(parseAsked([["windowsize", "3"]]), LIMITS).params), false);
  const asked = parseAsked([["windowsize", "4"], ["ackevery", "2"]]);
  assert.deepEqual(askedPairs(asked), [["windowsize", "4"], ["ackevery", "2"]]);
  const accepted = acceptOack([["windowsize", "4"], ["ackevery", "1"]], asked, 1000);
  assert.equal(accepted.params.ackEvery, 1);
  for (
    const oack of [
      [["windowsize", "2"], ["ackevery", "2"]], // not below the window
      [["ackevery", "1"]], // no window: lock-step
      [["windowsize", "4"], ["ackevery", "3"]], // more than asked
    ] as [string, string][][]
  ) {
    assert.throws(
      () => acceptOack(oack, asked, 1000),
      (e: Error & { code?: number }) => e.code === 8,
    );
  }
  assert.throws(
    () => acceptOack([["windowsize", "2"], ["ackevery", "1"]], { windowSize: 2 }, 1000),
    /not asked for/,
  );
});

Deno.test("server: downloads of 0, 511, 512, 513 and 1024 bytes, byte for byte, lock-step", async () => {
  await using s = await startTftp();
  for (const size of [0, 511, 512, 513, 1024]) {
    const data = randomBytes(size, size + 1);
    await Deno.writeFile(`${s.root}/f${size}`, data);
    const got = await rawDownload(s.port, `f${size}`);
    assert.deepEqual(got.data, data, `size ${size}`);
    assert.equal(got.blocks.length, Math.floor(size / 512) + 1);
  }
});

Deno.test("server: OACK grants blksize, tsize, timeout; unknown options are left out", async () => {
  await using s = await startTftp();
  await Deno.writeFile(`${s.root}/f`, randomBytes(3000));
  const got = await rawDownload(
    s.port,
    "f",
    "blksize",
    "1000",
    "tsize",
    "0",
    "utimeout",
    "x".repeat(200),
    "timeout",
    "2",
  );
  assert.deepEqual(got.oack, { blksize: "1000", tsize: "3000", timeout: "2" });
  assert.deepEqual(got.data, randomBytes(3000));
  assert.deepEqual(got.blocks, [1, 2, 3, 4]);
});

Deno.test("server: a packet from a wrong TID gets ERROR 5 and the transfer goes on", async () => {
  await using s = await startTftp();
  await Deno.writeFile(`${s.root}/f`, randomBytes(2000));
  await using peer = await RawPeer.open();
  await using stranger = await RawPeer.open();
  await peer.send(tftp.rrq("f"), s.port);
  const first = await peer.receive();
  assert.equal(first.packet.op, "DATA");
  await stranger.send(tftp.ack(1), first.port);
  assert.match(await stranger.expectError(5), /^Unknown transfer ID$/);
  await peer.send(tftp.ack(1), first.port);
  const second = await peer.receive();
  assert.ok(second.packet.op === "DATA" && second.packet.block === 2);
});

Deno.test("server: duplicate ACKs never cause duplicate DATA (no Sorcerer's Apprentice)", async () => {
  await using s = await startTftp({ timeoutMs: 10_000 });
  await Deno.writeFile(`${s.root}/f`, randomBytes(512 * 20 + 7));
  await using peer = await RawPeer.open();
  await peer.send(tftp.rrq("f"), s.port);
  const seen: number[] = [];
  for (;;) {
    const { packet, port } = await peer.receive();
    assert.equal(packet.op, "DATA");
    if (packet.op !== "DATA") return;
    seen.push(packet.block);
    await peer.send(tftp.ack(packet.block), port);
    await peer.send(tftp.ack(packet.block), port); // the duplicate
    if (packet.data.length < 512) break;
  }
  assert.deepEqual(seen, Array.from({ length: 21 }, (_, i) => i + 1));
  // Nothing more comes: the duplicates of the last ACK did not start a resend either.
  assert.equal(await peer.receiveOrNull(300), null);
  await s.waitForLog(/RRQ "f": sent file, 10247 bytes/);
});

Deno.test("server: a window of 4 is sent whole; a short ACK restarts just after it", async () => {
  await using s = await startTftp({ timeoutMs: 10_000 });
  await Deno.writeFile(`${s.root}/f`, randomBytes(100 * 10));
  await using peer = await RawPeer.open();
  await peer.send(tftp.rrq("f", "octet", "blksize", "100", "windowsize", "4"), s.port);
  const oack = await peer.receive();
  assert.deepEqual(oack.packet, { op: "OACK", options: { blksize: "100", windowsize: "4" } });
  await peer.send(tftp.ack(0), oack.port);
  const blocks = async (n: number) => {
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      const { packet } = await peer.receive();
      if (packet.op === "DATA") out.push(packet.block);
    }
    return out;
  };
  assert.deepEqual(await blocks(4), [1, 2, 3, 4]);
  await peer.send(tftp.ack(2), oack.port); // lost 3: go on from 3
  assert.deepEqual(await blocks(4), [3, 4, 5, 6]);
  await peer.send(tftp.ack(6), oack.port);
  assert.deepEqual(await blocks(4), [7, 8, 9, 10]);
  await peer.send(tftp.ack(10), oack.port);
  assert.deepEqual(await blocks(1), [11]); // the empty last block: 1000 is a multiple of 100
  await peer.send(tftp.ack(11), oack.port);
  await s.waitForLog(/sent file, 1000 bytes .*windowsize 4/);
});

Deno.test("server and client: block numbers roll over to 0 past 65535 blocks, in RFC 7440's windows and sliding", async () => {
  await using s = await startTftp();
  const data = randomBytes(8 * 65536 + 100, 7);
  await Deno.writeFile(`${s.root}/big`, data);
  for (const ackEvery of [64, 32]) {
    const sink = new MemorySink();
    const config = { hostname: "127.0.0.1", port: s.port, blockSize: 8, windowSize: 64, ackEvery };
    assert.equal(await tftpDownload(config, "big", sink), data.length);
    assert.deepEqual(sink.bytes(), data);
    const up = `big-up-${ackEvery}`;
    assert.equal(await tftpUpload(config, up, bytesSource(data), data.length), data.length);
    assert.deepEqual(await Deno.readFile(`${s.root}/${up}`), data);
  }
  await s.waitForLog(/RRQ "big": sent file, .*\(blksize 8, windowsize 64\)$/);
  await s.waitForLog(/RRQ "big": sent file, .*\(blksize 8, windowsize 64, ackevery 32\)$/);
});

Deno.test("server: uploads never replace; read-only and --tftp-no-upload refuse them", async () => {
  await using s = await startTftp();
  await Deno.writeFile(`${s.root}/taken`, text.encode("keep"));
  await using peer = await RawPeer.open();
  await peer.send(tftp.wrq("taken"), s.port);
  // The wire carries RFC 1350's text; the log says which rule.
  assert.equal(await peer.expectError(6), "File already exists");
  assert.equal(await Deno.readTextFile(`${s.root}/taken`), "keep");
  await using ro = await startTftp({ readOnly: true });
  await peer.send(tftp.wrq("new"), ro.port);
  assert.equal(await peer.expectError(2), "Access violation");
  await ro.waitForLog(/read-only/);
  await using no = await startTftp({ noUpload: true });
  await peer.send(tftp.wrq("new"), no.port);
  assert.equal(await peer.expectError(2), "Access violation");
  await no.waitForLog(/uploads are disabled/);
  await using small = await startTftp({ maxUploadBytes: 1000 });
  await peer.send(tftp.wrq("big", "octet", "tsize", "1001"), small.port);
  assert.equal(await peer.expectError(3), "Disk full or allocation exceeded");
  await small.waitForLog(/too large/);
});

Deno.test("server: an upload is staged, acknowledged once on disk, netascii converted", async () => {
  await using s = await startTftp();
  await using peer = await RawPeer.open();
  await peer.send(tftp.wrq("notes.txt", "netascii"), s.port);
  const ack0 = await peer.receive();
  assert.deepEqual(ack0.packet, { op: "ACK", block: 0 });
  await peer.send(tftp.data(1, text.encode("a\r\nb\r\0c\r")), ack0.port);
  assert.deepEqual((await peer.receive()).packet, { op: "ACK", block: 1 });
  assert.equal(await Deno.readTextFile(`${s.root}/notes.txt`), "a\nb\rc\r");
  const names = await Array.fromAsync(Deno.readDir(s.root), (e) => e.name);
  assert.deepEqual(names, ["notes.txt"]);
});

Deno.test("server: an upload whose client goes silent leaves nothing behind", async () => {
  await using s = await startTftp({ timeoutMs: 100, retries: 2 });
  await using peer = await RawPeer.open();
  await peer.send(tftp.wrq("half"), s.port);
  const ack0 = await peer.receive();
  await peer.send(tftp.data(1, new Uint8Array(512)), ack0.port);
  await s.waitForLog(/WRQ "half": timed out: no DATA after 3 tries of 0\.1 s; closing/);
  assert.deepEqual(await Array.fromAsync(Deno.readDir(s.root)), []);
});

Deno.test("server: a client that stops acknowledging is given up; others are served", async () => {
  await using s = await startTftp({ timeoutMs: 100, retries: 2 });
  await Deno.writeFile(`${s.root}/f`, randomBytes(5000));
  await using peer = await RawPeer.open();
  await peer.send(tftp.rrq("f"), s.port);
  let resent = 0;
  while ((await peer.receiveOrNull(1000)) !== null) resent++;
  assert.equal(resent, 3); // the first send and 2 retries, then silence
  await s.waitForLog(/RRQ "f": timed out: no ACK after 3 tries of 0\.1 s; closing/);
  assert.deepEqual((await rawDownload(s.port, "f")).data, randomBytes(5000));
});

Deno.test("server: backslashes and leading slashes map inside the root only", async () => {
  await using s = await startTftp();
  await Deno.mkdir(`${s.root}/boot`);
  await Deno.writeFile(`${s.root}/boot/pxe.0`, text.encode("pxe"));
  assert.equal(text.decode((await rawDownload(s.port, "boot\\pxe.0")).data), "pxe");
  assert.equal(text.decode((await rawDownload(s.port, "/boot/pxe.0")).data), "pxe");
  assert.equal(text.decode((await rawDownload(s.port, "\\boot\\pxe.0")).data), "pxe");
  await using peer = await RawPeer.open();
  for (const name of ["..\\secret", "boot\\..\\..\\secret", "boot/../../x", "", "boot"]) {
    await peer.send(tftp.rrq(name), s.port);
    const { packet } = await peer.receive();
    assert.ok(packet.op === "ERROR" && packet.code === 2, `${name}: ${JSON.stringify(packet)}`);
  }
});

Deno.test("server: per-client roots serve DIR/ADDRESS/ (--tftp-unique-root)", async () => {
  await using s = await startTftp({ uniqueRoot: true });
  await Deno.mkdir(`${s.root}/127.0.0.1`);
  await Deno.writeFile(`${s.root}/127.0.0.1/boot.cfg`, text.encode("mine"));
  await Deno.writeFile(`${s.root}/boot.cfg`, text.encode("shared"));
  assert.equal(text.decode((await rawDownload(s.port, "boot.cfg")).data), "mine");
  await using peer = await RawPeer.open();
  await peer.send(tftp.rrq("../boot.cfg"), s.port);
  await peer.expectError(2);
  await using other = await startTftp({ uniqueRoot: true });
  await Deno.writeFile(`${other.root}/boot.cfg`, text.encode("shared"));
  await peer.send(tftp.rrq("boot.cfg"), other.port);
  await peer.expectError(1); // no directory for this client: nothing, not the shared file
});

Deno.test("client: falls back to plain RFC 1350 when the server ignores or refuses options", async () => {
  for (const answer of ["ignore", "refuse"] as const) {
    await using fake = await RawPeer.open();
    const download = tftpDownload(
      { hostname: "127.0.0.1", port: fake.port, retransmitMs: 2000 },
      "f",
      new MemorySink(),
    );
    let request = await fake.receive();
    if (answer === "refuse") {
      await fake.send(tftp.error(8, "no options here"), request.port);
      request = await fake.receive(); // the plain request, from a new port
    }
    await fake.send(tftp.data(1, text.encode("plain")), request.port);
    assert.deepEqual((await fake.receive()).packet, { op: "ACK", block: 1 });
    assert.equal(await download, 5);
  }
});

Deno.test("client: an OACK with an option never asked for is refused with ERROR 8", async () => {
  await using fake = await RawPeer.open();
  const download = tftpDownload(
    { hostname: "127.0.0.1", port: fake.port, blockSize: 1024 },
    "f",
    new MemorySink(),
  );
  const failed = assert.rejects(download, /blksize 2048/);
  const request = await fake.receive();
  await fake.send(tftp.join([0, 6], text.encode("blksize\x002048\0")), request.port);
  const answer = await fake.receive();
  assert.ok(answer.packet.op === "ERROR" && answer.packet.code === 8);
  await failed;
});

Deno.test("server: netascii downloads turn LF into CR LF and CR into CR NUL", async () => {
  await using s = await startTftp();
  await Deno.writeTextFile(`${s.root}/t.txt`, "a\nb\rc\n");
  await using peer = await RawPeer.open();
  await peer.send(tftp.rrq("t.txt", "netascii"), s.port);
  const { packet, port } = await peer.receive();
  assert.ok(packet.op === "DATA");
  assert.equal(text.decode(packet.data), "a\r\nb\r\0c\r\n");
  await peer.send(tftp.ack(1), port);
  await s.waitForLog(/RRQ "t.txt": sent file, 9 bytes/);
});

Deno.test("server: shutdown lets a running transfer finish; close stops it with ERROR 0", async () => {
  await using s = await startTftp({ timeoutMs: 5000 });
  await Deno.writeFile(`${s.root}/f`, randomBytes(2000));
  await using peer = await RawPeer.open();
  await peer.send(tftp.rrq("f"), s.port);
  const first = await peer.receive();
  const stopping = s.server.shutdown(10_000);
  // No new requests once stopping began...
  await using late = await RawPeer.open();
  await late.send(tftp.rrq("f"), s.port);
  assert.equal(await late.receiveOrNull(200), null);
  // ...but the running one goes to its end.
  let block = first.packet.op === "DATA" ? first.packet.block : -1;
  for (;;) {
    await peer.send(tftp.ack(block), first.port);
    const next = await peer.receive();
    if (next.packet.op !== "DATA") throw new Error(JSON.stringify(next.packet));
    block = next.packet.block;
    if (next.packet.data.length < 512) break;
  }
  await peer.send(tftp.ack(block), first.port);
  await stopping;
  assert.ok(s.logs.some((line) => /RRQ "f": sent file, 2000 bytes/.test(line)));

  await using t = await startTftp({ timeoutMs: 5000 });
  await Deno.writeFile(`${t.root}/f`, randomBytes(2000));
  await peer.send(tftp.rrq("f"), t.port);
  await peer.receive();
  await t.server.close();
  assert.match(await peer.expectError(0), /shutting down/);
  await t.waitForLog(/RRQ "f": server shutting down/);
});

Deno.test("codec: ERROR 1-7 carry RFC 1350's conventional text; 0 and 8 keep the reason", () => {
  const texts = [
    "server busy",
    "File not found",
    "Access violation",
    "Disk full or allocation exceeded",
    "Illegal TFTP operation",
    "Unknown transfer ID",
    "File already exists",
    "No such user",
    "option refused: blksize given twice",
  ];
  for (let code = 0; code <= 8; code++) {
    const packet = parsePacket(encodeError(code, code === 8 ? texts[8] : `${texts[0]}: detail`));
    assert.equal(packet.op, Opcode.ERROR);
    if (packet.op !== Opcode.ERROR) continue;
    assert.equal(packet.message, code === 0 ? "server busy: detail" : texts[code]);
  }
});

Deno.test("client: a tap sees every datagram of the transfer on its real ports (for --pcap)", async () => {
  await using s = await startTftp();
  const data = randomBytes(1500, 5);
  await Deno.writeFile(`${s.root}/tapped`, data);
  const seen: { sent: boolean; op: number; local: number; peer: number }[] = [];
  const sink = new MemorySink();
  const config = {
    hostname: "127.0.0.1",
    port: s.port,
    blockSize: 512,
    windowSize: 1,
    tap: (sent: boolean, bytes: Uint8Array, local: { port: number }, peer: { port: number }) =>
      seen.push({ sent, op: bytes[1], local: local.port, peer: peer.port }),
  };
  assert.equal(await tftpDownload(config, "tapped", sink), 1500);
  // RRQ to the request port; then OACK, ACK 0, DATA 1-3 and their ACKs with the transfer port.
  assert.deepEqual(seen.map((d) => `${d.sent ? ">" : "<"}${d.op}`), [
    ">1",
    "<6",
    ">4",
    "<3",
    ">4",
    "<3",
    ">4",
    "<3",
    ">4",
  ]);
  assert.equal(seen[0].peer, s.port);
  assert.ok(seen.slice(1).every((d) => d.peer !== s.port && d.local === seen[0].local));
});
