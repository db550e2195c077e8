/**
 * The PROXY protocol (HAProxy's specification, v1 and v2): the parser, fed
 * in every possible slicing and fuzzed, and `fsd serve --proxy-protocol`
 * with trusted and untrusted peers, the real client in logs and limits.
 */

import assert from "node:assert/strict";
import { formatIp, inCidr, parseCidr, parseIp } from "../../lib/net/ip.ts";
import {
  MAX_V1_LENGTH,
  type ProxyHeader,
  ProxyHeaderError,
  ProxyHeaderParser,
} from "../../lib/net/proxy_header.ts";
import { forwardedClient, parseTrusted } from "../../lib/net/proxied.ts";
import { makeProxyHeader, rng } from "../fsd/fuzz.ts";
import { runFsd, spawnServe } from "../support/cli.ts";
import { tempDir } from "../support/files.ts";
import { RawClient, wire } from "../support/raw_client.ts";
import { startServer } from "../support/server.ts";

const encoder = new TextEncoder();
const SIGNATURE = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];

function v2(command: number, family: number, body: number[]): Uint8Array {
  return new Uint8Array([
    ...SIGNATURE,
    command,
    family,
    body.length >> 8,
    body.length & 0xff,
    ...body,
  ]);
}

const V2_TCP4 = v2(0x21, 0x11, [203, 0, 113, 7, 127, 0, 0, 1, 0x9c, 0x40, 0x27, 0x10]);

/** Feeds `bytes` to a parser in slices of `size`, never more than it wants; what it returned and took. */
function parse(bytes: Uint8Array, size = bytes.length): { header?: ProxyHeader; taken: number } {
  const parser = new ProxyHeaderParser();
  let taken = 0;
  while (taken < bytes.length && parser.wanted > 0) {
    const n = Math.min(size, parser.wanted, bytes.length - taken);
    const header = parser.push(bytes.subarray(taken, taken + n));
    taken += n;
    if (header) return { header, taken };
  }
  return { taken };
}

Deno.test("proxy header: v1 TCP4, TCP6 and UNKNOWN, in every slicing, and not a byte past the line", () => {
  const cases: [string, ProxyHeader][] = [
    ["PROXY TCP4 203.0.113.7 10.0.0.1 40000 10000\r\n", {
      version: 1,
      command: "proxy",
      source: { hostname: "203.0.113.7", port: 40000 },
      destination: { hostname: "10.0.0.1", port: 10000 },
    }],
    ["PROXY TCP6 2001:DB8:0:0:0:0:0:7 ::1 1 65535\r\n", {
      version: 1,
      command: "proxy",
      source: { hostname: "2001:db8::7", port: 1 },
      destination: { hostname: "::1", port: 65535 },
    }],
    ["PROXY UNKNOWN\r\n", { version: 1, command: "local" }],
    ["PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n", {
      version: 1,
      command: "local",
    }],
  ];
  for (const [line, expected] of cases) {
    const bytes = encoder.encode(line + "\u0000\u0001after");
    for (const size of [1, 2, 3, 7, 1000]) {
      const { header, taken } = parse(bytes, size);
      assert.deepEqual(header, expected, `${line} in slices of ${size}`);
      assert.equal(taken, line.length, "took bytes past the header");
    }
  }
});

Deno.test("proxy header: v2 INET, INET6, LOCAL, UNSPEC and UNIX, with TLVs skipped", () => {
  const inet6 = v2(0x21, 0x21, [
    ...[0x20, 0x01, 0x0d, 0xb8, ...new Array(11).fill(0), 7],
    ...[...new Array(15).fill(0), 1],
    0x9c,
    0x40,
    0x27,
    0x10,
  ]);
  const withTlvs = v2(0x21, 0x11, [
    ...[198, 51, 100, 9, 127, 0, 0, 1, 0, 80, 0, 81],
    ...[0x04, 0, 3, 1, 2, 3], // PP2_TYPE_NOOP with 3 bytes
  ]);
  const cases: [Uint8Array, ProxyHeader][] = [
    [V2_TCP4, {
      version: 2,
      command: "proxy",
      source: { hostname: "203.0.113.7", port: 40000 },
      destination: { hostname: "127.0.0.1", port: 10000 },
    }],
    [inet6, {
      version: 2,
      command: "proxy",
      source: { hostname: "2001:db8::7", port: 40000 },
      destination: { hostname: "::1", port: 10000 },
    }],
    [withTlvs, {
      version: 2,
      command: "proxy",
      source: { hostname: "198.51.100.9", port: 80 },
      destination: { hostname: "127.0.0.1", port: 81 },
    }],
    [v2(0x20, 0x00, []), { version: 2, command: "local" }],
    [v2(0x20, 0x11, [1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0, 2]), { version: 2, command: "local" }],
    [v2(0x21, 0x00, []), { version: 2, command: "local" }],
    [v2(0x21, 0x31, new Array(216).fill(0x61)), { version: 2, command: "local" }],
  ];
  for (const [bytes, expected] of cases) {
    const stream = new Uint8Array([...bytes, 0, 4, 0, 1]);
    for (const size of [1, 5, 16, 4096]) {
      const { header, taken } = parse(stream, size);
      assert.deepEqual(header, expected);
      assert.equal(taken, bytes.length, "took bytes past the header");
    }
  }
});

