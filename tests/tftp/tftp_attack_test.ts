/**
 * The TFTP attack corpus: the inputs behind tftp-hpa's, atftpd's and
 * dnsmasq's CVEs, broken options and modes, truncated and oversized
 * datagrams, floods and the seeded fuzzer. Each gets a clear ERROR or
 * silence as the RFCs say; the server stays alive and serves others, and
 * nothing outside the root is read or written (docs/SECURITY.md lists them).
 */

import assert from "node:assert/strict";
import { randomBytes, tempDir, text } from "../support/files.ts";
import { assertTools, needs } from "../support/tools.ts";
import { fuzzTftp } from "./tftp_fuzz.ts";
import { rawDownload, RawPeer, startTftp, type TestTftp, tftp } from "../support/tftp.ts";

const SECRET = "outside-the-root";

/** A server whose root sits beside a secret file (and a symlink to it inside). */
async function exposedServer(config = {}): Promise<TestTftp & { outside: string }> {
  const parent = await tempDir();
  await Deno.mkdir(`${parent.path}/root`);
  await Deno.writeTextFile(`${parent.path}/secret`, SECRET);
  await Deno.symlink(`${parent.path}/secret`, `${parent.path}/root/link`);
  await Deno.writeFile(`${parent.path}/root/f`, randomBytes(2000));
  const s = await startTftp({ root: `${parent.path}/root`, ...config });
  return {
    ...s,
    outside: parent.path,
    async [Symbol.asyncDispose]() {
      await s[Symbol.asyncDispose]();
      await parent[Symbol.asyncDispose]();
    },
  };
}

async function stillServing(s: TestTftp): Promise<void> {
  assert.deepEqual((await rawDownload(s.port, "f")).data, randomBytes(2000), "server alive");
}

async function answer(peer: RawPeer, bytes: Uint8Array, port: number) {
  await peer.send(bytes, port);
  return (await peer.receive()).packet;
}

Deno.test("attack: tftp-hpa CVE-2011-2199, an unknown utimeout-style option with an overlong value", async () => {
  await using s = await exposedServer();
  const got = await rawDownload(s.port, "f", "utimeout", "9".repeat(1500));
  assert.equal(got.oack, undefined); // ignored: plain RFC 1350, no OACK
  assert.deepEqual(got.data, randomBytes(2000));
  await using peer = await RawPeer.open();
  const huge = await answer(peer, tftp.rrq("f", "octet", "utimeout", "9".repeat(3000)), s.port);
  assert.ok(huge.op === "ERROR" && huge.code === 4, JSON.stringify(huge)); // over the request limit
  await stillServing(s);
});

Deno.test("attack: atftpd CVE-2019-11365, ERROR packets of 3 bytes or less", async () => {
  await using s = await exposedServer();
  await using peer = await RawPeer.open();
  for (const bytes of [[0, 5], [0, 5, 0], [0, 5, 0, 1]]) {
    await peer.send(new Uint8Array(bytes), s.port);
  }
  assert.equal(await peer.receiveOrNull(300), null); // never answer an ERROR
  // Inside a transfer: the short one is a violation (ERROR 4), the transfer ends.
  await peer.send(tftp.rrq("f"), s.port);
  const first = await peer.receive();
  await peer.send(new Uint8Array([0, 5, 0]), first.port);
  const { packet } = await peer.receive();
  assert.ok(packet.op === "ERROR" && packet.code === 4, JSON.stringify(packet));
  await stillServing(s);
});

Deno.test("attack: atftpd CVE-2021-41054, blksize 8 with options making the OACK larger than a block", async () => {
  await using s = await exposedServer();
  const options = ["blksize", "8", "tsize", "0", "timeout", "1", "windowsize", "1"];
  for (let i = 0; i < 8; i++) options.push(`unknown${i}`, "x".repeat(50));
  const got = await rawDownload(s.port, "f", ...options);
  assert.deepEqual(got.oack, { blksize: "8", tsize: "2000", timeout: "1", windowsize: "1" });
  assert.deepEqual(got.data, randomBytes(2000));
  assert.equal(got.blocks.length, 251);
});

Deno.test("attack: dnsmasq CVE-2009-2957/2958, long names, empty names, traversal", async () => {
  await using s = await exposedServer();
  await using peer = await RawPeer.open();
  const cases: [string | Uint8Array, number][] = [
    ["a".repeat(1900), 2],
    [`${"../".repeat(300)}secret`, 2],
    ["", 2],
    ["/", 2],
    ["../secret", 2],
    ["..\\secret", 2],
    ["/../secret", 2],
    ["f/../../secret", 2],
    ["link", 2], // a symlink leading outside
    [s.outside + "/secret", 1], // absolute paths are relative to the root: not found there
    [new Uint8Array([0xc0, 0xae, 0xc0, 0xae, 0x2f, 0x73]), 2], // overlong UTF-8 dots
  ];
  for (const [name, code] of cases) {
    const packet = await answer(peer, tftp.rrq(name), s.port);
    assert.ok(packet.op === "ERROR" && packet.code === code, `${name}: ${JSON.stringify(packet)}`);
    const write = await answer(peer, tftp.wrq(name), s.port);
    assert.ok(write.op === "ERROR", `WRQ ${name}: ${JSON.stringify(write)}`);
  }
  assert.equal(await Deno.readTextFile(`${s.outside}/secret`), SECRET);
  assert.deepEqual((await Array.fromAsync(Deno.readDir(s.outside), (e) => e.name)).sort(), [
    "root",
    "secret",
  ]);
  await stillServing(s);
});

