/** `fsd echo`: each mode over TCP and UDP, the chat room (with a client that never reads), round trips. */

import assert from "node:assert/strict";
import dgram from "node:dgram";
import type { Buffer } from "node:buffer";
import { answer, type EchoMode, type EchoServer, startEchoServer } from "../../lib/echo/server.ts";
import { type EchoChannel, openEchoChannel, summarize } from "../../lib/echo/client.ts";
import { runFsd, spawnFsd } from "../support/cli.ts";
import { text } from "../support/files.ts";

/** TCP clients need the server's address; UDP clients also bind the wildcard address. */
const netFlags = (port: number) => [`--allow-net=127.0.0.1:${port},0.0.0.0`];

async function server(mode: EchoMode, udp: boolean, options: { queueBytes?: number } = {}) {
  const logs: string[] = [];
  const s = await startEchoServer({
    port: 0,
    hostname: "127.0.0.1",
    udp,
    mode,
    log: (l) => logs.push(l),
    ...options,
  });
  return { server: s, logs, port: s.port, [Symbol.asyncDispose]: () => s.close() } as {
    server: EchoServer;
    logs: string[];
    port: number;
  } & AsyncDisposable;
}

Deno.test("echo: answers per mode", () => {
  assert.equal(answer("echo", "Hello, World"), "Hello, World");
  assert.equal(answer("upper", "Hello, wörld"), "HELLO, WÖRLD");
  for (
    const [input, output] of [
      ["4.40", "5"],
      ["4", "4"],
      ["-2.5", "-2"],
      ["-0.5", "0"],
      [" 3.2 ", "4"],
      ["1e3", "1000"],
      [".5", "1"],
      ["+7.01", "8"],
    ]
  ) {
    assert.equal(answer("ceil", input), output, input);
  }
  assert.equal(answer("ceil", "abc"), 'error: not a number: "abc"');
  assert.equal(answer("ceil", ""), 'error: not a number: ""');
  assert.equal(answer("ceil", "4.4.4"), 'error: not a number: "4.4.4"');
  assert.equal(answer("ceil", "1e999"), "error: out of range: 1e999");
});

Deno.test("echo: ping-style summary figures", () => {
  const s = summarize(4, [1, 2, 3]);
  assert.deepEqual({ ...s, mdev: Number(s.mdev.toFixed(6)) }, {
    sent: 4,
    received: 3,
    lossPercent: 25,
    min: 1,
    avg: 2,
    max: 3,
    mdev: 0.816497,
  });
  assert.equal(summarize(3, []).lossPercent, 100);
});

for (const udp of [false, true]) {
  const transport = udp ? "UDP" : "TCP";
  const flag = udp ? ["--udp"] : [];

  Deno.test(`echo ${transport}: echo, upper and ceil from the command line`, async () => {
    for (
      const [mode, messages, replies] of [
        ["echo", ["hello", "two words"], ["hello", "two words"]],
        ["upper", ["hello", "MiXeD 1"], ["HELLO", "MIXED 1"]],
        ["ceil", ["4.40", "-2.5", "pi"], ["5", "-2", 'error: not a number: "pi"']],
      ] as const
    ) {
      await using s = await server(mode, udp);
      const result = await runFsd(netFlags(s.port), [
        "echo",
        "127.0.0.1",
        String(s.port),
        ...flag,
        "--",
        ...messages,
      ]);
      assert.equal(result.code, 0, result.stderr);
      assert.deepEqual(result.stdout.trimEnd().split("\n"), replies, `${mode} over ${transport}`);
      assert.match(
        s.logs[0],
        udp
          ? /^\[1\] datagrams from 127\.0\.0\.1 port \d+$/
          : /^\[1\] connection from 127\.0\.0\.1 port \d+$/,
      );
    }
  });

  Deno.test(`echo ${transport}: lines from stdin, one reply each`, async () => {
    await using s = await server("upper", udp);
    const result = await runFsd(netFlags(s.port), [
      "echo",
      "127.0.0.1",
      String(s.port),
      ...flag,
      "--timeout",
      "1",
    ], {
      stdin: text.encode("one\ntwo\nthree\n"),
    });
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(result.stdout.trimEnd().split("\n"), ["ONE", "TWO", "THREE"]);
  });

  Deno.test(`echo ${transport}: --count measures round trips and ends with ping's summary`, async () => {
    await using s = await server("echo", udp);
    const result = await runFsd(netFlags(s.port), [
      "echo",
      "127.0.0.1",
      String(s.port),
      "probe",
      ...flag,
      "--count",
      "5",
      "--interval",
      "0.01",
    ]);
    assert.equal(result.code, 0, result.stderr);
    const lines = result.stdout.trimEnd().split("\n");
    for (let seq = 1; seq <= 5; seq++) {
      assert.match(lines[seq - 1], new RegExp(`^seq=${seq} time=\\d+\\.\\d{3} ms: probe$`));
    }
    assert.equal(lines[5], `--- 127.0.0.1 port ${s.port} echo statistics ---`);
    assert.match(lines[6], /^5 sent, 5 received, 0% loss, time \d+ ms$/);
    assert.match(
      lines[7],
      /^rtt min\/avg\/max\/mdev = \d+\.\d{3}\/\d+\.\d{3}\/\d+\.\d{3}\/\d+\.\d{3} ms$/,
    );
  });
}

