/**
 * The TLS port under descriptor exhaustion and stalled handshakes (issue 18,
 * item 4): after the server runs out of descriptors it serves TLS clients
 * again once they are freed, and a handshake in progress holds a slot of
 * `--max-clients` from accept. Against `fsd serve --tls-cert --tls-key` as a
 * subprocess, on loopback; the descriptor limit is lowered with prlimit(1)
 * on the running server.
 */

import assert from "node:assert/strict";
import { runFsd, spawnFsd, spawnServe } from "../support/cli.ts";
import { tempDir } from "../support/files.ts";
import { withDeadline } from "../support/raw_client.ts";
import { makeCertificates, type TestCertificates } from "../support/tls_certs.ts";
import { assertTools, needs } from "../support/tools.ts";

const REPO = new URL("../..", import.meta.url).pathname;

/** `fsd serve --tls-cert --tls-key` (with `workers`: `--workers N`, and its documented permissions). */
async function serveTls(dir: string, extra: string[] = [], workers = 1) {
  const root = `${dir}/root`;
  await Deno.mkdir(root);
  await Deno.writeTextFile(`${root}/hello.txt`, "hello\n");
  const certs = await makeCertificates(dir);
  const tls = ["--tls-cert", certs.cert, "--tls-key", certs.key, ...extra];
  const read = `--allow-read=${root},${certs.cert},${certs.key}`;
  const permissions = ["--allow-net=127.0.0.1", read, `--allow-write=${root}`];
  const server = workers === 1 ? await spawnServe(root, 0, tls, permissions) : await spawnFsd(
    ["serve", root, "0", "--host", "127.0.0.1", "--workers", String(workers), ...tls],
    ["--unstable-net", ...permissions.with(1, `${read},${REPO}`)],
    /^File server listening on .* port \d+, \d+ workers$/,
  );
  return { server, certs };
}

/** `fsd ls 127.0.0.1 PORT --ca CA`: what a person runs against the TLS port. */
function lsOverTls(port: number, certs: TestCertificates) {
  return runFsd(
    [`--allow-net=127.0.0.1:${port}`, `--allow-read=${certs.ca}`],
    ["ls", "127.0.0.1", String(port), "--ca", certs.ca],
  );
}

/** Lowers the descriptor limit of process `pid` to what it holds now plus `room` (prlimit). */
async function limitDescriptors(pid: number, room: number): Promise<void> {
  // (Deno reads /proc/PID/fd only with --allow-all: ls(1) counts them.)
  const ls = await new Deno.Command("ls", { args: [`/proc/${pid}/fd`] }).output();
  const open = new TextDecoder().decode(ls.stdout).split("\n").filter(Boolean).length;
  assert.ok(open > 0);
  const limit = String(open + room);
  const prlimit = await new Deno.Command("prlimit", {
    args: ["--pid", String(pid), `--nofile=${limit}:${limit}`],
  }).output();
  assert.ok(prlimit.success, new TextDecoder().decode(prlimit.stderr));
}

/** Opens `count` TCP connections that send half a TLS record header and then nothing. */
async function stall(port: number, count: number): Promise<Deno.Conn[]> {
  const conns: Deno.Conn[] = [];
  for (let i = 0; i < count; i++) {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    conns.push(conn);
    await conn.write(new Uint8Array([0x16, 0x03, 0x01])).catch(() => 0);
  }
  return conns;
}

for (const workers of [1, 2]) {
  Deno.test({
    name:
      `tls exhaust: after running out of descriptors the TLS port accepts again (--workers ${workers})`,
    ...needs("openssl", "prlimit"),
    fn: () => exhaustAndRecover(workers),
  });
}

