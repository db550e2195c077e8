/**
 * The attack corpus: hostile names and malformed packets, each answered as
 * docs/PROTOCOL.md says, with nothing read or written outside the served
 * directory and the server alive after every one; and an account's
 * hostile names, with nothing reached outside its home.
 */

import assert from "node:assert/strict";
import { parseCidr } from "../../lib/net/ip.ts";
import { parseAccounts } from "../../lib/auth/accounts.ts";
import { Authenticator } from "../../lib/auth/authenticator.ts";
import { hashPassword } from "../../lib/auth/password.ts";
import { dirNames, randomBytes, tempDir, text } from "../support/files.ts";
import { RawClient, wire } from "../support/raw_client.ts";
import { startServer, type TestServer } from "../support/server.ts";

/** What the server must answer to a request. */
type Expect =
  | { err: number } // ERR code, connection stays usable
  | { fatal: true } // ERR 4 and close
  | "data" // RRQ served (a file or a listing)
  | "accepted"; // WRQ answered with ACK 0

interface NameCase {
  label: string;
  name: string | Uint8Array;
  rrq: Expect;
  wrq: Expect;
  /** A second answer that follows the first (for names that split into two packets). */
  then?: Expect;
}

const bytes = (...b: number[]) => new Uint8Array(b);
const utf8 = (s: string) => new TextEncoder().encode(s);

