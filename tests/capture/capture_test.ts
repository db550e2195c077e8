/**
 * Capture files and the Wireshark dissector, checked with tshark: real fsd
 * sessions recorded through `fsd proxy --pcap`, decoded packet by packet
 * with lib/capture/fsd_dissector.lua; "Follow TCP Stream" gives exactly the
 * relayed bytes; violations show as expert info.
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { crc32 } from "node:zlib";
import { PcapWriter } from "../../lib/capture/pcap.ts";
import { MAIN, runFsd, spawnFsd, spawnServe } from "../support/cli.ts";
import { randomBytes, tempDir } from "../support/files.ts";
import { RawClient, wire, withDeadline } from "../support/raw_client.ts";
import { startServer } from "../support/server.ts";
import { type DecodedPdu, decodePdus, DISSECTOR, followRaw } from "../support/tshark.ts";
import { needs } from "../support/tools.ts";

Deno.test("fsd wireshark prints lib/capture/fsd_dissector.lua exactly", async () => {
  const lua = await Deno.readTextFile(DISSECTOR);
  const printed = await runFsd([], ["wireshark"]);
  assert.equal(printed.code, 0, printed.stderr);
  assert.equal(printed.stdout, lua);
  const extra = await runFsd([], ["wireshark", "extra"]);
  assert.equal(extra.code, 2);
});

/** A PDU as a short line: who sent it (C or S), the opcode name and its decoded fields. */
function summary(pdu: DecodedPdu, serverPort: number): string {
  const from = pdu.srcPort === serverPort ? "S" : "C";
  const f = (name: string) => pdu.fields[name]?.[0];
  const names = ["?", "RRQ", "WRQ", "DAT", "ACK", "ERR", "DRQ", "OPT", "OACK"];
  const op = names[Number(f("fsd.opcode"))] ?? `op${f("fsd.opcode")}`;
  switch (op) {
    case "RRQ":
    case "WRQ":
      return `${from} ${op} ${f("fsd.filename")}`;
    case "DAT":
      return `${from} DAT ${f("fsd.block")} ${f("fsd.size")}`;
    case "ACK":
      return `${from} ACK ${f("fsd.block")}`;
    case "ERR":
      return `${from} ERR ${f("fsd.error.code")} ${f("fsd.error.message")}`;
    case "OPT":
    case "OACK": {
      const values = pdu.fields["fsd.option.value"] ?? [];
      const pairs = (pdu.fields["fsd.option.name"] ?? []).map((n, i) => `${n}=${values[i]}`);
      return `${from} ${op} ${pairs.join(" ")}`;
    }
    default:
      return `${from} ${op}`;
  }
}

function byStream(pdus: DecodedPdu[], serverPort: number): string[][] {
  const streams: string[][] = [];
  for (const pdu of pdus) (streams[pdu.stream] ??= []).push(summary(pdu, serverPort));
  return streams;
}

/** `fsd proxy 0 127.0.0.1 PORT --pcap FILE [extra]` on loopback, with only the permissions it needs. */
function pcapProxy(port: number, pcap: string, extra: string[] = []) {
  return spawnFsd(
    ["proxy", "0", "127.0.0.1", String(port), "--host", "127.0.0.1", "--pcap", pcap, ...extra],
    ["--allow-net=127.0.0.1", `--allow-write=${pcap}`],
    /^Proxy listening on /,
  );
}

/** Runs get (fsd/1 and with options), ls, a missing file and a put through `fsd proxy --pcap [extra]`. */
async function captureSessions(pcap: string, extra: string[] = []) {
  await using ctx = await startServer({ name: "lab" });
  await Deno.writeTextFile(`${ctx.root}/notes.txt`, "hello notes\n");
  await Deno.writeFile(`${ctx.root}/big.bin`, randomBytes(1500, 3));
  await using work = await tempDir();
  await Deno.writeTextFile(`${work.path}/up.txt`, "uploaded");
  const proxy = await pcapProxy(ctx.port, pcap, extra);
  try {
    const port = String(proxy.port);
    const net = [`--allow-net=127.0.0.1:${port}`];
    const files = [...net, `--allow-read=${work.path}`, `--allow-write=${work.path}`];
    const runs = [
      await runFsd(files, ["get", "127.0.0.1", port, "notes.txt", `${work.path}/a`, "--fsd1"]),
      await runFsd(files, [
        "get",
        "127.0.0.1",
        port,
        "big.bin",
        `${work.path}/b`,
        "--blksize",
        "512",
        "--window",
        "2",
      ]),
      await runFsd(net, ["ls", "127.0.0.1", port]),
      await runFsd(net, ["get", "127.0.0.1", port, "missing.txt", "-", "--fsd1"]),
      await runFsd(files, ["put", "127.0.0.1", port, `${work.path}/up.txt`, "--fsd1"]),
    ];
    assert.deepEqual(runs.map((r) => r.code), [0, 0, 0, 1, 0], runs.map((r) => r.stderr).join());
    await proxy.waitForLine(/^\[5\] closed: /);
  } finally {
    await proxy.stop();
  }
  return ctx.port;
}