async function exhaustAndRecover(workers: number) {
  assertTools("openssl", "prlimit");
  await using dir = await tempDir();
  const { server, certs } = await serveTls(dir.path, [], workers);
  await using _ = server;
  await limitDescriptors(server.child.pid, 12);
  const conns = await stall(server.port, 40);
  try {
    await withDeadline(
      server.waitForLine(/^accept failed: out of descriptors/),
      "the server running out of descriptors",
      15_000,
    );
  } finally {
    for (const conn of conns) conn.close();
  }
  await withDeadline(
    server.waitForLine(/^accept failed: the TLS port stopped accepting .*; listening again$/),
    "the TLS port listening again",
    15_000,
  );
  // With workers, each stuck listener of the port listens again on its own, each at its own
  // time (what was queued on it then is reset): clients may fail until the last one has. Then
  // every listener serves: the kernel spreads new connections over them, so a run of
  // 4 x workers clients in a row reaches each (a listener still stuck would fail the run).
  const settled = Date.now() + 30_000;
  for (let streak = 0, tries = 0; streak < 4 * workers; tries++) {
    const served = await lsOverTls(server.port, certs);
    if (served.code === 0) {
      assert.match(served.stdout, /hello\.txt/);
      streak++;
      continue;
    }
    assert.ok(
      workers > 1 && Date.now() < settled && tries < 60,
      `${served.stderr}${server.lines.join("\n")}`,
    );
    streak = 0;
  }
}

/**
 * `stalls` handshakes left stalled against a server started with `flags`:
 * the next client is refused (`refusal` on its stderr, `logged` in the log),
 * and served once the handshake deadline has dropped the stalls.
 */
async function stalledHandshakesHoldSlots(
  flags: string[],
  stalls: number,
  refusal: RegExp,
  logged: RegExp,
): Promise<void> {
  await using dir = await tempDir();
  const { server, certs } = await serveTls(dir.path, flags);
  await using _ = server;
  const conns = await stall(server.port, stalls);
  try {
    // The refusal comes over TLS: fsd ls finished its handshake and reads ERR 0.
    const refused = await lsOverTls(server.port, certs);
    assert.equal(refused.code, 1, refused.stderr);
    assert.match(refused.stderr, refusal);
    await server.waitForLine(logged);
    // The handshake deadline (10 s) drops the stalls; their slots are given back.
    await withDeadline(
      server.waitForLine(/TLS handshake failed: TLS handshake timeout; closing$/, stalls),
      "the stalled handshakes dropped",
      20_000,
    );
    const served = await lsOverTls(server.port, certs);
    assert.equal(served.code, 0, served.stderr);
    assert.match(served.stdout, /hello\.txt/);
  } finally {
    for (const conn of conns) conn.close();
  }
}

Deno.test({
  name:
    "tls exhaust: stalled handshakes hold --max-clients slots; a client past them is told the limit, then served once they are dropped",
  ...needs("openssl"),
  fn: async () => {
    assertTools("openssl");
    await stalledHandshakesHoldSlots(
      ["--max-clients", "4"],
      4,
      /server busy: serving 4 connections, its limit/,
      /rejected with error 0: server busy: serving 4 connections/,
    );
  },
});

Deno.test({
  name:
    "tls exhaust: stalled handshakes hold --max-per-ip slots; a client past them gets its handshake, then ERR 0 with the limit",
  ...needs("openssl"),
  fn: async () => {
    assertTools("openssl");
    // --max-clients above the stalls: the per-address limit is the one met.
    await stalledHandshakesHoldSlots(
      ["--max-per-ip", "2", "--max-clients", "10"],
      2,
      /server error 0: too many connections from 127\.0\.0\.1: at most 2/,
      /rejected with error 0: too many connections from 127\.0\.0\.1/,
    );
  },
});

Deno.test({
  name:
    "tls exhaust: the plain port, out of descriptors, says so once, pauses, and serves again once they are freed",
  ...needs("prlimit"),
  fn: async () => {
    assertTools("prlimit");
    await using dir = await tempDir();
    await Deno.writeTextFile(`${dir.path}/hello.txt`, "hello\n");
    await using server = await spawnServe(dir.path, 0, ["--idle-timeout", "60"]);
    await limitDescriptors(server.child.pid, 12);
    const conns = await stall(server.port, 40);
    try {
      await withDeadline(
        server.waitForLine(/^accept failed: .*(Too many open files|os error 24)/),
        "the server running out of descriptors",
        15_000,
      );
    } finally {
      for (const conn of conns) conn.close();
    }
    const ls = await runFsd([`--allow-net=127.0.0.1:${server.port}`], [
      "ls",
      "127.0.0.1",
      String(server.port),
    ]);
    assert.equal(ls.code, 0, ls.stderr);
    assert.match(ls.stdout, /hello\.txt/);
    // Said once for the whole run of failed accepts, not every 500 ms.
    const said = server.lines.filter((line) => line.startsWith("accept failed: "));
    assert.equal(said.length, 1, said.join("\n"));
  },
});