const BAD: [string, Uint8Array][] = [
  ["no header: an fsd ACK", new Uint8Array([0, 4, 0, 1])],
  ["no header: HTTP", encoder.encode("GET / HTTP/1.0\r\n\r\n")],
  ["lower-case proxy", encoder.encode("proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n")],
  ["v1 too long", encoder.encode(`PROXY UNKNOWN ${"x".repeat(MAX_V1_LENGTH)}\r\n`)],
  ["v1 bare LF", encoder.encode("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n")],
  ["v1 NUL inside", encoder.encode("PROXY TCP4 1.2.3.4\u00005.6.7.8 1 2\r\n")],
  ["v1 unknown protocol", encoder.encode("PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n")],
  ["v1 octet over 255", encoder.encode("PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n")],
  ["v1 leading zero", encoder.encode("PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n")],
  ["v1 IPv6 under TCP4", encoder.encode("PROXY TCP4 ::1 ::1 1 2\r\n")],
  ["v1 IPv4 under TCP6", encoder.encode("PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n")],
  ["v1 port over 65535", encoder.encode("PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n")],
  ["v1 negative port", encoder.encode("PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n")],
  ["v1 double space", encoder.encode("PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n")],
  ["v1 missing port", encoder.encode("PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n")],
  ["v1 extra field", encoder.encode("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n")],
  ["v1 zone index", encoder.encode("PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n")],
  ["v1 two ::", encoder.encode("PROXY TCP6 1::2::3 ::1 1 2\r\n")],
  ["v2 version 1", v2(0x11, 0x11, new Array(12).fill(1))],
  ["v2 version 3", v2(0x31, 0x11, new Array(12).fill(1))],
  ["v2 command 2", v2(0x22, 0x11, new Array(12).fill(1))],
  ["v2 family 4", v2(0x21, 0x41, new Array(12).fill(1))],
  ["v2 datagram", v2(0x21, 0x12, new Array(12).fill(1))],
  ["v2 INET block short", v2(0x21, 0x11, new Array(11).fill(1))],
  ["v2 INET6 block short", v2(0x21, 0x21, new Array(12).fill(1))],
  ["v2 length over the bound", new Uint8Array([...SIGNATURE, 0x21, 0x11, 0xff, 0xff])],
  [
    "v2 signature damaged late",
    new Uint8Array([...SIGNATURE.slice(0, 11), 0x0b, 0x21, 0x11, 0, 0]),
  ],
];

Deno.test("proxy header: malformed headers are a ProxyHeaderError, never more", () => {
  for (const [label, bytes] of BAD) {
    for (const size of [1, 3, 4096]) {
      assert.throws(() => parse(bytes, size), ProxyHeaderError, `${label} (slices of ${size})`);
    }
  }
  assert.throws(() => new ProxyHeaderParser().push(new Uint8Array(7)), /7 bytes pushed, 6 wanted/);
});

