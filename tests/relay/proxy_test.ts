/** `fsd proxy`: byte-exact relay, half-close, many connections, each fault, and fsd tracing. */

import assert from "node:assert/strict";
import {
  encodeAck,
  encodeData,
  encodeDrq,
  encodeError,
  encodeRequest,
  Opcode,
} from "../../lib/fsd/codec.ts";
import type { Faults } from "../../lib/relay/faults.ts";
import { Relay, type RelayEvent } from "../../lib/relay/relay.ts";
import { FsdTracer, hexDump, printable } from "../../lib/capture/trace.ts";
import { runFsd, spawnFsd } from "../support/cli.ts";
import { firstDifference, randomBytes, tempDir, text } from "../support/files.ts";
import { startServer } from "../support/server.ts";

/** A target that runs `script` on every connection. */
function target(script: (conn: Deno.TcpConn) => Promise<void>): { port: number } & AsyncDisposable {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const tasks: Promise<void>[] = [];
  const accepting = (async () => {
    for (;;) {
      const conn = await listener.accept().catch(() => null);
      if (!conn) return;
      tasks.push(
        script(conn).catch(() => {}).finally(() => {
          try {
            conn.close();
          } catch {
            // closed
          }
        }),
      );
    }
  })();
  return {
    port: listener.addr.port,
    async [Symbol.asyncDispose]() {
      listener.close();
      await accepting;
      await Promise.all(tasks);
    },
  };
}

async function readAll(conn: Deno.Conn): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  const buffer = new Uint8Array(65536);
  for (;;) {
    const n = await conn.read(buffer).catch(() => null);
    if (n === null) break;
    parts.push(buffer.slice(0, n));
  }
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let written = 0; written < bytes.length;) {
    written += await conn.write(bytes.subarray(written));
  }
}

/** A relay in front of `targetPort`, whose close events land in `closed`. */
function relay(targetPort: number, faults: { up?: Faults; down?: Faults } = {}) {
  const closed: Extract<RelayEvent, { event: "close" }>[] = [];
  let onClose: (() => void) | undefined;
  const r = Relay.start({
    port: 0,
    hostname: "127.0.0.1",
    targetHost: "127.0.0.1",
    targetPort,
    faults,
    log: (e) => {
      if (e.event === "close") {
        closed.push(e);
        onClose?.();
      }
    },
  });
  return {
    port: r.addr.port,
    closed,
    /** Resolves once `n` connections have closed. */
    closedCount: (n: number) =>
      new Promise<void>((resolve) => {
        const check = () => closed.length >= n && resolve();
        onClose = check;
        check();
      }),
    [Symbol.asyncDispose]: () => r.close(),
  };
}

const connect = (port: number) => Deno.connect({ hostname: "127.0.0.1", port });

Deno.test("proxy: relays large random data both ways at once, byte for byte", async () => {
  const upData = randomBytes(3_000_000, 1);
  const downData = randomBytes(2_000_000, 2);
  let arrived!: (bytes: Uint8Array) => void;
  const received = new Promise<Uint8Array>((resolve) => arrived = resolve);
  await using t = target(async (conn) => {
    const reading = readAll(conn).then(arrived);
    await writeAll(conn, downData);
    await conn.closeWrite();
    await reading;
  });
  await using r = relay(t.port);
  const conn = await connect(r.port);
  const reading = readAll(conn);
  await writeAll(conn, upData);
  await conn.closeWrite();
  // Compare with a first-difference check: a failing deepEqual on megabytes takes minutes to describe.
  assert.equal(firstDifference(await reading, downData), -1);
  conn.close();
  assert.equal(firstDifference(await received, upData), -1);
  await r.closedCount(1);
  assert.equal(r.closed[0].up, upData.length);
  assert.equal(r.closed[0].down, downData.length);
});

Deno.test("proxy: half-close: the client's end of input reaches the target, the answer still flows back", async () => {
  await using t = target(async (conn) => {
    const request = await readAll(conn); // returns only at the client's half-close
    await writeAll(conn, text.encode(`got ${request.length} bytes: ${text.decode(request)}`));
  });
  await using r = relay(t.port);
  const conn = await connect(r.port);
  await writeAll(conn, text.encode("question"));
  await conn.closeWrite();
  assert.equal(text.decode(await readAll(conn)), "got 8 bytes: question");
  conn.close();
});

Deno.test("proxy: many connections at once", async () => {
  await using t = target(async (conn) => {
    const data = await readAll(conn);
    await writeAll(conn, data.reverse());
  });
  await using r = relay(t.port);
  await Promise.all(Array.from({ length: 40 }, async (_, i) => {
    const data = randomBytes(50_000, i + 1);
    const conn = await connect(r.port);
    const reading = readAll(conn);
    await writeAll(conn, data);
    await conn.closeWrite();
    assert.deepEqual(await reading, data.slice().reverse());
    conn.close();
  }));
  await r.closedCount(40);
});

