/**
 * The fixes new users asked for in `fsd echo` and `fsd proxy`: a message
 * without a newline is answered, plain echo is byte-exact over TCP and UDP,
 * the UDP chat client leaves properly, Ctrl-C during --count prints the
 * statistics, the proxy refuses to relay to itself, and clear usage errors.
 */

import assert from "node:assert/strict";
import dgram from "node:dgram";
import type { Buffer } from "node:buffer";
import { type EchoMode, startEchoServer } from "../../lib/echo/server.ts";
import { Relay, type RelayEvent } from "../../lib/relay/relay.ts";
import { MAIN, runFsd } from "../support/cli.ts";
import { randomBytes, text } from "../support/files.ts";
import { withDeadline } from "../support/raw_client.ts";

const netFlags = (port: number) => [`--allow-net=127.0.0.1:${port},0.0.0.0`];

/** `quietMs`: how long a partial line waits; long where a test must not depend on timing. */
async function echoServer(mode: EchoMode, udp = false, quietMs?: number) {
  const s = await startEchoServer({ port: 0, hostname: "127.0.0.1", udp, mode, quietMs });
  return Object.assign(s, { [Symbol.asyncDispose]: () => s.close() });
}

/** What the lab's C client does: send() the bytes with no newline, then wait in recv(). */
async function labClient(port: number, message: string, halfClose = false): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(text.encode(message));
    if (halfClose) await conn.closeWrite();
    const buffer = new Uint8Array(1024);
    const n = await withDeadline(conn.read(buffer), "recv");
    return n === null ? "" : text.decode(buffer.subarray(0, n));
  } finally {
    conn.close();
  }
}

Deno.test("echo TCP: a message without a newline is answered after a pause, as the lab's C client needs", async () => {
  await using ceil = await echoServer("ceil");
  assert.equal(await labClient(ceil.port, "4.40"), "5\n");
  await using upper = await echoServer("upper");
  assert.equal(await labClient(upper.port, "hello"), "HELLO\n");
  assert.equal(await labClient(upper.port, "bye", true), "BYE\n"); // half-closed
  await using plain = await echoServer("echo");
  assert.equal(await labClient(plain.port, "4.40"), "4.40"); // exactly what came
  await using chat = await echoServer("broadcast");
  assert.match(await labClient(chat.port, "hi"), /^\* welcome, you are 1/);
});

Deno.test("echo TCP: lines are answered one by one, a line split across writes as one", async () => {
  await using ceil = await echoServer("ceil", false, 60_000);
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: ceil.port });
  await conn.write(text.encode("1.5\n2."));
  await conn.write(text.encode("5\n"));
  await conn.closeWrite();
  const parts: Uint8Array[] = [];
  const buffer = new Uint8Array(1024);
  for (;;) {
    const n = await withDeadline(conn.read(buffer), "read");
    if (n === null) break;
    parts.push(buffer.slice(0, n));
  }
  conn.close();
  assert.equal(parts.map((p) => text.decode(p)).join(""), "2\n3\n");
});

/** Bytes no text decoder leaves alone: invalid UTF-8, random bytes, a 65,536-byte line. */
const NASTY = [
  new Uint8Array([0xff, 0xfe, 0x80, 0x41, 0x0a, 0xc3, 0x28]),
  randomBytes(4096, 11),
  new Uint8Array([...new Uint8Array(65536).fill(0x61), 0x0a]),
];

for (const udp of [false, true]) {
  Deno.test(`echo ${udp ? "UDP" : "TCP"}: plain echo gives back exactly the bytes it got`, async () => {
    await using s = await echoServer("echo", udp);
    for (const bytes of NASTY) {
      const result = await runFsd(netFlags(s.port), [
        "echo",
        "127.0.0.1",
        String(s.port),
        ...(udp ? ["--udp", "--timeout", "1.5"] : []),
      ], { stdin: bytes });
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stdoutBytes.length, bytes.length);
      assert.deepEqual(result.stdoutBytes, bytes);
    }
  });
}

/** A UDP chat room with one member, alice, already welcomed; `until` awaits a line she hears. */
async function roomWithAlice() {
  const room = await startEchoServer({
    port: 0,
    hostname: "127.0.0.1",
    udp: true,
    mode: "broadcast",
  });
  const alice = dgram.createSocket("udp4");
  const heard: string[] = [];
  let wake: (() => void) | undefined;
  alice.on("message", (m: Buffer) => {
    heard.push(m.toString());
    wake?.();
  });
  const until = async (line: string) => {
    while (!heard.includes(line)) {
      await withDeadline(new Promise<void>((resolve) => wake = resolve), `waiting for ${line}`);
    }
  };
  const dispose = async () => {
    await new Promise<void>((resolve) => alice.close(() => resolve()));
    await room.close();
  };
  try {
    await new Promise<void>((resolve) => alice.bind(0, "127.0.0.1", () => resolve()));
    alice.send("hello", room.port, "127.0.0.1");
    await until("* welcome, you are 1; 0 other(s) here");
  } catch (error) {
    await dispose();
    throw error;
  }
  return { port: room.port, until, [Symbol.asyncDispose]: dispose };
}