const NAME_CASES: NameCase[] = [
  // traversal
  { label: "../", name: "../secret", rrq: { err: 2 }, wrq: { err: 2 } },
  { label: "../../ deep", name: "../../../../../../etc/passwd", rrq: { err: 2 }, wrq: { err: 2 } },
  { label: "..\\", name: "..\\secret", rrq: { err: 2 }, wrq: { err: 2 } },
  { label: "....//", name: "....//secret", rrq: { err: 2 }, wrq: { err: 2 } },
  { label: "... (a legal name)", name: "...", rrq: { err: 1 }, wrq: "accepted" },
  { label: "..//", name: "..//secret", rrq: { err: 2 }, wrq: { err: 2 } },
  { label: "foo/..", name: "foo/..", rrq: { err: 2 }, wrq: { err: 2 } },
  { label: "foo/../..", name: "foo/../../secret", rrq: { err: 2 }, wrq: { err: 2 } },
  { label: "absolute", name: "/etc/passwd", rrq: { err: 2 }, wrq: { err: 2 } },
  { label: "absolute to outside", name: "OUTSIDE/secret", rrq: { err: 2 }, wrq: { err: 2 } },
  {
    label: "percent-encoded dots (literal names)",
    name: "%2e%2e/secret",
    rrq: { err: 1 },
    wrq: { err: 1 },
  },
  {
    label: "percent-encoded dots, one part",
    name: "%2e%2e%2fsecret",
    rrq: { err: 1 },
    wrq: "accepted",
  },
  {
    label: "overlong UTF-8 for .",
    name: bytes(0xc0, 0xae, 0xc0, 0xae, 0x2f, 0x73),
    rrq: { err: 2 },
    wrq: { err: 2 },
  },
  {
    label: "overlong UTF-8 for /",
    name: bytes(0x2e, 0x2e, 0xc0, 0xaf, 0x73),
    rrq: { err: 2 },
    wrq: { err: 2 },
  },
  { label: "./", name: "./secret", rrq: { err: 2 }, wrq: { err: 2 } },
  // characters and encodings
  // "a" ends at the NUL; "b" and the terminator then read as opcode 0x6200
  {
    label: "NUL inside (ends the name early)",
    name: bytes(0x61, 0x00, 0x62),
    rrq: { err: 1 },
    wrq: "accepted",
    then: { fatal: true },
  },
  { label: "control byte", name: "a\u0001b", rrq: { err: 2 }, wrq: { err: 2 } },
  { label: "newline", name: "a\nb", rrq: { err: 2 }, wrq: { err: 2 } },
  { label: "escape sequence", name: "\u001b[31mred", rrq: { err: 2 }, wrq: { err: 2 } },
  { label: "DEL", name: "a\u007f", rrq: { err: 2 }, wrq: { err: 2 } },
  { label: "C1 control", name: "a\u009bb", rrq: { err: 2 }, wrq: { err: 2 } },
  { label: "invalid UTF-8", name: bytes(0x61, 0xff, 0xfe), rrq: { err: 2 }, wrq: { err: 2 } },
  { label: "lone continuation byte", name: bytes(0x80), rrq: { err: 2 }, wrq: { err: 2 } },
  { label: "UTF-16 surrogate", name: bytes(0xed, 0xa0, 0x80), rrq: { err: 2 }, wrq: { err: 2 } },
  { label: "staging name", name: ".fsd-upload-x", rrq: { err: 2 }, wrq: { err: 2 } },
  // invisible and layout characters (issue 18, item 12): refused, never stripped or printed raw
  { label: "leading U+FEFF", name: "\uFEFFnotes.txt", rrq: { err: 2 }, wrq: { err: 2 } },
  { label: "right-to-left override", name: "a\u202Etxt.exe", rrq: { err: 2 }, wrq: { err: 2 } },
  { label: "zero-width space", name: "a\u200Bb", rrq: { err: 2 }, wrq: { err: 2 } },
  { label: "line separator U+2028", name: "a\u2028b", rrq: { err: 2 }, wrq: { err: 2 } },
  // lengths
  { label: "255 bytes", name: "a".repeat(255), rrq: { err: 1 }, wrq: "accepted" },
  { label: "256 bytes", name: "b".repeat(256), rrq: { err: 2 }, wrq: { err: 2 } },
  {
    label: "1024 bytes (the longest string)",
    name: "c".repeat(1024),
    rrq: { err: 2 },
    wrq: { err: 2 },
  },
  { label: "10,000 bytes", name: "d".repeat(10_000), rrq: { fatal: true }, wrq: { fatal: true } },
  // links and special files
  { label: "symlink to a file outside", name: "link-out", rrq: { err: 2 }, wrq: { err: 2 } },
  { label: "symlinked parent directory", name: "dir-out/secret", rrq: { err: 2 }, wrq: { err: 2 } },
  {
    label: "new file in a symlinked parent",
    name: "dir-out/new",
    rrq: { err: 2 },
    wrq: { err: 2 },
  },
  { label: "symlink to /", name: "to-root/etc/passwd", rrq: { err: 2 }, wrq: { err: 2 } },
  { label: "symlink loop", name: "loop", rrq: { err: 2 }, wrq: { err: 2 } },
  {
    label: "missing file under a symlinked parent",
    name: "dir-out/nope/deeper",
    rrq: { err: 2 },
    wrq: { err: 2 },
  },
  { label: "directory as a file", name: "subdir", rrq: "data", wrq: { err: 6 } },
  { label: "FIFO as a file", name: "fifo", rrq: { err: 2 }, wrq: { err: 6 } },
  { label: "device as a file", name: "device", rrq: { err: 2 }, wrq: { err: 6 } },
  { label: "empty name", name: "", rrq: "data", wrq: { err: 2 } },
];

/** The served directory with its traps, and an outside directory that must stay untouched. */
async function arena() {
  const outside = await tempDir();
  await Deno.writeTextFile(`${outside.path}/secret`, "secret");
  const ctx = await startServer();
  const root = ctx.root;
  await Deno.symlink(`${outside.path}/secret`, `${root}/link-out`);
  await Deno.symlink(outside.path, `${root}/dir-out`);
  await Deno.symlink("/", `${root}/to-root`);
  await Deno.symlink("loop", `${root}/loop`);
  await Deno.mkdir(`${root}/subdir`);
  await new Deno.Command("mkfifo", { args: [`${root}/fifo`] }).output();
  const device = await new Deno.Command("mknod", {
    args: [`${root}/device`, "c", "1", "3"],
    stderr: "null",
  }).output();
  if (!device.success) await new Deno.Command("mkfifo", { args: [`${root}/device`] }).output(); // not root: a FIFO stands in
  return {
    ctx,
    outside: outside.path,
    async [Symbol.asyncDispose]() {
      await ctx[Symbol.asyncDispose]();
      await outside[Symbol.asyncDispose]();
    },
  };
}

async function snapshot(path: string): Promise<string[]> {
  const out: string[] = [];
  for await (const entry of Deno.readDir(path)) {
    const info = await Deno.lstat(`${path}/${entry.name}`);
    out.push(`${entry.name} ${info.size} ${info.mtime?.getTime()}`);
  }
  return out.sort();
}