Deno.test("proxy: a refused target closes the client's connection", async () => {
  const gone = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = gone.addr.port;
  gone.close();
  const events: RelayEvent[] = [];
  const r = Relay.start({
    port: 0,
    hostname: "127.0.0.1",
    targetHost: "127.0.0.1",
    targetPort: port,
    log: (e) => events.push(e),
  });
  const conn = await connect(r.addr.port);
  assert.equal((await readAll(conn)).length, 0);
  conn.close();
  await r.close();
  assert.ok(events.some((e) => e.event === "connect-failed"));
});

// ---- faults ----

Deno.test("fault: latency delays each direction it applies to", async () => {
  await using t = target(async (conn) => {
    const buffer = new Uint8Array(16);
    const n = await conn.read(buffer);
    await writeAll(conn, buffer.subarray(0, n!));
  });
  await using r = relay(t.port, { down: { latencyMs: 150 } });
  const conn = await connect(r.port);
  const started = performance.now();
  await writeAll(conn, text.encode("ping"));
  const answer = await readAll(conn);
  const elapsed = performance.now() - started;
  conn.close();
  assert.equal(text.decode(answer), "ping");
  assert.ok(elapsed >= 150, `round trip took ${elapsed} ms, less than the 150 ms latency`);
});

Deno.test("fault: bandwidth caps the rate", async () => {
  const data = randomBytes(60_000, 3);
  await using t = target((conn) => writeAll(conn, data));
  await using r = relay(t.port, { down: { bandwidthKBps: 200 } }); // 200 KB/s: 60 KB takes 300 ms
  const conn = await connect(r.port);
  const started = performance.now();
  const got = await readAll(conn);
  const elapsed = performance.now() - started;
  conn.close();
  assert.deepEqual(got, data);
  const rate = data.length / elapsed; // bytes per ms = KB/s
  assert.ok(rate <= 200 * 1.1, `rate ${rate.toFixed(0)} KB/s is above the 200 KB/s cap`);
  assert.ok(
    rate >= 200 / 10,
    `rate ${rate.toFixed(0)} KB/s: the stream stalled rather than being paced`,
  );
});

Deno.test("fault: slice passes data on in small writes", async () => {
  const data = randomBytes(700, 4);
  await using t = target((conn) => writeAll(conn, data));
  await using r = relay(t.port, { down: { sliceBytes: 7 } });
  const conn = await connect(r.port);
  assert.deepEqual(await readAll(conn), data);
  conn.close();
  await r.closedCount(1);
  assert.equal(r.closed[0].downWrites, 100); // 700 bytes in writes of 7
  assert.ok(r.closed[0].upWrites <= 1);
});

Deno.test("fault: limit-data closes the connection after that many bytes", async () => {
  let arrived!: (n: number) => void;
  const received = new Promise<number>((resolve) => arrived = resolve);
  await using t = target(async (conn) => arrived((await readAll(conn)).length));
  await using r = relay(t.port, { up: { limitDataBytes: 1000 } });
  const conn = await connect(r.port);
  await writeAll(conn, randomBytes(10_000, 5)).catch(() => {});
  await readAll(conn); // the proxy closes us
  conn.close();
  await r.closedCount(1);
  assert.equal(r.closed[0].reason, "limit-data");
  assert.equal(r.closed[0].up, 1000);
  assert.equal(await received, 1000);
});

Deno.test("fault: reset-after aborts the connection", async () => {
  let release!: () => void;
  const held = new Promise<void>((resolve) => release = resolve);
  await using t = target(() => held); // a target that never answers
  await using r = relay(t.port, { up: { resetAfterMs: 100 } });
  const conn = await connect(r.port);
  await writeAll(conn, text.encode("hello"));
  const started = performance.now();
  assert.equal((await readAll(conn)).length, 0);
  assert.ok(performance.now() - started >= 90);
  conn.close();
  await r.closedCount(1);
  release();
  assert.equal(r.closed[0].reason, "reset-after");
});

Deno.test("fault: timeout passes no data and closes after the time", async () => {
  let arrived!: (n: number) => void;
  const received = new Promise<number>((resolve) => arrived = resolve);
  await using t = target(async (conn) => arrived((await readAll(conn)).length));
  await using r = relay(t.port, { up: { timeoutMs: 150 } });
  const conn = await connect(r.port);
  await writeAll(conn, text.encode("this never arrives"));
  await readAll(conn);
  conn.close();
  await r.closedCount(1);
  assert.equal(r.closed[0].reason, "timeout");
  assert.equal(r.closed[0].up, 0);
  assert.equal(await received, 0);
});

// ---- tracing ----

