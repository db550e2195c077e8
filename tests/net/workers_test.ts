/**
 * `fsd serve DIR PORT --workers N`: N workers on one port and one
 * directory; the limits are the whole server's; a worker that dies is
 * replaced; shutdown is graceful across all of them.
 */

import assert from "node:assert/strict";
import { hashPassword } from "../../lib/auth/password.ts";
import { FsdClient } from "../../lib/fsd/client.ts";
import { assertTools, needs } from "../support/tools.ts";
import { makeCertificates } from "../support/tls_certs.ts";
import { runFsd, type ServeProcess, spawnFsd } from "../support/cli.ts";
import { randomBytes, tempDir } from "../support/files.ts";
import { RawClient, startUpload, wire, withDeadline } from "../support/raw_client.ts";

const REPO = new URL("../..", import.meta.url).pathname;

/** The documented permissions of `serve --workers`: the usual ones, --unstable-net, and fsd's code. */
function permissions(dir: string): string[] {
  return [
    "--unstable-net",
    "--allow-net=127.0.0.1",
    `--allow-read=${dir},${REPO}`,
    `--allow-write=${dir}`,
  ];
}

function serveWorkers(dir: string, workers: number, extra: string[] = []): Promise<ServeProcess> {
  return spawnFsd(
    ["serve", dir, "0", "--host", "127.0.0.1", "--workers", String(workers), ...extra],
    permissions(dir),
    /^File server listening on .* port \d+, \d+ workers$/,
  );
}

Deno.test("workers: 2 workers share the port and the directory, both serve", async () => {
  await using dir = await tempDir();
  const content = randomBytes(70_000, 3);
  await Deno.writeFile(`${dir.path}/a.bin`, content);
  await using server = await serveWorkers(dir.path, 2);
  assert.deepEqual(server.lines.filter((l) => /^worker \d started$/.test(l)).sort(), [
    "worker 1 started",
    "worker 2 started",
  ]);
  // Uploads through whichever worker the kernel picks, then downloads of all of them.
  for (let i = 0; i < 6; i++) {
    await using client = await RawClient.greeted(server.port);
    await client.upload(`up-${i}`, content.subarray(i));
  }
  const ids = new Set<number>();
  for (let i = 0; i < 40; i++) {
    await using client = await RawClient.greeted(server.port);
    const { data } = await client.download(`up-${i % 6}`);
    assert.deepEqual(data, content.subarray(i % 6));
  }
  for (const line of server.lines) {
    const id = /^\[(\d+)\] connection from/.exec(line);
    if (id) ids.add(Number(id[1]));
  }
  // Worker k logs ids k, k + 2, ...: odd and even ids mean both workers served.
  assert.equal(ids.size, 46, "connection ids are unique across workers");
  assert.ok([...ids].some((id) => id % 2 === 1) && [...ids].some((id) => id % 2 === 0));
});

Deno.test("workers: --max-clients and --max-per-ip count for the whole server", async () => {
  await using dir = await tempDir();
  await using server = await serveWorkers(dir.path, 2, ["--max-clients", "3"]);
  const held = await Promise.all([1, 2, 3].map(() => RawClient.greeted(server.port)));
  try {
    // Whichever worker takes them, the fourth to eighth are over the server's limit.
    for (let i = 0; i < 5; i++) {
      await using extra = await RawClient.connect(server.port);
      assert.match(await extra.expectError(0), /server busy: serving 3 connections, its limit/);
    }
    held.pop()!.close();
    // Its release reaches the coordinator: a new connection is let in again.
    await withDeadline(waitForLine(server, /^\[\d+\] closed by the client$/), "close logged");
    (await admittedSoon(server.port)).close();
  } finally {
    for (const client of held) client.close();
  }

  await using perIp = await serveWorkers(dir.path, 3, ["--max-per-ip", "2"]);
  const two = await Promise.all([1, 2].map(() => RawClient.greeted(perIp.port)));
  try {
    for (let i = 0; i < 4; i++) {
      await using extra = await RawClient.connect(perIp.port);
      assert.match(await extra.expectError(0), /too many connections from 127\.0\.0\.1: at most 2/);
    }
  } finally {
    for (const client of two) client.close();
  }
});

function waitForLine(server: ServeProcess, pattern: RegExp): Promise<string> {
  return server.waitForLine(pattern);
}

/** A connection that gets the greeting; a release may still be on its way to the coordinator. */
async function admittedSoon(port: number): Promise<RawClient> {
  for (let attempt = 0;; attempt++) {
    const client = await RawClient.connect(port);
    const packet = await client.read();
    if (packet?.op === "DAT") {
      await client.send(wire.ack(1));
      return client;
    }
    client.close();
    if (attempt === 20) throw new Error(`still refused: ${JSON.stringify(packet)}`);
    await new Promise((resolve) => setTimeout(resolve, 50)); // the release message is in flight
  }
}