/** The server still serves: a fresh client gets a listing. */
async function assertAlive(ctx: TestServer): Promise<void> {
  await using client = await RawClient.greeted(ctx.port);
  await client.listRoot();
}

async function check(client: RawClient, expect: Expect, label: string): Promise<void> {
  const packet = await client.read();
  if (expect === "data") {
    assert.equal(packet?.op, "DAT", `${label}: ${JSON.stringify(packet)}`);
    return;
  }
  if (expect === "accepted") {
    assert.ok(packet?.op === "ACK" && packet.block === 0, `${label}: ${JSON.stringify(packet)}`);
    return;
  }
  const code = "fatal" in expect ? 4 : expect.err;
  assert.ok(
    packet?.op === "ERR" && packet.code === code,
    `${label}: expected ERR ${code}, got ${JSON.stringify(packet)}`,
  );
  if ("fatal" in expect) await client.expectClosed();
}

Deno.test("attack corpus: hostile names, for RRQ and for WRQ", async (t) => {
  await using a = await arena();
  const { ctx, outside } = a;
  const before = await snapshot(outside);
  for (const c of NAME_CASES) {
    const name = typeof c.name === "string" ? c.name.replace("OUTSIDE", outside) : c.name;
    for (const op of ["rrq", "wrq"] as const) {
      await t.step(`${op.toUpperCase()} ${c.label}`, async () => {
        await using client = await RawClient.greeted(ctx.port);
        await client.send(op === "rrq" ? wire.rrq(name) : wire.wrq(name));
        await check(client, c[op], `${op} ${c.label}`);
        if (c.then) {
          await check(client, c.then, `${op} ${c.label}, second answer`);
        } else if (c[op] === "accepted") {
          await client.send(wire.dat(1, utf8("x")));
          await client.expectAck(1);
        }
        assert.deepEqual(await snapshot(outside), before);
        await assertAlive(ctx);
      });
    }
  }
  // the only new files are the accepted uploads, all inside the root
  const created = (await Array.fromAsync(Deno.readDir(ctx.root))).filter((e) => e.isFile).map((e) =>
    e.name
  ).sort();
  assert.deepEqual(created, ["%2e%2e%2fsecret", "...", "a".repeat(255)]);
});

interface PacketCase {
  label: string;
  /** What happens after the greeting is answered (or instead, when `raw`). */
  provoke: (client: RawClient) => Promise<void>;
  /** Answer ERR 4 and close, or (for "close") just close, or (for "listing") answer a listing first. */
  expect: "fatal" | "close";
  /** Skip answering the greeting. */
  raw?: boolean;
}

const halfClose = (client: RawClient) => client.conn.closeWrite();

