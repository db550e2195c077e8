/**
 * Logins under a flood (issue 18, item 8): password checks wait in a
 * bounded queue (past it: ERR 7 "try later"), a queued check leaves when
 * its connection closes, one login at a time per connection, and at most
 * so many connections may wait to log in at once (OpenSSH's MaxStartups).
 */

import assert from "node:assert/strict";
import { parseAccounts } from "../../lib/auth/accounts.ts";
import { Authenticator } from "../../lib/auth/authenticator.ts";
import { hashPassword } from "../../lib/auth/password.ts";
import { RawClient, wire } from "../support/raw_client.ts";
import { startServer } from "../support/server.ts";

const FAST = { ln: 10, r: 8, p: 1 };

async function authenticator(config = {}) {
  const lines = parseAccounts(`alice:${await hashPassword("wonderland", FAST)}:rw`);
  return await Authenticator.create(lines, { throttle: { freeFailures: 1000 }, ...config });
}

Deno.test("login flood: checks past the queue are refused unchecked as busy", async () => {
  const auth = await authenticator({ maxConcurrentChecks: 1, maxQueuedChecks: 2 });
  // Five at once from five addresses: one runs, two wait, two are refused at once.
  const results = await Promise.all(
    [1, 2, 3, 4, 5].map((n) => auth.login(`127.0.0.${n}`, "alice", "wrong")),
  );
  assert.deepEqual(results.map((r) => r.ok ? "ok" : r.reason), [
    "wrong",
    "wrong",
    "wrong",
    "busy",
    "busy",
  ]);
  // The queue drained: a real login goes through.
  const alice = await auth.login("127.0.0.9", "alice", "wonderland");
  assert.equal(alice.ok, true);
});

Deno.test("login flood: a queued check whose connection closed never runs", async () => {
  const auth = await authenticator({ maxConcurrentChecks: 1, maxQueuedChecks: 4 });
  const gone = new AbortController();
  const first = auth.login("127.0.0.1", "alice", "wrong");
  const queued = auth.login("127.0.0.2", "alice", "wrong", gone.signal);
  gone.abort(new Deno.errors.Interrupted("connection closed"));
  await assert.rejects(queued, Deno.errors.Interrupted);
  assert.equal((await first).ok, false);
});

Deno.test("login flood: logins sent ahead of their answers end the connection after one", async () => {
  await using server = await startServer({ accounts: { authenticator: await authenticator() } });
  await using client = await RawClient.greeted(server.port);
  const guess = (password: string) => wire.opt({ user: "alice", password });
  await client.send(guess("one"), guess("two"), guess("three"));
  const answer = await client.read();
  assert.equal(answer?.op, "ERR");
  assert.equal(answer?.op === "ERR" && answer.code, 4);
  assert.match(answer?.op === "ERR" ? answer.message : "", /one login at a time/);
  assert.equal(await client.read(), null);
});

Deno.test("login flood: past 2 connections waiting to log in, the next is told to try later", async () => {
  await using server = await startServer({
    accounts: { authenticator: await authenticator(), maxUnauthenticated: 2 },
  });
  await using a = await RawClient.greeted(server.port);
  await using b = await RawClient.greeted(server.port);
  await using c = await RawClient.connect(server.port);
  const refusal = await c.read();
  assert.equal(refusal?.op, "ERR");
  assert.match(
    refusal?.op === "ERR" ? refusal.message : "",
    /^try later: too many clients waiting to log in/,
  );
  // Once a logs in, it no longer counts: a new client gets its greeting.
  await a.send(wire.opt({ user: "alice", password: "wonderland" }));
  assert.equal((await a.read())?.op, "OACK");
  await using d = await RawClient.greeted(server.port);
  await d.send(wire.drq());
  assert.equal((await d.read())?.op, "ERR", "d is greeted, and asked to log in");
  void b;
});