Deno.test("proxy header: 50,000 fuzzed headers, each a header or a ProxyHeaderError, within bounds", () => {
  const seed = Number(Deno.env.get("FSD_FUZZ_SEED") ?? Math.floor(Math.random() * 2 ** 31));
  console.log(`  seed ${seed} (repeat with FSD_FUZZ_SEED=${seed})`);
  const r = rng(seed);
  const outcomes: Record<string, number> = {};
  for (let i = 0; i < 50_000; i++) {
    const bytes = makeProxyHeader(r);
    // Damage: flip a bit, cut, or append noise.
    const at = Math.floor(r() * bytes.length);
    if (r() < 0.3) bytes[at] ^= 1 << Math.floor(r() * 8);
    else if (r() < 0.2) bytes.splice(at, 1 + Math.floor(r() * 4));
    const stream = new Uint8Array([...bytes, ...new Array(Math.floor(r() * 20)).fill(0x41)]);
    try {
      const { header, taken } = parse(stream, 1 + Math.floor(r() * 40));
      assert.ok(taken <= 16 + 2048, `took ${taken} bytes`);
      const key = header ? `${header.version} ${header.command}` : "incomplete";
      outcomes[key] = (outcomes[key] ?? 0) + 1;
      if (header?.command === "proxy") {
        assert.ok(parseIp(header.source.hostname), header.source.hostname);
        assert.ok(header.source.port >= 0 && header.source.port <= 65535);
      }
    } catch (error) {
      if (!(error instanceof ProxyHeaderError)) throw error;
      outcomes.refused = (outcomes.refused ?? 0) + 1;
    }
  }
  console.log(`  ${JSON.stringify(outcomes)}`);
  assert.ok(outcomes.refused > 0 && (outcomes["2 proxy"] ?? 0) > 0);
});

Deno.test("ip: parsing, RFC 5952 formatting, CIDR ranges (IPv4-mapped IPv6 counts as IPv4)", () => {
  assert.equal(formatIp(parseIp("2001:0db8:0000:0000:0001:0000:0000:0001")!), "2001:db8::1:0:0:1");
  assert.equal(formatIp(parseIp("::")!), "::");
  assert.equal(formatIp(parseIp("1:0:1:0:1:0:1:0")!), "1:0:1:0:1:0:1:0");
  assert.equal(formatIp(parseIp("::ffff:1.2.3.4")!), "::ffff:102:304");
  for (const bad of ["1.2.3", "1.2.3.4.5", "::1::", "12345::", "g::", "1.2.3.04", ""]) {
    assert.equal(parseIp(bad), undefined, bad);
  }
  const lan = parseCidr("10.1.0.0/16")!;
  assert.ok(inCidr("10.1.200.3", lan));
  assert.ok(!inCidr("10.2.0.1", lan));
  assert.ok(inCidr("::ffff:10.1.0.9", lan));
  assert.ok(inCidr("127.0.0.1", parseCidr("127.0.0.1")!));
  assert.ok(!inCidr("127.0.0.2", parseCidr("127.0.0.1")!));
  assert.ok(inCidr("fd00::1:2", parseCidr("fd00::/8")!));
  assert.ok(!inCidr("fe80::1", parseCidr("fd00::/8")!));
  assert.ok(!inCidr("10.1.0.1", parseCidr("::/0")!));
  assert.ok(inCidr("8.8.8.8", parseCidr("0.0.0.0/0")!));
  for (const bad of ["10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/08", "x/1", "10.0.0.0/-1"]) {
    assert.equal(parseCidr(bad), undefined, bad);
  }
});

// ---- fsd serve --proxy-protocol ----

Deno.test("serve --proxy-protocol: the real client is logged and counts for --max-per-ip", async () => {
  await using ctx = await startServer({
    maxPerIp: 1,
    proxyProtocol: { trusted: [parseCidr("127.0.0.0/8")!] },
  });
  const header = (source: string, port: number) =>
    encoder.encode(`PROXY TCP4 ${source} 127.0.0.1 ${port} ${ctx.port}\r\n`);
  await using first = await RawClient.connect(ctx.port);
  await first.send(header("203.0.113.7", 40001));
  const greeting = await first.read();
  assert.equal(greeting?.op, "DAT");
  await ctx.waitForLog(/connection from 203\.0\.113\.7 port 40001 via 127\.0\.0\.1 port \d+/);
  // The same client again through the same proxy: over its limit of 1.
  await using again = await RawClient.connect(ctx.port);
  await again.send(V2_TCP4);
  assert.match(await again.expectError(0), /too many connections from 203\.0\.113\.7: at most 1/);
  // Another client through the same proxy is let in.
  await using other = await RawClient.connect(ctx.port);
  await other.send(header("198.51.100.1", 40002));
  assert.equal((await other.read())?.op, "DAT");
  // A health check (v2 LOCAL) is the proxy itself, and works.
  await using check = await RawClient.connect(ctx.port);
  await check.send(v2(0x20, 0x00, []));
  assert.equal((await check.read())?.op, "DAT");
  await ctx.waitForLog(/connection from 127\.0\.0\.1 port \d+$/);
});