const PACKET_CASES: PacketCase[] = [
  { label: "nothing at all, then EOF", raw: true, expect: "close", provoke: halfClose },
  {
    label: "a 0-byte write after the greeting, then EOF",
    expect: "close",
    provoke: async (c) => {
      await c.send(new Uint8Array(0));
      await halfClose(c);
    },
  },
  {
    label: "1-byte packet, then EOF",
    expect: "close",
    provoke: async (c) => {
      await c.send(bytes(0));
      await halfClose(c);
    },
  },
  {
    label: "3-byte packet (half an ACK), then EOF",
    expect: "close",
    provoke: async (c) => {
      await c.send(bytes(0, 4, 0));
      await halfClose(c);
    },
  },
  {
    label: "1-byte packet instead of ACK 1",
    raw: true,
    expect: "close",
    provoke: async (c) => {
      await c.read();
      await c.send(bytes(4));
      await halfClose(c);
    },
  },
  {
    label: "ERR with a 10 KB message and no zero byte",
    expect: "fatal",
    provoke: (c) => c.send(wire.concat(bytes(0, 5, 0, 0), new Uint8Array(10_000).fill(65))),
  },
  {
    label: "ERR with a 10 KB message, zero-terminated",
    expect: "fatal",
    provoke: (c) => c.send(wire.err(0, "x".repeat(10_000))),
  },
  {
    label: "DAT announcing 65535 bytes, during an upload",
    expect: "fatal",
    provoke: async (c) => {
      await c.send(wire.wrq("up-65535"));
      await c.expectAck(0);
      await c.send(wire.dat(1, new Uint8Array(16), 65535));
    },
  },
  {
    label: "DAT of 65535 real bytes, during an upload",
    expect: "fatal",
    provoke: async (c) => {
      await c.send(wire.wrq("up-real"));
      await c.expectAck(0);
      await c.send(wire.dat(1, new Uint8Array(65535)));
    },
  },
  {
    label: "DAT block 0, during an upload",
    expect: "fatal",
    provoke: async (c) => {
      await c.send(wire.wrq("up-0"));
      await c.expectAck(0);
      await c.send(wire.dat(0, new Uint8Array(5)));
    },
  },
  {
    label: "DAT block 0, outside a transfer",
    expect: "fatal",
    provoke: (c) => c.send(wire.dat(0, new Uint8Array(5))),
  },
  {
    label: "ACK for a future block, during a download",
    expect: "fatal",
    provoke: async (c) => {
      await c.send(wire.rrq("big"));
      await c.read();
      await c.send(wire.ack(5));
    },
  },
  {
    label: "duplicate ACKs, during a download",
    expect: "fatal",
    provoke: async (c) => {
      await c.send(wire.rrq("big"));
      await c.read();
      await c.send(wire.ack(1));
      await c.read();
      await c.send(wire.ack(1));
    },
  },
  {
    label: "ACK 0 in answer to the greeting",
    raw: true,
    expect: "fatal",
    provoke: async (c) => {
      await c.read();
      await c.send(wire.ack(0));
    },
  },
  { label: "the greeting ACKed twice", expect: "fatal", provoke: (c) => c.send(wire.ack(1)) },
];

Deno.test("attack corpus: malformed and out-of-place packets", async (t) => {
  await using a = await arena();
  const { ctx, outside } = a;
  await Deno.writeFile(`${ctx.root}/big`, randomBytes(4096));
  const before = await snapshot(outside);
  for (const c of PACKET_CASES) {
    await t.step(c.label, async () => {
      await using client = c.raw
        ? await RawClient.connect(ctx.port)
        : await RawClient.greeted(ctx.port);
      if (c.raw && c.label.startsWith("nothing")) await client.read(); // the greeting
      await c.provoke(client);
      if (c.expect === "fatal") await client.expectError(4);
      await client.expectClosed();
      assert.deepEqual(await snapshot(outside), before);
      await assertAlive(ctx);
    });
  }
  assert.deepEqual(
    (await Array.fromAsync(Deno.readDir(ctx.root))).filter((e) => e.name.startsWith("up-")),
    [],
  );
});

Deno.test("attack corpus: every opcode fsd/1 does not define, 0 and 7 to 65535, is ERR 4 and a close", async () => {
  await using ctx = await startServer({ maxPerIp: 0 });
  const opcodes = [0, ...Array.from({ length: 65535 - 6 }, (_, i) => i + 7)];
  let next = 0;
  const worker = async () => {
    while (next < opcodes.length) {
      const op = opcodes[next++];
      await using client = await RawClient.greeted(ctx.port);
      await client.send(bytes(op >> 8, op & 0xff, 0, 0));
      const packet = await client.read();
      assert.ok(
        packet?.op === "ERR" && packet.code === 4,
        `opcode ${op}: ${JSON.stringify(packet)}`,
      );
      // 7 and 8 are the options extension's OPT and OACK: an empty one is just as illegal.
      const expected = op === 7 || op === 8
        ? `${op === 7 ? "OPT" : "OACK"} with 0 options: 1 to 16 expected`
        : `unknown opcode: ${op}`;
      assert.equal(packet.message, expected);
      await client.expectClosed();
    }
  };
  await Promise.all(Array.from({ length: 32 }, worker));
  assert.equal(next, 65530);
  await assertAlive(ctx);
});

Deno.test("attack corpus: a slow drip of one name byte per write is still one request", async () => {
  await using ctx = await startServer();
  await Deno.writeTextFile(`${ctx.root}/drip`, "ok");
  await using client = await RawClient.greeted(ctx.port);
  for (const b of wire.rrq("drip")) await client.send(bytes(b));
  const packet = await client.read();
  assert.ok(packet?.op === "DAT" && text.decode(packet.data) === "ok");
});