Deno.test("echo UDP: the chat client says /leave when it exits, so nobody sees a ghost", async () => {
  await using room = await roomWithAlice();
  const bob = await runFsd(netFlags(room.port), [
    "echo",
    "127.0.0.1",
    String(room.port),
    "--udp",
    "--timeout",
    "1.5",
  ], { stdin: text.encode("hi all\n") });
  assert.equal(bob.code, 0, bob.stderr);
  assert.match(bob.stdout, /^\* welcome, you are 2; 1 other\(s\) here\n/);
  await room.until("2: hi all");
  await room.until("* 2 left");
});

Deno.test("echo --count 0 pings until Ctrl-C, which prints the statistics as ping does", async () => {
  await using s = await echoServer("echo");
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--quiet",
      ...netFlags(s.port),
      MAIN,
      "echo",
      "127.0.0.1",
      String(s.port),
      "--count",
      "0",
      "--interval",
      "0.02",
    ],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines: string[] = [];
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let pending = "";
  while (!lines.some((line) => line.startsWith("seq=3 "))) {
    const { value, done } = await withDeadline(reader.read(), "ping output");
    if (done) break;
    pending += value;
    const parts = pending.split("\n");
    pending = parts.pop()!;
    lines.push(...parts);
  }
  child.kill("SIGINT");
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    pending += value;
  }
  lines.push(...pending.split("\n").filter((l) => l !== ""));
  const status = await child.status;
  await child.stderr.cancel();
  assert.equal(status.code, 0);
  const at = lines.findIndex((l) => l.startsWith("--- 127.0.0.1 port "));
  assert.ok(at > 2, lines.join("\n"));
  const [, sent, received] = /^(\d+) sent, (\d+) received/.exec(lines[at + 1])!.map(Number);
  assert.ok(sent >= 3 && received >= 3 && sent - received <= 1, lines[at + 1]);
  assert.match(lines[at + 2], /^rtt min\/avg\/max\/mdev = /);
});

Deno.test("proxy: a target that is its own listening address is refused", async () => {
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = probe.addr.port;
  probe.close();
  for (const host of ["127.0.0.1", "localhost"]) {
    const result = await runFsd(["--allow-net=127.0.0.1"], [
      "proxy",
      String(port),
      host,
      String(port),
      "--host",
      "127.0.0.1",
    ]);
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, /is the proxy's own listening address/);
  }
  // Past the command's check (here in-process): the first connection is refused, nothing is relayed.
  const events: RelayEvent[] = [];
  const relay = Relay.start({
    port,
    hostname: "127.0.0.1",
    targetHost: "127.0.0.1",
    targetPort: port,
    log: (e) => events.push(e),
  });
  try {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    const n = await withDeadline(conn.read(new Uint8Array(10)).catch(() => null), "read");
    assert.equal(n, null);
    conn.close();
  } finally {
    await relay.close();
  }
  assert.ok(
    events.some((e) => e.event === "connect-failed" && /this proxy itself/.test(e.message)),
    JSON.stringify(events),
  );
  assert.equal(events.filter((e) => e.event === "connection").length, 1, JSON.stringify(events));
});

Deno.test("usage: negative values get a range error, a negative message a hint, server flags on a client an error", async () => {
  for (
    const [args, pattern] of [
      [["proxy", "0", "127.0.0.1", "1", "--latency", "-5"], /invalid --latency: -5: out of range/],
      [["get", "127.0.0.1", "1", "x", "--timeout", "-1"], /invalid --timeout: -1: out of range/],
      [["echo", "127.0.0.1", "1", "--timeout", "-1"], /invalid --timeout: -1: out of range/],
      [["echo", "127.0.0.1", "1", "--count", "-3"], /invalid --count: -3: out of range/],
      [["echo", "127.0.0.1", "1", "-5"], /unknown option '-5': .*put it after --/],
      [["echo", "127.0.0.1", "1", "--upper", "hi"], /--upper is an option of the server/],
      [["echo", "127.0.0.1", "1", "--broadcast"], /--broadcast is an option of the server/],
      [["echo", "serve", "0", "--count", "3"], /--count is an option of the client/],
    ] as const
  ) {
    const result = await runFsd([], [...args]);
    assert.equal(result.code, 2, `${args.join(" ")}: ${result.stderr}`);
    assert.match(result.stderr, pattern);
  }
});