Deno.test("serve --proxy-protocol: untrusted peers, missing and malformed headers are refused and logged", async () => {
  await using trustedElsewhere = await startServer({
    proxyProtocol: { trusted: [parseCidr("10.0.0.0/8")!, parseCidr("fd00::/8")!] },
  });
  await using client = await RawClient.connect(trustedElsewhere.port);
  await client.send(V2_TCP4);
  assert.match(await client.expectError(0), /not a trusted proxy: 127\.0\.0\.1/);
  await client.expectClosed();
  await trustedElsewhere.waitForLog(
    /connection from 127\.0\.0\.1 port \d+ rejected with error 0: not a trusted proxy/,
  );

  await using ctx = await startServer({
    proxyProtocol: { trusted: [parseCidr("127.0.0.1")!], timeoutMs: 300 },
  });
  for (const [label, bytes] of BAD) {
    await using bad = await RawClient.connect(ctx.port);
    await bad.send(bytes);
    if (label.startsWith("v1") || label.startsWith("no header")) await bad.conn.closeWrite();
    const message = await bad.expectError(0);
    assert.match(message, /PROXY|closed before/, label);
    await bad.expectClosed();
  }
  // Silence: refused once the header's time is up.
  await using silent = await RawClient.connect(ctx.port);
  assert.match(await silent.expectError(0), /^no PROXY header within 300 ms$/);
  await silent.expectClosed();
  await ctx.waitForLog(/rejected with error 0: no PROXY header within 300 ms/);
  // A plain fsd client with no header at all.
  await using plain = await RawClient.connect(ctx.port);
  await plain.send(wire.rrq("x"));
  assert.match(await plain.expectError(0), /no PROXY protocol header/);
  // Still serving.
  await using good = await RawClient.connect(ctx.port);
  await good.send(V2_TCP4);
  assert.equal((await good.read())?.op, "DAT");
});

Deno.test("serve --proxy-protocol: the command line", async () => {
  await using dir = await tempDir();
  const perms = ["--allow-net=127.0.0.1", `--allow-read=${dir.path}`];
  const usage = async (args: string[], pattern: RegExp) => {
    const result = await runFsd(perms, ["serve", dir.path, "0", "--read-only", ...args]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, pattern);
  };
  await usage(["--proxy-protocol"], /--proxy-protocol needs --trusted-proxy ADDR\[\/BITS\]/);
  await usage(["--trusted-proxy", "127.0.0.1"], /--trusted-proxy needs --proxy-protocol/);
  await usage(
    ["--proxy-protocol", "--trusted-proxy", "127.0.0.1", "--trusted-proxy", "10.0.0.0/40"],
    /invalid --trusted-proxy: invalid address range: 10\.0\.0\.0\/40/,
  );
  await using server = await spawnServe(dir.path, 0, [
    "--read-only",
    "--proxy-protocol",
    "--trusted-proxy",
    "::1",
    "--trusted-proxy",
    "127.0.0.0/8",
  ], perms);
  await using client = await RawClient.connect(server.port);
  await client.send(encoder.encode("PROXY TCP6 2001:db8::9 ::1 5555 10000\r\n"));
  assert.equal((await client.read())?.op, "DAT");
  await server.waitForLine(/connection from 2001:db8::9 port 5555 via 127\.0\.0\.1/);
});

Deno.test("X-Forwarded-For: only a trusted proxy's header counts, and only its last address", () => {
  const trusted = parseTrusted(["127.0.0.1", "fd00::/8"]);
  // From a trusted proxy: the address it appended, the last one; an IPv4-mapped one as IPv4.
  assert.equal(forwardedClient("127.0.0.1", "10.6.6.6, 192.0.2.7", trusted), "192.0.2.7");
  assert.equal(forwardedClient("fd00::2", "::ffff:192.0.2.8", trusted), "192.0.2.8");
  assert.equal(forwardedClient("127.0.0.1", " 2001:DB8::1 ", trusted), "2001:db8::1");
  // Not an address (or no header): the connection's own peer.
  assert.equal(forwardedClient("127.0.0.1", "192.0.2.7, unknown", trusted), "127.0.0.1");
  assert.equal(forwardedClient("127.0.0.1", "192.0.2.7,", trusted), "127.0.0.1");
  assert.equal(forwardedClient("127.0.0.1", null, trusted), "127.0.0.1");
  // From anyone else, or without --trusted-proxy: the header is the client's word, ignored.
  assert.equal(forwardedClient("127.0.0.2", "192.0.2.7", trusted), "127.0.0.2");
  assert.equal(forwardedClient("127.0.0.1", "192.0.2.7", undefined), "127.0.0.1");
});