// ---- PROXY protocol headers, for a server run with --proxy-protocol ----

const PROXY_SIGNATURE = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];
const proxyV2 = (head: number[], length: number, body: number[] = []) =>
  bytes(...PROXY_SIGNATURE, ...head, length >> 8, length & 0xff, ...body);

/** Headers that must each get ERR 0 naming the problem and a close, never a crash or a hang. */
const PROXY_CASES: { label: string; stream: Uint8Array; closeWrite?: boolean }[] = [
  { label: "fsd request without a header", stream: wire.rrq("a") },
  { label: "TLS ClientHello", stream: bytes(0x16, 0x03, 0x01, 0x02, 0x00, 0x01) },
  { label: "v1 longer than 107 bytes", stream: utf8(`PROXY TCP4 ${"1".repeat(200)}`) },
  { label: "v1 without CRLF, then EOF", stream: utf8("PROXY TCP4 1.2.3.4"), closeWrite: true },
  { label: "v1 CR without LF", stream: utf8("PROXY UNKNOWN\rX") },
  { label: "v1 NUL", stream: utf8("PROXY TCP4 1.2.3.4 \u0000") },
  { label: "v1 UTF-8", stream: utf8("PROXY TCP4 １.2.3.4 5.6.7.8 1 2\r\n") },
  { label: "v1 port 99999", stream: utf8("PROXY TCP4 1.2.3.4 5.6.7.8 99999 1\r\n") },
  { label: "v1 IPv6 overlong", stream: utf8(`PROXY TCP6 ${"1:".repeat(20)}1 ::1 1 2\r\n`) },
  { label: "v2 length 65535", stream: proxyV2([0x21, 0x11], 65535) },
  { label: "v2 version 0", stream: proxyV2([0x01, 0x11], 12, new Array(12).fill(0)) },
  { label: "v2 command 15", stream: proxyV2([0x2f, 0x11], 12, new Array(12).fill(0)) },
  { label: "v2 family 15", stream: proxyV2([0x21, 0xf1], 12, new Array(12).fill(0)) },
  { label: "v2 UDP", stream: proxyV2([0x21, 0x12], 12, new Array(12).fill(0)) },
  { label: "v2 INET with 4 bytes", stream: proxyV2([0x21, 0x11], 4, [1, 2, 3, 4]) },
  { label: "v2 cut short, then EOF", stream: proxyV2([0x21, 0x11], 12, [1, 2]), closeWrite: true },
  { label: "half a signature, then EOF", stream: bytes(0x0d, 0x0a, 0x0d), closeWrite: true },
];

Deno.test("attack corpus: malformed PROXY protocol headers are ERR 0 and a close", async (t) => {
  await using ctx = await startServer({ proxyProtocol: { trusted: [parseCidr("127.0.0.1")!] } });
  for (const { label, stream, closeWrite } of PROXY_CASES) {
    await t.step(label, async () => {
      await using client = await RawClient.connect(ctx.port);
      await client.send(stream);
      if (closeWrite) await client.conn.closeWrite();
      const packet = await client.read();
      assert.ok(
        packet?.op === "ERR" && packet.code === 0 && /PROXY/.test(packet.message),
        `${label}: ${JSON.stringify(packet)}`,
      );
      await client.expectClosed();
    });
  }
  // A one-byte drip of a valid header is still a header.
  await using drip = await RawClient.connect(ctx.port);
  for (const b of utf8("PROXY TCP4 192.0.2.1 127.0.0.1 7 8\r\n")) await drip.send(bytes(b));
  assert.equal((await drip.read())?.op, "DAT");
  await ctx.waitForLog(/connection from 192\.0\.2\.1 port 7 via/);
});