Deno.test("echo TCP attack: 1 MiB with no newline is answered in 64 KiB pieces; others are served meanwhile", async () => {
  await using upper = await echoServer("upper", false, 60_000);
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: upper.port });
  const huge = new Uint8Array(1024 * 1024).fill(0x61);
  const reading = (async () => {
    let got = 0;
    let newlines = 0;
    const buffer = new Uint8Array(65536);
    for (;;) {
      const n = await conn.read(buffer).catch(() => null);
      if (n === null) return { got, newlines };
      got += n;
      for (const b of buffer.subarray(0, n)) if (b === 0x0a) newlines++;
    }
  })();
  for (let at = 0; at < huge.length;) at += await conn.write(huge.subarray(at));
  assert.equal(await labClient(upper.port, "meanwhile\n"), "MEANWHILE\n");
  await conn.closeWrite();
  const { got, newlines } = await withDeadline(reading, "answers");
  conn.close();
  assert.equal(newlines, 16);
  assert.equal(got, huge.length + 16);
});

Deno.test("echo TCP: messages split into random pieces still come out as the same lines", async () => {
  await using upper = await echoServer("upper", false, 60_000);
  const lines = Array.from({ length: 200 }, (_, i) => `line ${i} ${"x".repeat(i % 37)}`);
  const bytes = text.encode(lines.join("\n") + "\n");
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: upper.port });
  conn.setNoDelay(true);
  const noise = randomBytes(bytes.length, 5);
  for (let at = 0, i = 0; at < bytes.length; i++) {
    const size = 1 + (noise[i] % 50);
    await conn.write(bytes.subarray(at, at + size));
    at += size;
  }
  await conn.closeWrite();
  const parts: Uint8Array[] = [];
  const buffer = new Uint8Array(65536);
  for (;;) {
    const n = await withDeadline(conn.read(buffer), "read");
    if (n === null) break;
    parts.push(buffer.slice(0, n));
  }
  conn.close();
  const answer = parts.map((p) => text.decode(p)).join("");
  assert.equal(answer, lines.map((l) => l.toUpperCase()).join("\n") + "\n");
});

Deno.test("echo UDP: Ctrl-C in the chat client also says /leave", async () => {
  await using room = await roomWithAlice();
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--quiet",
      ...netFlags(room.port),
      MAIN,
      "echo",
      "127.0.0.1",
      String(room.port),
      "--udp",
    ],
    stdin: "piped",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const stdin = child.stdin.getWriter();
  try {
    await stdin.write(text.encode("still here\n")); // stdin stays open: only Ctrl-C ends it
    await room.until("2: still here");
    child.kill("SIGINT");
    await room.until("* 2 left");
    assert.equal((await child.status).code, 130);
  } finally {
    await stdin.close().catch(() => {});
    await child.status;
  }
});

Deno.test("echo fuzz: seeded random streams in random slices to every TCP mode; the server stays up", async () => {
  const { rng } = await import("../fsd/fuzz.ts");
  for (const mode of ["echo", "upper", "ceil", "broadcast"] as const) {
    await using s = await echoServer(mode, false, 60_000);
    const r = rng(mode.length);
    for (let stream = 0; stream < 12; stream++) {
      const bytes = randomBytes(1 + Math.floor(r() * 5000), stream + 1);
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: s.port });
      const reading = (async () => {
        const parts: Uint8Array[] = [];
        const buffer = new Uint8Array(65536);
        for (;;) {
          const n = await conn.read(buffer).catch(() => null);
          if (n === null) return parts;
          parts.push(buffer.slice(0, n));
        }
      })();
      for (let at = 0; at < bytes.length;) {
        const size = 1 + Math.floor(r() * 700);
        await conn.write(bytes.subarray(at, at + size));
        at += size;
      }
      await conn.closeWrite();
      const parts = await withDeadline(reading, `${mode} answers`);
      conn.close();
      const got = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
      parts.reduce((at, p) => (got.set(p, at), at + p.length), 0);
      if (mode === "echo") assert.deepEqual(got, bytes);
      else if (got.length > 0) assert.equal(got.at(-1), 0x0a, `${mode}: answers are whole lines`);
    }
    assert.equal(await labClient(s.port, "1.5\n").then((a) => a.length > 0), true, "still up");
  }
});