Deno.test("attack: options repeated or out of range get ERROR 8; no mode or a bad mode ERROR 4", async () => {
  await using s = await exposedServer();
  await using peer = await RawPeer.open();
  const cases: [Uint8Array, number][] = [
    [tftp.rrq("f", "octet", "blksize", "512", "blksize", "1024"), 8],
    [tftp.rrq("f", "octet", "blksize", "7"), 8],
    [tftp.rrq("f", "octet", "blksize", "99999999999999999999"), 8],
    [tftp.rrq("f", "octet", "timeout", "0"), 8],
    [tftp.rrq("f", "octet", "timeout", "300"), 8],
    [tftp.rrq("f", "octet", "windowsize", "0"), 8],
    [tftp.rrq("f", "octet", "windowsize", "4", "ackevery", "0"), 8],
    [tftp.rrq("f", "octet", "windowsize", "4", "ackevery", "65536"), 8],
    [tftp.rrq("f", "octet", "windowsize", "4", "ackevery", "1", "ackevery", "2"), 8],
    [tftp.rrq("f", "octet", "tsize", "-5"), 8],
    [tftp.join([0, 1], text.encode("f"), [0]), 4],
    [tftp.rrq("f", "mail"), 4],
    [tftp.rrq("f", "image"), 4],
    [tftp.rrq("f", "octet", "blksize"), 4],
  ];
  for (const [bytes, code] of cases) {
    const packet = await answer(peer, bytes, s.port);
    assert.ok(packet.op === "ERROR" && packet.code === code, JSON.stringify(packet));
  }
  await stillServing(s);
});

Deno.test("attack: truncated, oversized and stray datagrams", async () => {
  await using s = await exposedServer();
  await using peer = await RawPeer.open();
  for (const bytes of [[0], [0, 1], [0, 3, 0], [0, 4, 0, 1], [0, 6], [1, 1, 1, 1]]) {
    const packet = await answer(peer, new Uint8Array(bytes), s.port);
    assert.ok(packet.op === "ERROR" && packet.code === 4, `${bytes}: ${JSON.stringify(packet)}`);
  }
  const oversized = await answer(peer, new Uint8Array(60_000).fill(1, 0, 2), s.port);
  assert.ok(oversized.op === "ERROR" && oversized.code === 4);
  // DATA larger than the negotiated block inside an upload: ERROR 4, nothing kept.
  await peer.send(tftp.wrq("up"), s.port);
  const ack0 = await peer.receive();
  await peer.send(tftp.data(1, new Uint8Array(600)), ack0.port);
  const big = (await peer.receive()).packet;
  assert.ok(big.op === "ERROR" && big.code === 4, JSON.stringify(big));
  await s.waitForLog(/WRQ "up": error 4/);
  assert.equal(await Deno.lstat(`${s.root}/up`).then(() => true, () => false), false);
  await stillServing(s);
});

Deno.test("attack: a flood of requests from many ports is bounded by the limits", async () => {
  await using s = await exposedServer({ maxPerIp: 10, timeoutMs: 100, retries: 1 });
  const peers = await Promise.all(Array.from({ length: 60 }, () => RawPeer.open()));
  try {
    await Promise.all(peers.map((peer) => peer.send(tftp.rrq("f"), s.port)));
    const answers = await Promise.all(peers.map((peer) => peer.receive()));
    const refused = answers.filter(({ packet }) => packet.op === "ERROR" && packet.code === 0);
    const served = answers.filter(({ packet }) => packet.op === "DATA");
    assert.equal(served.length, 10);
    assert.equal(refused.length, 50);
    assert.match(JSON.stringify(refused[0].packet), /too many connections/);
  } finally {
    await Promise.all(peers.map((peer) => peer[Symbol.asyncDispose]()));
  }
  // The flood never acknowledged anything: its transfers time out and the server serves again.
  for (let i = 0; i < 10; i++) {
    await s.waitForLog(new RegExp(`^\\[${i + 1}\\] RRQ "f": timed out: no ACK`));
  }
  await stillServing(s);
});