Deno.test("attack corpus: a logged-in account stays inside its home", async (t) => {
  const hash = await hashPassword("wonderland", { ln: 10, r: 8, p: 1 });
  const authenticator = await Authenticator.create(parseAccounts(`alice:${hash}:rw:home/alice\n`));
  await using ctx = await startServer({ accounts: { authenticator } });
  const root = ctx.root;
  await Deno.mkdir(`${root}/home/alice`, { recursive: true });
  await Deno.mkdir(`${root}/home/bob`);
  await Deno.writeTextFile(`${root}/home/bob/private.txt`, "bob's");
  await Deno.writeTextFile(`${root}/top.txt`, "top");
  await Deno.symlink(`${root}/home/bob`, `${root}/home/alice/to-bob`);
  await Deno.symlink("..", `${root}/home/alice/up`);
  const before = await snapshot(root);
  const beforeBob = await snapshot(`${root}/home/bob`);
  const cases: [string, Expect, Expect][] = [
    ["../bob/private.txt", { err: 2 }, { err: 2 }],
    ["../../top.txt", { err: 2 }, { err: 2 }],
    ["top.txt", { err: 1 }, "accepted"], // the root's top.txt does not exist in the home
    ["to-bob/private.txt", { err: 2 }, { err: 2 }],
    ["up/bob/private.txt", { err: 2 }, { err: 2 }],
    ["up", { err: 2 }, { err: 2 }], // an existing symlink leading outside: ERR 2, not ERR 6
    [`${root}/top.txt`, { err: 2 }, { err: 2 }],
    ["", "data", { err: 2 }],
  ];
  for (const [name, rrq, wrq] of cases) {
    for (const [op, expect] of [["rrq", rrq], ["wrq", wrq]] as const) {
      await t.step(`${op.toUpperCase()} ${JSON.stringify(name)} as alice`, async () => {
        await using client = await RawClient.greeted(ctx.port);
        await client.send(wire.opt({ user: "alice", password: "wonderland" }));
        await client.expectOack();
        await client.send(op === "rrq" ? wire.rrq(name) : wire.wrq(name));
        await check(client, expect, `${op} ${name}`);
        if (expect === "accepted") {
          await client.send(wire.dat(1, utf8("x")));
          await client.expectAck(1);
        }
      });
    }
  }
  assert.deepEqual(await snapshot(root), before, "nothing changed outside the home");
  assert.deepEqual(await snapshot(`${root}/home/bob`), beforeBob);
  assert.deepEqual((await snapshot(`${root}/home/alice`)).map((e) => e.split(" ")[0]), [
    "to-bob",
    "top.txt",
    "up",
  ]);
});