function expectedSessions(greeting: string[]): string[][] {
  return [
    [...greeting, "C RRQ notes.txt", "S DAT 1 12", "C ACK 1"],
    [
      ...greeting,
      "C OPT blksize=512 windowsize=2 tsize=0 crc32=1 kind=0 eager=1 pipeline=1",
      "C RRQ big.bin",
      // pipelined: the whole file follows the OACK, and no ACK is due
      "S OACK blksize=512 windowsize=2 tsize=1500 crc32=1 kind=1 eager=1 pipeline=1",
      "S DAT 1 512",
      "S DAT 2 512",
      "S DAT 3 476",
      "S op9",
    ],
    [...greeting, "C DRQ", "S DAT 1 72", "C ACK 1"],
    [...greeting, "C RRQ missing.txt", "S ERR 1 file not found: missing.txt"],
    [...greeting, "C WRQ up.txt", "S ACK 0", "C DAT 1 8", "S ACK 1"],
  ];
}

Deno.test({
  name: "tshark decodes get, options, ls, error and put sessions recorded by fsd proxy --pcap",
  ...needs("tshark"),
  async fn() {
    await using dir = await tempDir();
    const pcap = `${dir.path}/lab.pcap`;
    const serverPort = await captureSessions(pcap);
    const pdus = await decodePdus(pcap);
    const streams = byStream(pdus, serverPort);
    const greetingSize = new TextEncoder().encode("Hello from lab's fileserver").length;
    const greeting = [`S DAT 1 ${greetingSize}`, "C ACK 1"];
    const expected = expectedSessions(greeting);
    assert.deepEqual(streams, expected);
    assert.equal(pdus[0].fields["fsd.greeting"]?.[0], "Hello from lab's fileserver");
    assert.equal(pdus[0].info, `DAT 1 (${greetingSize} bytes)`);
    const infos = pdus.map((p) => p.info);
    assert.ok(infos.includes('RRQ "notes.txt"'), infos.join("\n"));
    assert.ok(infos.includes("ERR 1 file not found: missing.txt"));
    assert.ok(
      infos.includes("OPT blksize=512 windowsize=2 tsize=0 crc32=1 kind=0 eager=1 pipeline=1"),
    );
    const opt = pdus.find((p) => p.info.startsWith("OPT "))!;
    assert.deepEqual(opt.fields["fsd.option"], [
      "blksize=512",
      "windowsize=2",
      "tsize=0",
      "crc32=1",
      "kind=0",
      "eager=1",
      "pipeline=1",
    ]);
    assert.ok(pdus.every((p) => p.experts.every((e) => e.startsWith("ERR "))), "no violations");
  },
});

Deno.test({
  name: "tshark reassembles fsd packets split into 7-byte segments by fsd proxy --slice 7 --pcap",
  ...needs("tshark"),
  async fn() {
    await using dir = await tempDir();
    const pcap = `${dir.path}/sliced.pcap`;
    const serverPort = await captureSessions(pcap, ["--slice", "7"]);
    const pdus = await decodePdus(pcap);
    const greetingSize = new TextEncoder().encode("Hello from lab's fileserver").length;
    assert.deepEqual(
      byStream(pdus, serverPort),
      expectedSessions([`S DAT 1 ${greetingSize}`, "C ACK 1"]),
    );
    // every data segment really is at most 7 bytes
    const lengths = (await tsharkFields(pcap, ["tcp.len"])).map(Number);
    assert.ok(lengths.length > 200 && lengths.every((n) => n <= 7), String(lengths.slice(0, 20)));
  },
});

