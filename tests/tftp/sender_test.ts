/**
 * TFTP downloads on sender threads (lib/tftp/send_pool.ts): `fsd serve`
 * run as README's install line runs it (--allow-all: --allow-ffi, and the
 * race-free opens whose descriptor a sender reads) hands each download of
 * 1 MiB or more to a thread whose socket waits block; the server's rules
 * hold there as on the event loop. The server is a subprocess, the clients
 * fsd's TFTP client and a raw peer on real sockets.
 */

import assert from "node:assert/strict";
import { MemorySink } from "../../lib/bytes/source_sink.ts";
import { tftpDownload } from "../../lib/tftp/client.ts";
import { SendPool } from "../../lib/tftp/send_pool.ts";
import { CLIENT_RECEIVE_BUFFER, clientWindow } from "../../lib/tftp/options.ts";
import { jsonLines, MAIN, runFsd, type ServeProcess, spawnFsd } from "../support/cli.ts";
import { dirname } from "../../lib/path.ts";
import { randomBytes, tempDir } from "../support/files.ts";
import { RawPeer, sysctl, tftp } from "../support/tftp.ts";

const MIB = 1 << 20;

/** `fsd serve DIR 0 --tftp-only --log json` with README's install line's permissions (or `permissions`). */
function serveInstalled(
  dir: string,
  extra: string[] = [],
  permissions = ["--allow-all"],
): Promise<ServeProcess> {
  return spawnFsd(
    ["serve", dir, "0", "--host", "127.0.0.1", "--tftp-only", "--log", "json", ...extra],
    permissions,
    /"event":"listening","transport":"tftp"/,
  );
}

/** The server's worker threads, by name (Deno names a worker's thread "worker-N"; it reads /proc only with --allow-all). */
async function workerThreads(server: ServeProcess): Promise<string[]> {
  const out = await new Deno.Command("sh", {
    args: ["-c", `cat /proc/${server.child.pid}/task/*/comm`],
    stdout: "piped",
  }).output();
  return new TextDecoder().decode(out.stdout).trim().split("\n").filter((name) =>
    /^worker-/.test(name)
  );
}

/** The server's JSON log events so far with `event` and `name`. */
function events(server: ServeProcess, event: string, name: string) {
  return jsonLines(server.lines.join("\n")).filter((e) => e.event === event && e.name === name);
}

Deno.test("serve --tftp, --allow-all: a download of 1 MiB or more runs on a sender thread, byte for byte, lock-step and windowed; a smaller one on the event loop", async () => {
  await using dir = await tempDir();
  const big = randomBytes(MIB + 70_001, 3);
  const small = randomBytes(MIB - 1, 4);
  await Deno.writeFile(`${dir.path}/big`, big);
  await Deno.writeFile(`${dir.path}/small`, small);
  await using server = await serveInstalled(dir.path);
  // One sender thread starts with the server.
  assert.equal((await workerThreads(server)).length, 1);
  const cases = [
    { blockSize: 65464, windowSize: 1 },
    { blockSize: 512, windowSize: 1 },
    { blockSize: 1428, windowSize: 8 },
    { blockSize: 8192, windowSize: 16, ackEvery: 8 },
  ];
  for (const asked of cases) {
    const sink = new MemorySink();
    const config = { hostname: "127.0.0.1", port: server.port, ...asked };
    assert.equal(await tftpDownload(config, "big", sink), big.length);
    assert.deepEqual(sink.bytes(), big);
  }
  const sink = new MemorySink();
  await tftpDownload({ hostname: "127.0.0.1", port: server.port }, "small", sink);
  assert.deepEqual(sink.bytes(), small);
  await server.waitForLine(/"name":"small"/);
  const sent = events(server, "request", "big");
  assert.equal(sent.length, cases.length);
  for (const [i, e] of sent.entries()) {
    assert.equal(e.outcome, "ok");
    assert.equal(e.bytes, big.length);
    assert.equal(e.thread, "sender", JSON.stringify(e));
    assert.equal(e.blksize, cases[i].blockSize);
    assert.equal(e.windowsize, cases[i].windowSize);
  }
  assert.equal(events(server, "request", "small")[0].thread, undefined);
});

