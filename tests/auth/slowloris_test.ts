/**
 * Slow clients (issue 18, item 3): every byte used to reset the idle timer,
 * so a client dribbling bytes held a connection forever. Each test performs
 * the attack on loopback against `fsd serve` as a subprocess, bounded in
 * count and time, and checks the server cuts the connection and says why.
 */

import assert from "node:assert/strict";
import { hashPassword } from "../../lib/auth/password.ts";
import { FsdClient } from "../../lib/fsd/client.ts";
import { spawnServe } from "../support/cli.ts";
import { tempDir } from "../support/files.ts";
import { RawClient, wire } from "../support/raw_client.ts";

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Sends `bytes` one at a time every `everyMs` until the connection breaks or they run out. */
async function dribble(conn: Deno.Conn, bytes: Uint8Array, everyMs: number): Promise<number> {
  for (let i = 0; i < bytes.length; i++) {
    try {
      await conn.write(bytes.subarray(i, i + 1));
    } catch {
      return i;
    }
    await delay(everyMs);
  }
  return bytes.length;
}

Deno.test("slowloris: 20 clients dribbling a request one byte at a time are cut by --request-timeout", async () => {
  await using dir = await tempDir();
  await Deno.writeTextFile(`${dir.path}/a.txt`, "served\n");
  await using server = await spawnServe(dir.path, 0, [
    "--idle-timeout",
    "3",
    "--max-clients",
    "20",
    "--request-timeout",
    "1",
  ]);
  const request = wire.rrq("x".repeat(40)); // 43 bytes: 13 s at one byte per 300 ms
  const clients = await Promise.all(
    Array.from({ length: 20 }, () => RawClient.greeted(server.port)),
  );
  try {
    const sent = await Promise.all(clients.map(async (client) => {
      const dribbling = dribble(client.conn, request, 300);
      await client.expectClosed(); // within the raw read deadline (10 s), else the test fails
      return await dribbling;
    }));
    for (const n of sent) assert.ok(n < request.length, `a whole request got through: ${n} bytes`);
    await server.waitForLine(
      /^\[\d+\] request timeout: a packet took over 1 s to arrive; closing$/,
    );
    // The slots are free again: a real client is served.
    const client = await FsdClient.connect("127.0.0.1", server.port);
    try {
      assert.deepEqual((await client.list()).map((e) => e.name), ["a.txt"]);
    } finally {
      client.close();
    }
  } finally {
    for (const client of clients) await client[Symbol.asyncDispose]();
  }
});

Deno.test("slowloris: a download ACKed too slowly is cut by --min-rate, and the log says why", async () => {
  await using dir = await tempDir();
  await Deno.writeFile(`${dir.path}/big.bin`, new Uint8Array(512 * 100));
  await using server = await spawnServe(dir.path, 0, [
    "--idle-timeout",
    "3",
    "--request-timeout",
    "1",
    "--min-rate",
    "5000",
  ]);
  await using client = await RawClient.greeted(server.port);
  await client.send(wire.rrq("big.bin"));
  // One block every 400 ms: under the idle timeout, 1,280 bytes/s, under the floor.
  let cut = false;
  for (let i = 0; i < 30 && !cut; i++) {
    const packet = await client.read();
    if (packet === null) cut = true;
    else if (packet.op === "DAT") {
      await delay(400);
      await client.send(wire.ack(packet.block)).catch(() => cut = true);
    } else throw new Error(`unexpected ${JSON.stringify(packet)}`);
  }
  assert.ok(cut, "the slow download was not cut");
  await server.waitForLine(
    /^\[1\] RRQ "big\.bin": too slow: under 5000 bytes\/s for 1 s; closing$/,
  );
});

Deno.test("slowloris: a client that does not log in is cut after --login-grace", async () => {
  await using dir = await tempDir();
  const root = `${dir.path}/root`;
  await Deno.mkdir(root);
  const users = `${dir.path}/users`;
  await Deno.writeTextFile(
    users,
    `alice:${await hashPassword("wonderland", { ln: 10, r: 8, p: 1 })}:rw:alice\n`,
  );
  await using server = await spawnServe(root, 0, [
    "--users",
    users,
    "--idle-timeout",
    "3",
    "--login-grace",
    "1",
  ], ["--allow-net=127.0.0.1", `--allow-read=${root},${users}`, `--allow-write=${root}`]);
  await using client = await RawClient.greeted(server.port);
  // Asks for listings (each refused: not logged in) more often than the idle timeout.
  let closed = false;
  for (let i = 0; i < 20 && !closed; i++) {
    await client.send(wire.drq()).catch(() => closed = true);
    closed ||= (await client.read()) === null;
    await delay(300);
  }
  assert.ok(closed, "the connection outlived the login grace time");
  await server.waitForLine(/^\[1\] login grace time over: not logged in within 1 s; closing$/);
});