async function tsharkFields(pcap: string, fields: string[], filter = "tcp"): Promise<string[]> {
  const { tshark } = await import("../support/tshark.ts");
  const out = await tshark([
    "-r",
    pcap,
    "-Y",
    filter,
    "-T",
    "fields",
    ...fields.flatMap((f) => ["-e", f]),
  ]);
  return out.split("\n").filter((line) => line !== "");
}

Deno.test({
  name: "tshark splits a segment carrying many small fsd packets",
  ...needs("tshark"),
  async fn() {
    await using dir = await tempDir();
    const pcap = `${dir.path}/many.pcap`;
    await using ctx = await startServer({ name: "lab" });
    const proxy = await pcapProxy(ctx.port, pcap);
    try {
      const client = await RawClient.connect(proxy.port);
      await client.read(); // the greeting
      const requests = Array.from({ length: 20 }, (_, i) => wire.rrq(`missing-${i}`));
      await client.send(wire.ack(1), ...requests); // one write: one segment of 21 packets
      for (let i = 0; i < 20; i++) await client.expectError(1);
      client.close();
      await proxy.waitForLine(/^\[1\] closed: /);
    } finally {
      await proxy.stop();
    }
    const pdus = await decodePdus(pcap);
    const fromClient = pdus.filter((p) => p.srcPort !== ctx.port);
    assert.equal(fromClient.length, 21);
    assert.equal(new Set(fromClient.map((p) => p.frame)).size, 1, "all in one segment");
    assert.deepEqual(
      fromClient.map((p) => p.fields["fsd.filename"]?.[0] ?? "ACK"),
      ["ACK", ...Array.from({ length: 20 }, (_, i) => `missing-${i}`)],
    );
    const errors = pdus.filter((p) => p.srcPort === ctx.port && p.fields["fsd.error.code"]);
    assert.equal(errors.length, 20);
  },
});

Deno.test({
  name: 'tshark "Follow TCP Stream" of a --pcap capture gives exactly the relayed bytes, both ways',
  ...needs("tshark"),
  async fn() {
    await using dir = await tempDir();
    const up = randomBytes(200_000, 7); // more than one 64 KiB segment
    const down = randomBytes(70_001, 8);
    // A target that takes everything, then answers `down` and closes.
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const served: Promise<Uint8Array>[] = [];
    const accepting = (async () => {
      for (;;) {
        const conn = await listener.accept().catch(() => null);
        if (!conn) return;
        served.push((async () => {
          const got = await readToEnd(conn);
          await writeAll(conn, down);
          conn.close();
          return got;
        })());
      }
    })();
    for (const extra of [[], ["--slice", "1000"]]) {
      const pcap = `${dir.path}/follow${extra.length}.pcap`;
      const proxy = await pcapProxy(listener.addr.port, pcap, extra);
      let received: Uint8Array;
      try {
        const conn = await Deno.connect({ hostname: "127.0.0.1", port: proxy.port });
        await writeAll(conn, up);
        await conn.closeWrite();
        received = await readToEnd(conn);
        conn.close();
        await proxy.waitForLine(/^\[1\] closed: /);
      } finally {
        await proxy.stop();
      }
      assert.deepEqual(await served.at(-1), up);
      assert.deepEqual(received, down);
      const [clientToServer, serverToClient] = await followRaw(pcap);
      assert.deepEqual(clientToServer, up, `follow ${extra.join(" ")}`);
      assert.deepEqual(serverToClient, down);
    }
    listener.close();
    await accepting;
  },
});

async function readToEnd(conn: Deno.Conn): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  const buffer = new Uint8Array(65536);
  for (;;) {
    const n = await conn.read(buffer).catch(() => null);
    if (n === null) break;
    parts.push(buffer.slice(0, n));
  }
  return wire.concat(...parts);
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
}