Deno.test("attack: the seeded TFTP fuzzer gets only valid answers and the server lives", async () => {
  await using s = await exposedServer({ timeoutMs: 100, retries: 1, maxPerIp: 0 });
  const report = await fuzzTftp(s.port, { seed: 1337, datagrams: 3000 });
  assert.deepEqual(report.failures, []);
  assert.ok(report.answers > 0);
  // A stranger's ERRORs reached transfer ports, and none was answered (checked in failures).
  assert.ok(report.strangerErrors > 0);
  await stillServing(s);
  assert.equal(await Deno.readTextFile(`${s.outside}/secret`), SECRET);
});

Deno.test("attack: never-answered requests with timeout 255 from one address cannot fill --max-clients", async () => {
  await using s = await exposedServer({ maxClients: 20, timeoutMs: 100, retries: 1 });
  const peers = await Promise.all(Array.from({ length: 20 }, () => RawPeer.open()));
  try {
    await Promise.all(
      peers.map((peer) => peer.send(tftp.rrq("f", "octet", "timeout", "255"), s.port)),
    );
    const answers = (await Promise.all(peers.map((peer) => peer.receive()))).map((a) => a.packet);
    // One address gets half of the slots; the timeout of 255 s is not granted: no OACK, DATA 1
    // at once, on the server's own timeout.
    const served = answers.filter((packet) => packet.op === "DATA" && packet.block === 1);
    const refused = answers.filter((packet) => packet.op === "ERROR" && packet.code === 0);
    assert.equal(served.length, 10);
    assert.equal(refused.length, 10);
    assert.match(JSON.stringify(refused[0]), /too many connections from 127\.0\.0\.1: at most 10/);
    // Another client (another loopback address) is served while the 10 hold their slots.
    await using pxe = await RawPeer.open("127.0.0.2");
    await pxe.send(tftp.rrq("f"), s.port);
    const first = (await pxe.receive()).packet;
    assert.equal(first.op, "DATA", JSON.stringify(first));
  } finally {
    await Promise.all(peers.map((peer) => peer[Symbol.asyncDispose]()));
  }
});

Deno.test("attack: a request never answered holds its slot no longer than the first-answer cap", async () => {
  // Even a granted 255 s timeout: the first ACK must come within firstAnswerMs.
  await using s = await exposedServer({ maxTimeoutSeconds: 255, firstAnswerMs: 300 });
  await using peer = await RawPeer.open();
  await peer.send(tftp.rrq("f", "octet", "timeout", "255"), s.port);
  assert.deepEqual((await peer.receive()).packet, { op: "OACK", options: { timeout: "255" } });
  await s.waitForLog(/^\[1\] RRQ "f": timed out: no first answer from the client in time/);
  await peer.send(tftp.wrq("new", "octet", "timeout", "255"), s.port);
  assert.deepEqual((await peer.receive()).packet, { op: "OACK", options: { timeout: "255" } });
  await s.waitForLog(/^\[2\] WRQ "new": timed out: no first answer from the client in time/);
  assert.equal(s.server.transfers, 0);
});

/** Forges one datagram from port `src` to port `dst` and counts the datagrams among `ports` for 300 ms. */
async function forge(src: number, dst: number, payload: Uint8Array, ports: number[]) {
  const script = new URL("../support/udp_forge.py", import.meta.url).pathname;
  const hex = [...payload].map((b) => b.toString(16).padStart(2, "0")).join("");
  const output = await new Deno.Command("timeout", {
    args: ["10", "python3", script, "127.0.0.1", `${src}`, "127.0.0.1", `${dst}`, hex, "300"]
      .concat(ports.map(String)),
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
  return Number(new TextDecoder().decode(output.stdout).trim());
}

Deno.test({
  name:
    "attack: one forged datagram between two transfers (or to itself) starts no ERROR ping-pong",
  ...needs("raw-sockets"),
  fn: async () => {
    assertTools("raw-sockets");
    await using s = await exposedServer({ timeoutMs: 2000, retries: 1 });
    await using a = await RawPeer.open();
    await using b = await RawPeer.open();
    await a.send(tftp.rrq("f"), s.port);
    await b.send(tftp.rrq("f"), s.port);
    const ta = (await a.receive()).port;
    const tb = (await b.receive()).port;
    // Transfer A's port "sends" an ACK to transfer B's: B may answer ERROR 5 once; A never answers it.
    const between = await forge(ta, tb, tftp.ack(1), [ta, tb]);
    assert.ok(
      between >= 1 && between <= 2,
      `${between} datagrams after one forged (itself included)`,
    );
    // A datagram "from" transfer B to itself: one ERROR 5 to itself at most, never answered.
    const itself = await forge(tb, tb, tftp.ack(1), [tb]);
    assert.ok(itself >= 1 && itself <= 2, `${itself} datagrams after one forged (itself included)`);
    // The transfers go on: each client still gets its data.
    await a.send(tftp.ack(1), ta);
    assert.equal((await a.receive()).packet.op, "DATA");
    await b.send(tftp.ack(1), tb);
    assert.equal((await b.receive()).packet.op, "DATA");
  },
});