Deno.test("attack corpus: the integrity, kind, resume, mkdir, eager and pipeline options, and forged or missing SUMs", async (t) => {
  await using ctx = await startServer();
  const content = randomBytes(2000, 12);
  await Deno.writeFile(`${ctx.root}/f`, content);
  const sum = (digest: Uint8Array) => wire.concat([0, 9], digest);

  for (
    const [name, value] of [
      ["sha256", "2"],
      ["crc32", "2"],
      ["kind", "3"],
      ["offset", "x"],
      [
        "mkdir",
        "9",
      ],
      ["eager", "-1"],
      ["pipeline", "01x"],
    ]
  ) {
    await t.step(`${name}=${value} is ERR 8 and a close`, async () => {
      await using client = await RawClient.greeted(ctx.port);
      await client.send(wire.opt({ [name]: value }), wire.rrq("f"));
      assert.match(await client.expectError(8), new RegExp(`^option negotiation failed: ${name}`));
      await client.expectClosed();
    });
  }
  await t.step("options that do not apply are answered 0: an OACK is never empty", async () => {
    // Found by the fuzzer: OPT digests=00 + WRQ once got an OACK with no options at all.
    const cases: Record<string, string>[] = [
      { digests: "00" },
      { kind: "0" },
      { sha256: "0" },
      {
        crc32: "0",
      },
      { mkdir: "0" },
      { eager: "00" },
      { eager: "1" },
      { pipeline: "1" },
    ];
    for (const pairs of cases) {
      await using client = await RawClient.greeted(ctx.port);
      await client.send(wire.opt(pairs), wire.wrq(`w-${Object.keys(pairs)[0]}`));
      const oack = await client.expectOack();
      assert.deepEqual(Object.keys(oack), Object.keys(pairs));
      assert.equal(Object.values(oack)[0], "0");
    }
  });
  await t.step("a SUM without sha256 negotiated is unknown opcode 9", async () => {
    await using client = await RawClient.greeted(ctx.port);
    await client.send(wire.wrq("plain"));
    await client.expectAck(0);
    await client.send(wire.dat(1, new Uint8Array(10)), sum(new Uint8Array(32)));
    await client.expectAck(1);
    assert.equal(await client.expectError(4), "unknown opcode: 9");
    await client.expectClosed();
  });
  await t.step("an upload with a forged SUM is ERR 0 and leaves nothing", async () => {
    await using client = await RawClient.greeted(ctx.port);
    await client.send(wire.opt({ sha256: "1", tsize: "10" }), wire.wrq("forged"));
    assert.deepEqual(await client.expectOack(), { sha256: "1", tsize: "10" });
    await client.send(wire.dat(1, new Uint8Array(10)), sum(new Uint8Array(32).fill(7)));
    assert.match(
      await client.expectError(0),
      /^sha256 mismatch: received [0-9a-f]{64}, the client sent 0707/,
    );
    await client.expectClosed();
  });
  await t.step(
    "crc32: an upload with a forged 4-byte SUM is ERR 0 and leaves nothing",
    async () => {
      await using client = await RawClient.greeted(ctx.port);
      await client.send(wire.opt({ crc32: "1", tsize: "10" }), wire.wrq("forged32"));
      assert.deepEqual(await client.expectOack(), { crc32: "1", tsize: "10" });
      await client.send(wire.dat(1, new Uint8Array(10)), sum(new Uint8Array(4).fill(7)));
      assert.equal(
        await client.expectError(0),
        "crc32 mismatch: received e38a6876, the client sent 07070707",
      );
      await client.expectClosed();
    },
  );
  await t.step(
    "WRQ mtime: up to 2^32-1 the file gets it; beyond, the OACK says 0 and it is not applied",
    async () => {
      for (const [name, mtime, granted] of [["old", "1", "1"], ["far", "999999999999999", "0"]]) {
        await using client = await RawClient.greeted(ctx.port);
        await client.send(wire.opt({ mtime }), wire.wrq(`mtime-${name}`));
        assert.deepEqual(await client.expectOack(), { mtime: granted });
        await client.send(wire.dat(1, new Uint8Array(3)));
        await client.expectAck(1);
        const seconds = (await Deno.stat(`${ctx.root}/mtime-${name}`)).mtime!.getTime() / 1000;
        if (granted === "1") assert.equal(seconds, 1);
        else assert.ok(seconds > 1_700_000_000 && seconds < 2 ** 32);
      }
    },
  );
  await t.step(
    "sha256 and crc32 asked together: SHA-256 is granted, CRC-32 answered 0",
    async () => {
      await using client = await RawClient.greeted(ctx.port);
      await client.send(wire.opt({ sha256: "1", crc32: "1" }), wire.rrq("f"));
      assert.deepEqual(await client.expectOack(), { sha256: "1", crc32: "0" });
    },
  );
  await t.step(
    "an upload whose SUM never comes (an ACK instead) is ERR 4 and leaves nothing",
    async () => {
      await using client = await RawClient.greeted(ctx.port);
      await client.send(wire.opt({ sha256: "1" }), wire.wrq("unsummed"));
      await client.expectOack();
      await client.send(wire.dat(1, new Uint8Array(10)), wire.ack(1));
      assert.match(await client.expectError(4), /expected SUM/);
      await client.expectClosed();
    },
  );
  await t.step(
    "an offset past the end, or with another mtime, is not granted: all of it comes",
    async () => {
      const { mtime } = await Deno.stat(`${ctx.root}/f`);
      const seconds = String(Math.floor(mtime!.getTime() / 1000));
      for (const pairs of [{ offset: "999999", mtime: seconds }, { offset: "10", mtime: "1" }]) {
        await using client = await RawClient.greeted(ctx.port);
        await client.send(wire.opt(pairs), wire.rrq("f"));
        assert.equal((await client.expectOack()).offset, "0");
        await client.send(wire.ack(0));
        assert.deepEqual((await client.receiveBlocks()).data, content);
      }
    },
  );
  // "plain" was complete (ACK 1) before its stray SUM came; the forged and unsummed ones left nothing.
  // the w-* uploads never sent data
  assert.deepEqual(await dirNames(ctx.root), ["f", "mtime-far", "mtime-old", "plain"]);
});