Deno.test("serve --tftp, --allow-all: fsd's installed client slides a window of what its receive buffer holds (16 blocks where rmem_max allows) on a sender thread; RFC 7440 windows, the event loop and Deno's socket keep three", async () => {
  await using dir = await tempDir();
  const big = randomBytes(2 * MIB + 9, 12);
  const small = randomBytes(MIB - 1, 13);
  await Deno.writeFile(`${dir.path}/big`, big);
  await Deno.writeFile(`${dir.path}/small`, small);
  await using server = await serveInstalled(dir.path);
  const url = `tftp://127.0.0.1:${server.port}`;
  // Linux grants a socket at most net.core.rmem_max of receive buffer, and reports it doubled.
  const buffer = 2 * Math.min(CLIENT_RECEIVE_BUFFER, await sysctl("net.core.rmem_max"));
  const window = clientWindow(65464, true, buffer);
  const installed = await runFsd(["--allow-all"], ["get", `${url}/big`, "-"]);
  assert.equal(installed.code, 0, installed.stderr);
  assert.deepEqual(installed.stdoutBytes, big);
  // From source (no --allow-ffi: Deno's socket, whose buffer cannot grow), to the event loop too.
  const fromSource = await runFsd(["--allow-net=127.0.0.1"], ["get", `${url}/big`, "-"]);
  assert.equal(fromSource.code, 0, fromSource.stderr);
  assert.deepEqual(fromSource.stdoutBytes, big);
  const onLoop = await runFsd(["--allow-all"], ["get", `${url}/small`, "-"]);
  assert.equal(onLoop.code, 0, onLoop.stderr);
  assert.deepEqual(onLoop.stdoutBytes, small);
  await server.waitForLine(/"name":"small"/);
  const [first, second] = events(server, "request", "big");
  assert.deepEqual(
    [first.thread, first.windowsize, first.ackevery],
    ["sender", window, Math.floor(window / 2)],
  );
  assert.deepEqual([second.thread, second.windowsize, second.ackevery], ["sender", 3, 1]);
  const [loop] = events(server, "request", "small");
  assert.deepEqual([loop.thread, loop.windowsize], [undefined, 3]);
  // An RFC 7440 window (no ackevery: atftp's, say) on a sender thread: three blocks of 65464.
  await using peer = await RawPeer.open();
  await peer.send(tftp.rrq("big", "octet", "blksize", "65464", "windowsize", "16"), server.port);
  const oack = await peer.receive();
  assert.ok(oack.packet.op === "OACK");
  assert.equal(oack.packet.options.windowsize, "3");
  await peer.send(tftp.error(0, "enough"), oack.port);
});

Deno.test("serve --tftp, --allow-ffi without --allow-all (no race-free opens): no sender thread starts, downloads run on the event loop", async () => {
  await using dir = await tempDir();
  const data = randomBytes(2 * MIB, 8);
  await Deno.writeFile(`${dir.path}/big`, data);
  await using server = await serveInstalled(dir.path, [], [
    "--allow-ffi",
    "--allow-net",
    // fsd's own files too: a sender thread could load, so it is the rule that starts none.
    `--allow-read=${dir.path},${dirname(MAIN)}`,
    `--allow-write=${dir.path}`,
  ]);
  const sink = new MemorySink();
  await tftpDownload({ hostname: "127.0.0.1", port: server.port }, "big", sink);
  assert.deepEqual(sink.bytes(), data);
  await server.waitForLine(/"event":"request"/);
  assert.equal(events(server, "request", "big")[0].thread, undefined);
  assert.deepEqual(await workerThreads(server), []);
});

Deno.test("serve --tftp, --allow-all: on a sender thread a stranger gets ERROR 5 and the download goes on; a client's ERROR ends it; a silent client is given up", async () => {
  await using dir = await tempDir();
  await Deno.writeFile(`${dir.path}/big`, randomBytes(2 * MIB, 5));
  await using server = await serveInstalled(dir.path, ["--tftp-timeout", "0.2"]);
  await using peer = await RawPeer.open();
  await using stranger = await RawPeer.open();

  await peer.send(tftp.rrq("big"), server.port);
  const first = await peer.receive();
  assert.ok(first.packet.op === "DATA" && first.packet.block === 1);
  await stranger.send(tftp.ack(1), first.port);
  assert.match(await stranger.expectError(5), /^Unknown transfer ID$/);
  await peer.send(tftp.ack(1), first.port);
  const second = await peer.receive();
  assert.ok(second.packet.op === "DATA" && second.packet.block === 2);
  await peer.send(tftp.error(0, "enough"), first.port);
  const ended = JSON.parse(await server.waitForLine(/"event":"close".*"reason":"peer-error"/));
  assert.equal(ended.message, "enough");

  // Acknowledges nothing: given up after the timeout and its retries, its port closed.
  await peer.send(tftp.rrq("big"), server.port);
  const again = await peer.receive();
  assert.equal(again.packet.op, "DATA");
  const silent = JSON.parse(await server.waitForLine(/"event":"close".*"reason":"timeout"/));
  assert.match(silent.message, /^timed out: no ACK/);
  assert.equal(events(server, "request", "big").length, 0);
});