Deno.test({
  name: "dissector: port 10000 (or its preference), Decode As, and expert info for violations",
  ...needs("tshark"),
  async fn() {
    await using dir = await tempDir();
    const pcap = `${dir.path}/bad.pcap`;
    const writer = PcapWriter.create(pcap);
    const c = writer.connection(10000); // no greeting: only the port says fsd
    c.data("client", wire.drq());
    c.data("server", wire.dat(1, new Uint8Array(600))); // over the 512-byte block
    c.data("client", wire.rrq(new Uint8Array([0xff, 0xfe, 0x41]))); // not UTF-8
    c.data("client", wire.rrq("x".repeat(1100))); // a string over 1024 bytes
    c.data("client", wire.concat([0, 10, 1, 2, 3])); // unknown opcode 10 (9 is SUM)
    c.data("client", wire.ack(1)); // after a framing error: not decoded
    c.close();
    const refused = writer.connection(5555); // a server over its limits: ERR instead of the greeting
    refused.data("server", wire.err(0, "too many connections: 100"));
    refused.close();
    const other = writer.connection(4321); // another port, no greeting: Decode As
    other.data("client", wire.drq());
    other.close();
    writer.close();
    const pdus = await decodePdus(pcap);
    // Wireshark shortens long labels: compare the first 200 characters
    assert.deepEqual(pdus.map((p) => p.info.slice(0, 200)), [
      "DRQ",
      "DAT 1 (600 bytes)",
      'RRQ "\ufffd\ufffdA"',
      `RRQ "${"x".repeat(1100)}"`.slice(0, 200),
      "unknown opcode 10",
      "not decoded (after a framing error)",
      "ERR 0 too many connections: 100",
    ]);
    assert.deepEqual(pdus.slice(1).map((p) => p.experts.join("; ")), [
      "DAT of 600 bytes, the block size is 512",
      "file name is not valid UTF-8",
      "file name longer than 1024 bytes; file name longer than 255 bytes",
      "unknown opcode 10",
      "Not decoded after a framing error",
      "ERR 0 too many connections: 100",
    ]);
    const decodeAs = await decodePdus(pcap, ["-d", "tcp.port==4321,fsd", "-Y", "tcp.port==4321"]);
    assert.deepEqual(decodeAs.map((p) => p.info), ["DRQ"]);
    const preference = await decodePdus(pcap, ["-o", "fsd.port:4321", "-Y", "tcp.port==4321"]);
    assert.deepEqual(preference.map((p) => p.info), ["DRQ"]);
    assert.deepEqual(await decodePdus(pcap, ["-Y", "tcp.port==4321"]), [], "no greeting, no port");
  },
});

Deno.test({
  name:
    "dissector: hostile bytes (random, truncated, huge counts, no zero bytes) never raise a Lua error",
  ...needs("tshark"),
  async fn() {
    await using dir = await tempDir();
    const pcap = `${dir.path}/hostile.pcap`;
    const writer = PcapWriter.create(pcap);
    const cases: Uint8Array[] = [
      randomBytes(3000, 21),
      wire.concat([0, 3, 0, 1, 0xff, 0xff], randomBytes(100, 22)), // DAT announcing 65535 bytes, then ends
      wire.concat([0, 7, 0, 0]), // OPT with no options
      wire.concat([0, 8, 0xff, 0xff, 0x61, 0]), // OACK with 65535
      wire.concat([0, 7, 0, 1, 0x61]), // an option cut off
      wire.concat([0, 9], randomBytes(20, 23)), // a SUM cut off before its 32 bytes
      wire.concat([0, 5, 0, 1], new Uint8Array(70000).fill(0x41)), // ERR text without its zero
      wire.concat([0, 1], new Uint8Array(70000).fill(0x2f)), // RRQ name without its zero
      new Uint8Array([0]), // one byte
    ];
    for (const [i, bytes] of cases.entries()) {
      const c = writer.connection(10000 + (i % 2)); // the port, and Decode As below
      c.data("server", wire.concat(wire.dat(1, new TextEncoder().encode("Hello from x"))));
      c.data(i % 2 ? "client" : "server", bytes);
      c.close();
    }
    writer.close();
    const { tshark } = await import("../support/tshark.ts");
    for (const extra of [[], ["-2"], ["-d", "tcp.port==10001,fsd", "-V"]]) {
      const out = await tshark(["-r", pcap, ...extra]);
      assert.doesNotMatch(
        out,
        /Lua Error|Dissector bug|Malformed Packet: FSD/i,
        out.slice(0, 2000),
      );
    }
  },
});

