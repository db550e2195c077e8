/** Server-side edges a new user hit: an unwritable DIR, shutdown within its grace, the log's numbers. */

import assert from "node:assert/strict";
import { spawnServe } from "../support/cli.ts";
import { randomBytes, tempDir } from "../support/files.ts";
import { RawClient, wire, withDeadline } from "../support/raw_client.ts";

Deno.test("serve: an unwritable DIR gets a warning at start, unless --read-only", async () => {
  await using dir = await tempDir();
  const readOnlyFlags = ["--allow-net", `--allow-read=${dir.path}`];
  {
    await using server = await spawnServe(dir.path, 0, [], readOnlyFlags);
    assert.match(
      server.lines[0],
      /^warning: .* is not writable: uploads will fail \(serve it with --read-only to refuse them\)$/,
    );
  }
  {
    await using server = await spawnServe(dir.path, 0, ["--read-only"], readOnlyFlags);
    assert.match(server.lines[0], /^File server listening on /);
  }
  {
    await using server = await spawnServe(dir.path);
    assert.match(server.lines[0], /^File server listening on /);
  }
});

Deno.test('serve: --shutdown-grace 2 ends a stalled transfer with ERR 0 "server shutting down" and exits', async () => {
  await using dir = await tempDir();
  await Deno.writeFile(`${dir.path}/big`, randomBytes(100_000));
  await using server = await spawnServe(dir.path, 0, ["--shutdown-grace", "2"]);
  await using stalled = await RawClient.greeted(server.port);
  await stalled.send(wire.rrq("big"));
  assert.equal((await stalled.read())?.op, "DAT"); // and never acknowledged
  server.child.kill("SIGTERM");
  await server.waitForLine(/^shutting down: waiting up to 2\.000 s for 1 connection\(s\)$/);
  assert.equal(await stalled.expectError(0), "server shutting down");
  await stalled.expectClosed();
  const status = await withDeadline(server.exited(), "exit after the grace period");
  assert.equal(status.code, 0);
});

Deno.test("serve: the shutdown line without transfers, and JSON durations to 0.1 ms", async () => {
  await using dir = await tempDir();
  await Deno.writeFile(`${dir.path}/f`, randomBytes(5000));
  {
    await using server = await spawnServe(dir.path);
    server.child.kill("SIGTERM");
    assert.equal((await server.exited()).code, 0);
    assert.ok(server.lines.includes("shutting down: no transfer in progress, stopping now"));
    assert.ok(!server.lines.some((l) => /for 0 connection/.test(l)));
  }
  await using server = await spawnServe(dir.path, 0, ["--log", "json"]);
  {
    await using client = await RawClient.greeted(server.port);
    await client.download("f");
  }
  const request = JSON.parse(await server.waitForLine(/"event":"request"/));
  assert.equal(typeof request.ms, "number");
  assert.equal(Math.round(request.ms * 10) / 10, request.ms, `ms ${request.ms}`);
  const close = JSON.parse(await server.waitForLine(/"event":"close"/));
  assert.equal(close.reason, "client");
});