Deno.test("trace: fsd packets decoded however they are split or packed", () => {
  const stream = [
    encodeRequest(Opcode.RRQ, "a.txt"),
    encodeData(1, new Uint8Array(512)),
    encodeData(2, new Uint8Array(3)),
    encodeAck(2),
    encodeDrq(),
    encodeError(1, "file not found: x"),
  ];
  const all = new Uint8Array(stream.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of stream) {
    all.set(p, at);
    at += p.length;
  }
  const expected = [
    'RRQ "a.txt"',
    "DAT 1 512 bytes",
    "DAT 2 3 bytes",
    "ACK 2",
    "DRQ",
    'ERR 1 "file not found: x"',
  ];
  for (const size of [1, 2, 3, 5, 100, all.length]) {
    const tracer = new FsdTracer();
    const lines: string[] = [];
    for (let i = 0; i < all.length; i += size) {
      lines.push(...tracer.push(all.subarray(i, i + size)));
    }
    assert.deepEqual(lines, expected, `chunks of ${size}`);
  }
  const garbage = new FsdTracer();
  assert.match(garbage.push(new Uint8Array([0, 99, 1]))[0], /^not fsd: unknown opcode: 99/);
  assert.deepEqual(garbage.push(encodeDrq()), []);
});

Deno.test("trace: hex and text forms", () => {
  assert.deepEqual(hexDump(text.encode("hello, world!\n\u0001xyz"), 16), [
    "00000010  68 65 6c 6c 6f 2c 20 77 6f 72 6c 64 21 0a 01 78  hello, world!..x",
    "00000020  79 7a                                            yz",
  ]);
  assert.equal(printable(text.encode("a\tb\nc")), "a.b\nc");
});

Deno.test("proxy CLI: fsd get and put through it, traced packet by packet even when TCP splits them", async () => {
  await using ctx = await startServer({ name: "traced" });
  const content = randomBytes(1300, 6);
  await Deno.writeFile(`${ctx.root}/f.bin`, content);
  await using work = await tempDir();
  await Deno.writeTextFile(`${work.path}/up.txt`, "uploaded through two proxies");
  // A slicing proxy next to the server, a tracing proxy in front of it: the tracer sees packets in pieces.
  await using slicer = relay(ctx.port, { down: { sliceBytes: 5 }, up: { sliceBytes: 3 } });
  const tracer = await spawnFsd(
    ["proxy", "0", "127.0.0.1", String(slicer.port), "--host", "127.0.0.1", "--trace", "fsd"],
    ["--allow-net=127.0.0.1"],
    /^Proxy listening on /,
  );
  try {
    const port = tracer.port;
    const net = [`--allow-net=127.0.0.1:${port}`];
    const got = await runFsd(net, ["get", "127.0.0.1", String(port), "f.bin", "-", "--fsd1"]);
    assert.equal(got.code, 0, got.stderr);
    assert.deepEqual(got.stdoutBytes, content);
    const put = await runFsd([...net, `--allow-read=${work.path}`], [
      "put",
      "127.0.0.1",
      String(port),
      `${work.path}/up.txt`,
    ]);
    assert.equal(put.code, 0, put.stderr);
    assert.equal(await Deno.readTextFile(`${ctx.root}/up.txt`), "uploaded through two proxies");
    const missing = await runFsd(net, ["get", "127.0.0.1", String(port), "nope", "-"]);
    assert.equal(missing.code, 1);
    await tracer.waitForLine(/^\[3\] closed: /);
  } finally {
    await tracer.stop();
  }
  const lines = tracer.lines;
  const trace = lines.map((l) => l.replace(/^\d\d:\d\d:\d\d\.\d{3} /, ""));
  const first = trace.filter((l) => l.startsWith("[1] "));
  assert.deepEqual(first.filter((l) => /[<>] /.test(l)), [
    "[1] < DAT 1 30 bytes", // the greeting
    "[1] > ACK 1",
    '[1] > RRQ "f.bin"',
    "[1] < DAT 1 512 bytes",
    "[1] > ACK 1",
    "[1] < DAT 2 512 bytes",
    "[1] > ACK 2",
    "[1] < DAT 3 276 bytes",
    "[1] > ACK 3",
  ]);
  // put asks for the options extension: the negotiation is traced too
  assert.deepEqual(trace.filter((l) => /^\[2\] [<>] /.test(l)).slice(2), [
    "[2] > OPT blksize=65464 windowsize=16 tsize=28 crc32=1",
    '[2] > WRQ "up.txt"',
    "[2] < OACK blksize=65464 windowsize=16 tsize=28 crc32=1",
    "[2] > DAT 1 28 bytes",
    "[2] > SUM 394d41ec",
    "[2] < ACK 1",
  ]);
  assert.ok(trace.includes('[3] < ERR 1 "file not found: nope"'));
  assert.ok(lines.some((l) => /^\[1\] connection from 127\.0\.0\.1 port \d+$/.test(l)));
});

Deno.test("proxy CLI: usage errors", async () => {
  for (
    const [args, pattern] of [
      [["proxy", "1"], /missing arguments/],
      [["proxy", "0", "h", "1", "--trace", "pcap"], /invalid --trace: pcap/],
      [["proxy", "0", "h", "1", "--stream", "sideways"], /invalid --stream: sideways/],
      [["proxy", "0", "h", "1", "--latency", "soon"], /invalid --latency: soon/],
      [["proxy", "0", "h", "1", "--slice", "0"], /invalid --slice: 0/],
    ] as const
  ) {
    const result = await runFsd([], [...args]);
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, pattern);
  }
});