Deno.test("echo UDP: unanswered datagrams count as losses", async () => {
  // A server that answers only every other datagram.
  const socket = dgram.createSocket("udp4");
  let seen = 0;
  socket.on("message", (message: Buffer, remote: { address: string; port: number }) => {
    if (seen++ % 2 === 0) socket.send(message, remote.port, remote.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", () => resolve()));
  const port = socket.address().port;
  try {
    const result = await runFsd(netFlags(port), [
      "echo",
      "127.0.0.1",
      String(port),
      "--udp",
      "--count",
      "4",
      "--interval",
      "0",
      "--timeout",
      "0.2",
    ]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^seq=2 no reply within 0\.2 s$/m);
    assert.match(result.stdout, /^4 sent, 2 received, 50% loss, time \d+ ms$/m);
  } finally {
    await new Promise<void>((resolve) => socket.close(() => resolve()));
  }
});

Deno.test("echo UDP: no replies at all is a failure", async () => {
  const socket = dgram.createSocket("udp4");
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", () => resolve()));
  const port = socket.address().port;
  try {
    const result = await runFsd(netFlags(port), [
      "echo",
      "127.0.0.1",
      String(port),
      "--udp",
      "--count",
      "2",
      "--interval",
      "0",
      "--timeout",
      "0.1",
    ]);
    assert.equal(result.code, 1);
    assert.match(result.stdout, /^2 sent, 0 received, 100% loss/m);
    assert.match(result.stderr, /^fsd: no replies from 127\.0\.0\.1 port \d+$/m);
  } finally {
    await new Promise<void>((resolve) => socket.close(() => resolve()));
  }
});

/** Messages until one matches `pattern` (or the deadline passes). */
async function until(channel: EchoChannel, pattern: RegExp): Promise<string[]> {
  const seen: string[] = [];
  for (;;) {
    const message = await channel.receive(5000);
    if (message === null) {
      throw new Error(`no message matching ${pattern}; saw ${JSON.stringify(seen)}`);
    }
    seen.push(message);
    if (pattern.test(message)) return seen;
  }
}

Deno.test("chat TCP: broadcast to the others, join and leave notices, a reader that never reads does not stall the room", async () => {
  await using s = await server("broadcast", false, { queueBytes: 256 * 1024 });
  const alice = await openEchoChannel("127.0.0.1", s.port, false);
  assert.match((await alice.receive(5000))!, /^\* welcome, you are 1; 0 other\(s\) here$/);
  // A member that never reads: once its socket buffers and its queue are full, its messages are dropped.
  const sleeper = await Deno.connect({ hostname: "127.0.0.1", port: s.port });
  await until(alice, /^\* 2 joined$/);
  const bob = await openEchoChannel("127.0.0.1", s.port, false);
  await until(bob, /^\* welcome, you are 3; 2 other\(s\) here$/);
  await until(alice, /^\* 3 joined$/);
  try {
    // 12 MB in all, far more than the sleeper's buffers hold; bob keeps up, batch by batch.
    const line = "x".repeat(60_000);
    for (let i = 0; i < 200; i += 2) {
      await alice.send(`${i} ${line}`);
      await alice.send(`${i + 1} ${line}`);
      const seen = await until(bob, new RegExp(`^1: ${i + 1} x`));
      assert.equal(seen.length, 2, `bob lost messages in batch ${i}`);
    }
    await bob.send("hi alice");
    await until(alice, /^3: hi alice$/);
    // The sleeper, reading at last, is told what it missed.
    assert.match(
      await readUntil(sleeper, /\* dropped \d+ message\(s\): you read too slowly/),
      /dropped/,
    );
  } finally {
    sleeper.close();
    await until(alice, /^\* 2 left$/);
    bob.close();
    await until(alice, /^\* 3 left$/);
    alice.close();
  }
});

/** Reads text from `conn` until it matches `pattern`; fails after 10 s. */
async function readUntil(conn: Deno.Conn, pattern: RegExp): Promise<string> {
  const decoder = new TextDecoder();
  const buffer = new Uint8Array(65536);
  const deadline = performance.now() + 10_000;
  let tail = "";
  while (performance.now() < deadline) {
    const n = await conn.read(buffer);
    if (n === null) break;
    tail = (tail + decoder.decode(buffer.subarray(0, n), { stream: true })).slice(-200_000);
    const match = pattern.exec(tail);
    if (match) return match[0];
  }
  throw new Error(`no ${pattern} in what the connection sent`);
}

Deno.test("chat UDP: join by the first datagram, broadcast, /leave", async () => {
  await using s = await server("broadcast", true);
  const alice = await openEchoChannel("127.0.0.1", s.port, true);
  const bob = await openEchoChannel("127.0.0.1", s.port, true);
  try {
    await alice.send("hello");
    await until(alice, /^\* welcome, you are 1; 0 other\(s\) here$/);
    await bob.send("hi");
    await until(bob, /^\* welcome, you are 2; 1 other\(s\) here$/);
    await until(alice, /^\* 2 joined$/);
    await until(alice, /^2: hi$/);
    await alice.send("how are you");
    await until(bob, /^1: how are you$/);
    await bob.send("/leave");
    await until(alice, /^\* 2 left$/);
  } finally {
    alice.close();
    bob.close();
  }
});

Deno.test("echo serve: usage errors", async () => {
  for (
    const [args, pattern] of [
      [["echo", "serve"], /usage: fsd echo serve PORT/],
      [["echo", "serve", "0", "--upper", "--ceil"], /choose one of/],
      [["echo", "127.0.0.1"], /missing arguments/],
      [["echo", "127.0.0.1", "1", "--count", "x"], /invalid --count: x/],
    ] as const
  ) {
    const result = await runFsd([], [...args]);
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, pattern);
  }
});

Deno.test("echo serve from the command line, TCP and UDP, with its documented --allow-net", async () => {
  for (const udp of [false, true]) {
    const transport = udp ? ["--udp"] : [];
    await using server = await spawnFsd(
      ["echo", "serve", "0", "--host", "127.0.0.1", "--upper", ...transport],
      ["--allow-net=127.0.0.1"],
      /^Echo server \(upper, (TCP|UDP)\) listening on 127\.0\.0\.1 port \d+$/,
    );
    const result = await runFsd(netFlags(server.port), [
      "echo",
      "127.0.0.1",
      String(server.port),
      ...transport,
      "hi there",
    ]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, "HI THERE\n");
    await server.waitForLine(
      udp
        ? /^\[1\] datagrams from 127\.0\.0\.1 port \d+$/
        : /^\[1\] connection from 127\.0\.0\.1 port \d+$/,
    );
    assert.equal((await server.stop()).code, 0);
  }
});