Deno.test({
  name: "dissector: the fuzzer's damaged sessions, in random segments, never raise a Lua error",
  ...needs("tshark"),
  async fn() {
    const { makeStream, rng } = await import("../fsd/fuzz.ts");
    await using dir = await tempDir();
    const pcap = `${dir.path}/fuzz.pcap`;
    const writer = PcapWriter.create(pcap);
    const r = rng(7);
    for (let i = 0; i < 300; i++) {
      const c = writer.connection(10000);
      const stream = makeStream(7, i);
      for (let at = 0; at < stream.length;) {
        const size = 1 + Math.floor(r() * 40);
        c.data(r() < 0.5 ? "client" : "server", stream.subarray(at, at + size));
        at += size;
      }
      c.close();
    }
    writer.close();
    const { tshark } = await import("../support/tshark.ts");
    const out = await tshark(["-r", pcap, "-2", "-V"]);
    assert.doesNotMatch(out, /Lua Error|Dissector bug/i);
    assert.match(out, /fsd\/1 file service/);
  },
});

Deno.test("fsd proxy --pcap: an open connection reaches the file within a second, before the proxy stops", async () => {
  await using dir = await tempDir();
  const pcap = `${dir.path}/live.pcap`;
  await using ctx = await startServer({ name: "lab" });
  const proxy = await pcapProxy(ctx.port, pcap);
  try {
    await using client = await RawClient.greeted(proxy.port); // stays open
    const greeting = new TextEncoder().encode("Hello from lab's fileserver");
    const deadline = Date.now() + 10_000;
    let bytes = new Uint8Array();
    while (!containsBytes(bytes, greeting)) {
      assert.ok(Date.now() < deadline, "the capture file did not get the greeting");
      await new Promise((resolve) => setTimeout(resolve, 50));
      bytes = await Deno.readFile(pcap);
    }
    void client;
  } finally {
    await proxy.stop();
  }
});

function containsBytes(haystack: Uint8Array, needle: Uint8Array): boolean {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return true;
  }
  return false;
}

Deno.test({
  name: "tshark follows a negotiated 65464-byte block size across segments: no false oversize",
  ...needs("tshark"),
  async fn() {
    await using dir = await tempDir();
    const pcap = `${dir.path}/big.pcap`;
    await using ctx = await startServer({ name: "lab" });
    const content = randomBytes(300_000, 9);
    await Deno.writeFile(`${ctx.root}/big.bin`, content);
    const proxy = await pcapProxy(ctx.port, pcap);
    try {
      const port = String(proxy.port);
      for (const extra of [[], ["--fsd1"]]) { // options, then plain fsd/1 on the same server
        const got = await runFsd([`--allow-net=127.0.0.1:${port}`], [
          "get",
          "127.0.0.1",
          port,
          "big.bin",
          "-",
          ...extra,
        ]);
        assert.equal(got.code, 0, got.stderr);
        assert.deepEqual(got.stdoutBytes, content);
      }
      await proxy.waitForLine(/^\[2\] closed: /);
    } finally {
      await proxy.stop();
    }
    const pdus = await decodePdus(pcap);
    const dats = (stream: number) =>
      pdus.filter((p) => p.stream === stream && p.fields["fsd.opcode"]?.[0] === "3")
        .map((p) => Number(p.fields["fsd.size"][0]));
    assert.deepEqual(dats(0), [27, 65464, 65464, 65464, 65464, 300_000 - 4 * 65464]);
    assert.equal(dats(1).length, 1 + Math.ceil(300_000 / 512));
    assert.deepEqual(pdus.flatMap((p) => p.experts.filter((e) => !e.startsWith("ERR "))), []);
  },
});