Deno.test("workers: SIGTERM lets an upload in progress on any worker finish, then all stop", async () => {
  await using dir = await tempDir();
  const server = await serveWorkers(dir.path, 2);
  const data = randomBytes(20_000, 9);
  const upload = await startUpload(server.port, "late.bin", data, 1);
  server.child.kill("SIGTERM");
  await server.waitForLine(/^shutting down: waiting up to 10\.000 s for 1 connection/);
  await upload.finish();
  const status = await server.exited();
  assert.equal(status.code, 0);
  assert.deepEqual(await Deno.readFile(`${dir.path}/late.bin`), data);
  const shutdowns = server.lines.filter((line) => line.startsWith("shutting down"));
  assert.equal(shutdowns.length, 1, "one shutdown line for the whole server, not one per worker");
});

Deno.test("workers: a worker that dies is replaced, and its connections are given back", async () => {
  await using dir = await tempDir();
  await Deno.writeTextFile(`${dir.path}/a.txt`, "hello");
  const fixture = new URL("../support/fixtures/crashing_pool.ts", import.meta.url).pathname;
  await using pool = await spawnFsd(
    [dir.path],
    permissions(dir.path),
    /^File server listening on .* port \d+$/,
    fixture,
  );
  // Connect until worker 1 takes a connection: it then dies of an uncaught error.
  const died = pool.waitForLine(
    /^worker 1 died: .*worker crashed on purpose; starting a replacement$/,
  );
  let crashed = false;
  died.then(() => crashed = true, () => {});
  for (let i = 0; i < 200 && !crashed; i++) {
    const client = await RawClient.connect(pool.port);
    await client.read().catch(() => null);
    client.close();
  }
  await withDeadline(died, "worker 1 death");
  const starts = () => pool.lines.filter((l) => l === "worker 1 started").length;
  await withDeadline(
    (async () => {
      // waitForLine finds the first start again: poll the lines for the second.
      while (starts() < 2) await new Promise((resolve) => setTimeout(resolve, 20));
    })(),
    "replacement",
  );
  // Both workers serve again, and the dead one's connection no longer counts.
  for (let i = 0; i < 20; i++) {
    await using client = await admittedSoon(pool.port);
    const { data } = await client.download("a.txt");
    assert.equal(new TextDecoder().decode(data), "hello");
  }
});

Deno.test("workers: the command line", async () => {
  await using dir = await tempDir();
  const bad = await runFsd(permissions(dir.path), ["serve", dir.path, "0", "--workers", "0"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--workers/);
  // deno.json turns --unstable-net on; without the config (an installed or bundled fsd run bare) it is off.
  const noUnstable = await runFsd(["--no-config", ...permissions(dir.path).slice(1)], [
    "serve",
    dir.path,
    "0",
    "--workers",
    "2",
  ]);
  assert.equal(noUnstable.code, 1);
  assert.match(noUnstable.stderr, /--workers needs the --unstable-net flag/);
  const noCode = await runFsd(
    [
      "--unstable-net",
      "--allow-net=127.0.0.1",
      `--allow-read=${dir.path}`,
      `--allow-write=${dir.path}`,
    ],
    ["serve", dir.path, "0", "--workers", "2"],
  );
  assert.equal(noCode.code, 1);
  assert.match(noCode.stderr, /--workers needs read access to fsd's own files: --allow-read=/);
});

Deno.test({
  name: "workers: 2 workers over TLS with --users: both serve, and the parent checks every login",
  ...needs("openssl"),
  fn: async () => {
    assertTools("openssl");
    await using dir = await tempDir();
    const certs = await makeCertificates(dir.path);
    const root = `${dir.path}/root`;
    await Deno.mkdir(root);
    await Deno.writeTextFile(`${root}/hello.txt`, "hello\n");
    const users = `${dir.path}/users`;
    const hash = await hashPassword("wonderland", { ln: 10, r: 8, p: 1 });
    await Deno.writeTextFile(users, `alice:${hash}:rw\n`);
    const tlsFlags = ["--tls-cert", certs.cert, "--tls-key", certs.key, "--users", users];
    await using server = await spawnFsd(
      ["serve", root, "0", "--host", "127.0.0.1", "--workers", "2", ...tlsFlags],
      [
        "--unstable-net",
        "--allow-net=127.0.0.1",
        `--allow-read=${dir.path},${REPO}`,
        `--allow-write=${root}`,
      ],
      /^File server listening on .* port \d+, 2 workers$/,
    );
    const tls = { caCerts: [await Deno.readTextFile(certs.ca)] };
    for (let i = 0; i < 16; i++) {
      const client = await FsdClient.connect("127.0.0.1", server.port, { tls, timeoutMs: 10_000 });
      try {
        if (i % 4 === 3) {
          await assert.rejects(client.login("alice", "queen of hearts"), /login failed/);
        }
        await client.login("alice", "wonderland");
        const names = (await client.list()).map((entry) => entry.name);
        assert.deepEqual(names, ["hello.txt"]);
      } finally {
        client.close();
      }
    }
    const ids = server.lines.map((line) => /^\[(\d+)\] connection from/.exec(line)?.[1])
      .filter((id) => id !== undefined).map(Number);
    assert.equal(ids.length, 16, server.lines.join("\n"));
    assert.ok(ids.some((id) => id % 2 === 1) && ids.some((id) => id % 2 === 0), "both workers");
  },
});