Deno.test("serve --tftp, --allow-all: a download on a sender thread hears ERROR 0 when the server stops, and the server exits", async () => {
  await using dir = await tempDir();
  await Deno.writeFile(`${dir.path}/big`, randomBytes(2 * MIB, 6));
  await using server = await serveInstalled(dir.path, ["--shutdown-grace", "0"]);
  await using peer = await RawPeer.open();
  await peer.send(tftp.rrq("big", "octet", "blksize", "1024"), server.port);
  const oack = await peer.receive();
  assert.equal(oack.packet.op, "OACK");
  await peer.send(tftp.ack(0), oack.port);
  assert.equal((await peer.receive()).packet.op, "DATA");
  const status = await server.stop("SIGTERM");
  // DATA 1 again (not acknowledged), perhaps, then the ERROR.
  let got = await peer.receive();
  while (got.packet.op === "DATA") got = await peer.receive();
  assert.deepEqual(got.packet, { op: "ERROR", code: 0, message: "server shutting down" });
  assert.equal(got.port, oack.port);
  assert.equal(status.code, 0);
  assert.ok(server.lines.some((line) => /"reason":"shutdown"/.test(line)), server.lines.join("\n"));
});

Deno.test("serve --tftp, --allow-all: downloads beyond one a core run on the event loop meanwhile, all byte for byte", async () => {
  await using dir = await tempDir();
  const data = randomBytes(MIB + 3, 7);
  await Deno.writeFile(`${dir.path}/big`, data);
  await using server = await serveInstalled(dir.path);
  const cores = navigator.hardwareConcurrency;
  const count = Math.min(cores, 8) + 1;
  const peers = await Promise.all(Array.from({ length: count }, () => RawPeer.open()));
  try {
    // Every download started (its OACK here) before any goes on: each thread is taken.
    const ports: number[] = [];
    for (const peer of peers) {
      await peer.send(tftp.rrq("big", "octet", "blksize", "65464"), server.port);
      const oack = await peer.receive();
      assert.equal(oack.packet.op, "OACK");
      ports.push(oack.port);
    }
    for (const [i, peer] of peers.entries()) {
      const parts: Uint8Array[] = [];
      let block = 0;
      for (;;) {
        await peer.send(tftp.ack(block), ports[i]);
        const got = await peer.receive();
        if (got.packet.op !== "DATA") throw new Error(JSON.stringify(got.packet));
        if (got.packet.block !== block + 1) continue; // a resend of the last one
        block = got.packet.block;
        parts.push(got.packet.data);
        if (got.packet.data.length < 65464) break;
      }
      await peer.send(tftp.ack(block), ports[i]);
      assert.deepEqual(tftp.join(...parts), data);
    }
  } finally {
    for (const peer of peers) peer.close();
  }
  await server.waitForLine(/"event":"request"/, count);
  const sent = events(server, "request", "big");
  assert.equal(sent.filter((e) => e.outcome === "ok").length, count);
  assert.equal(sent.filter((e) => e.thread === "sender").length, count - 1);
});

Deno.test("send pool: threads that cannot start leave every download to the event loop", async () => {
  // A module that fails as it loads, as fsd's own would where it could not be read.
  const pool = SendPool.create("data:application/javascript,throw new Error('no')", "127.0.0.1");
  assert.ok(pool, "offered on Linux with glibc and --allow-ffi");
  try {
    const job = {
      fd: 0,
      peer: { hostname: "127.0.0.1", port: 9 },
      params: { blockSize: 512, windowSize: 1, timeoutMs: 1000 },
      retries: 1,
      firstAnswerMs: 1000,
    };
    const outcome = await pool.offer(job, () => {});
    assert.deepEqual(outcome, { unavailable: true });
    assert.equal(pool.offer(job, () => {}), undefined);
    assert.equal(pool.threads, 0);
  } finally {
    pool.close();
  }
});