Deno.test("fsd proxy --pcap past the disk's limit: recording stops with one message, the traffic goes on", async () => {
  await using dir = await tempDir();
  const pcap = `${dir.path}/limited.pcap`;
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const serving = (async () => {
    const conn = await listener.accept();
    await writeAll(conn, await readToEnd(conn));
    conn.close();
  })();
  // A file size limit of 64 KiB stands in for a full disk: writes past it fail (EFBIG).
  const deno = [
    Deno.execPath(),
    "run",
    "--quiet",
    "--allow-net=127.0.0.1",
    `--allow-write=${pcap}`,
  ];
  const args = [MAIN, "proxy", "0", "127.0.0.1", String(listener.addr.port), "--host", "127.0.0.1"];
  const child = new Deno.Command("bash", {
    args: ["-c", `trap '' XFSZ; ulimit -f 64; exec "$@"`, "bash", ...deno, ...args, "--pcap", pcap],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  const readUntil = async (pattern: RegExp) => {
    while (!pattern.test(out)) {
      const { value, done } = await withDeadline(reader.read(), `proxy output ${pattern}`);
      if (done) throw new Error(`proxy exited: ${await stderr}`);
      out += value;
    }
  };
  try {
    await readUntil(/port (\d+),/);
    const port = Number(/port (\d+),/.exec(out)![1]);
    const data = randomBytes(300_000, 4);
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    await writeAll(conn, data);
    await conn.closeWrite();
    assert.deepEqual(await readToEnd(conn), data);
    conn.close();
    await serving;
    await readUntil(/\[1\] closed: /);
  } finally {
    listener.close();
    child.kill("SIGTERM");
    await child.status;
    await reader.cancel();
  }
  const messages = (await stderr).split("\n").filter((line) => line.includes("capture stopped"));
  assert.equal(messages.length, 1, await stderr);
  assert.match(messages[0], /^fsd: capture stopped, cannot write .*limited\.pcap: /);
});

Deno.test({
  name:
    "tshark decodes a login (OPT user and password, OACK user) and flags the clear-text password",
  ...needs("tshark"),
  async fn() {
    await using dir = await tempDir();
    const users = `${dir.path}/users.txt`;
    const added = await runFsd([`--allow-read=${dir.path}`, `--allow-write=${dir.path}`], [
      "user",
      "add",
      users,
      "ada",
    ], { stdin: new TextEncoder().encode("s3cret pass\n") });
    assert.equal(added.code, 0, added.stderr);
    await Deno.mkdir(`${dir.path}/files`);
    await Deno.writeTextFile(`${dir.path}/pw.txt`, "s3cret pass\n");
    const files = `${dir.path}/files`;
    await using server = await spawnServe(files, 0, ["--users", users, "--name", "lab"], [
      "--allow-net",
      `--allow-read=${dir.path}`,
      `--allow-write=${files}`,
    ]);
    const pcap = `${dir.path}/login.pcap`;
    const proxy = await pcapProxy(server.port, pcap);
    let listed;
    try {
      listed = await runFsd([`--allow-net=127.0.0.1:${proxy.port}`, `--allow-read=${dir.path}`], [
        "ls",
        "127.0.0.1",
        String(proxy.port),
        "--user",
        "ada",
        "--password-file",
        `${dir.path}/pw.txt`,
        "--trace",
        "fsd",
      ]);
      await proxy.waitForLine(/^\[1\] closed: /);
    } finally {
      await proxy.stop();
    }
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stderr, /\[1\] > OPT user=ada password=\*\*\*$/m, "the trace hides it");
    assert.doesNotMatch(listed.stderr, /s3cret/);
    const pdus = await decodePdus(pcap);
    const login = pdus.find((p) => p.info.startsWith("OPT "))!;
    assert.equal(login.info, "OPT user=ada password=s3cret pass");
    assert.deepEqual(login.fields["fsd.option.name"], ["user", "password"]);
    assert.match(login.experts.join(), /password in clear text/);
    assert.ok(pdus.some((p) => p.info === "OACK user=ada"));
    assert.ok(pdus.some((p) => p.info === "DRQ"));
  },
});

Deno.test({
  name:
    "tshark decodes the SUM after the last DAT: CRC-32 (the default) and SHA-256 (--integrity sha256), get and put",
  ...needs("tshark"),
  async fn() {
    await using ctx = await startServer();
    await using dir = await tempDir();
    const pcap = `${dir.path}/integrity.pcap`;
    const down = randomBytes(150_000, 31);
    const up = randomBytes(700, 32);
    await Deno.writeFile(`${ctx.root}/down.bin`, down);
    await Deno.writeFile(`${dir.path}/up.bin`, up);
    const proxy = await pcapProxy(ctx.port, pcap);
    let runs;
    try {
      const port = String(proxy.port);
      const files = [`--allow-net=127.0.0.1:${port}`, `--allow-read=${dir.path}`];
      runs = [];
      for (const check of [[], ["--integrity", "sha256"]]) {
        runs.push(
          await runFsd([...files, `--allow-write=${dir.path}`], [
            "get",
            "127.0.0.1",
            port,
            "down.bin",
            `${dir.path}/got${check.length}.bin`,
            ...check,
          ]),
          await runFsd(files, [
            "put",
            "127.0.0.1",
            port,
            `${dir.path}/up.bin`,
            `up${check.length}.bin`,
            ...check,
          ]),
        );
      }
      await proxy.waitForLine(/^\[4\] closed: /);
    } finally {
      await proxy.stop();
    }
    assert.deepEqual(runs.map((r) => r.code), [0, 0, 0, 0], runs.map((r) => r.stderr).join());
    const pdus = await decodePdus(pcap);
    const sums = pdus.filter((p) => p.fields["fsd.opcode"]?.[0] === "9");
    const hex = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");
    const crc = (bytes: Uint8Array) => crc32(bytes).toString(16).padStart(8, "0");
    assert.deepEqual(
      sums.map((p) => [p.stream, p.srcPort === ctx.port ? "S" : "C", p.info]),
      [
        [0, "S", `SUM crc32 ${crc(down)}`],
        [1, "C", `SUM crc32 ${crc(up)}`],
        [2, "S", `SUM ${hex(down).slice(0, 16)}...`],
        [3, "C", `SUM ${hex(up).slice(0, 16)}...`],
      ],
    );
    assert.deepEqual(
      sums.map((p) =>
        p.fields["fsd.crc32"]?.[0] ?? p.fields["fsd.sha256"]?.[0].replaceAll(":", "")
      ),
      [`0x${crc(down)}`, `0x${crc(up)}`, hex(down), hex(up)],
    );
    // Right after the last (short) DAT of its stream, and no violations anywhere.
    for (const sum of sums) {
      const stream = pdus.filter((p) => p.stream === sum.stream && p.srcPort === sum.srcPort);
      const before = stream[stream.indexOf(sum) - 1];
      assert.equal(before.fields["fsd.opcode"]?.[0], "3", before.info);
    }
    assert.deepEqual(pdus.flatMap((p) => p.experts), []);
  },
});

Deno.test({
  name:
    "tshark decodes pipelined reads: requests sent ahead, several to a segment, answered in order",
  ...needs("tshark"),
  async fn() {
    await using ctx = await startServer({ name: "lab" });
    const names = ["a", "b", "c", "d", "e", "f"];
    for (const [i, name] of names.entries()) {
      await Deno.writeFile(`${ctx.root}/${name}`, randomBytes(700 + 600 * i, i));
    }
    await using work = await tempDir();
    const pcap = `${work.path}/pipelined.pcap`;
    const proxy = await pcapProxy(ctx.port, pcap);
    try {
      const port = String(proxy.port);
      const got = await runFsd(
        [
          `--allow-net=127.0.0.1:${port}`,
          `--allow-read=${work.path}`,
          `--allow-write=${work.path}`,
        ],
        ["get", "127.0.0.1", port, ...names, "-o", `${work.path}/in`, "--jobs", "1"],
      );
      assert.equal(got.code, 0, got.stderr);
      await proxy.waitForLine(/^\[1\] closed: /);
    } finally {
      await proxy.stop();
    }
    for (const [i, name] of names.entries()) {
      assert.deepEqual(
        await Deno.readFile(`${work.path}/in/${name}`),
        randomBytes(700 + 600 * i, i),
      );
    }
    const pdus = await decodePdus(pcap);
    assert.ok(pdus.every((p) => p.experts.length === 0), "no violations, no undecoded bytes");
    const lines = byStream(pdus, ctx.port)[0];
    // Each file's OACK grants pipeline, its data and SUM follow, and no ACK but the greeting's.
    const oacks = lines.filter((l) => l.startsWith("S OACK"));
    assert.equal(oacks.length, names.length);
    assert.ok(oacks.every((l) => l.endsWith("pipeline=1")), oacks.join("\n"));
    assert.deepEqual(lines.filter((l) => l.startsWith("C ACK")), ["C ACK 1"]);
    assert.equal(lines.filter((l) => l === "S op9").length, names.length);
    // Every name asked once, and answered in the order asked (each OACK has its file's size).
    const asked = pdus.filter((p) => p.info.startsWith("RRQ ")).map((p) => p.info.slice(5, -1));
    assert.deepEqual([...asked].sort(), names);
    const sizes = oacks.map((l) => Number(/tsize=(\d+)/.exec(l)![1]));
    assert.deepEqual(sizes, asked.map((n) => 700 + 600 * names.indexOf(n)));
    // (Whether requests share a segment depends on timing; tests/fsd/pipeline_test.ts checks
    // the writes of requests sent ahead.)
  },
});
