/**
 * Slow clients (issue 18, item 3): a byte now and then resets the idle
 * timer, so each packet has a deadline of its own (as nginx's
 * client_header_timeout), and a client that must log in has a grace time
 * (OpenSSH's LoginGraceTime). The log says why a connection was cut.
 */

import assert from "node:assert/strict";
import { parseAccounts } from "../lib/auth/accounts.ts";
import { Authenticator } from "../lib/auth/authenticator.ts";
import { hashPassword } from "../lib/auth/password.ts";
import { RawClient, startServer, wire, withDeadline } from "./helpers.ts";

Deno.test("slowloris: a request dripped one byte at a time is cut after the idle timeout", async () => {
  await using server = await startServer({ idleTimeoutMs: 1000 });
  await using client = await RawClient.greeted(server.port);
  const request = wire.rrq("a-name-long-enough-to-drip-for-a-while.txt");
  const cut = server.waitForLog(/too slow: a packet took over 1 s to arrive; closing$/);
  // Each byte comes well within the idle timeout; the whole packet never does.
  const dripping = (async () => {
    for (const byte of request) {
      try {
        await client.conn.write(new Uint8Array([byte]));
      } catch {
        return "cut";
      }
      const stop = await Promise.race([
        cut.then(() => true),
        new Promise<false>((resolve) => setTimeout(() => resolve(false), 300)),
      ]);
      if (stop) return "cut";
    }
    return "sent whole";
  })();
  await withDeadline(cut, "the cut logged", 8000);
  assert.equal(await dripping, "cut");
  assert.equal(await client.read(), null, "the server closed the connection");
});

Deno.test("slowloris: a client busy with refused requests but never logging in is cut after the login grace", async () => {
  const lines = parseAccounts(
    `alice:${await hashPassword("wonderland", { ln: 10, r: 8, p: 1 })}:rw`,
  );
  await using server = await startServer({
    accounts: { authenticator: await Authenticator.create(lines), loginGraceMs: 500 },
  });
  await using client = await RawClient.greeted(server.port);
  const cut = server.waitForLog(/no login within 0\.5 s; closing$/);
  let refused = 0;
  const asking = (async () => {
    // Never idle: a request every 100 ms, each refused with ERR 7.
    for (let i = 0; i < 100; i++) {
      await client.send(wire.drq());
      const answer = await client.read();
      if (answer === null) return;
      assert.equal(answer.op, "ERR");
      refused++;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  })();
  await withDeadline(cut, "the cut logged", 8000);
  await withDeadline(asking, "the client sees the close", 8000).catch(() => {});
  assert.ok(refused > 0 && refused < 100, `refused ${refused} requests before the cut`);
});

Deno.test("slowloris: a client that logs in in time is not cut by the grace", async () => {
  const lines = parseAccounts(
    `alice:${await hashPassword("wonderland", { ln: 10, r: 8, p: 1 })}:rw`,
  );
  await using server = await startServer({
    accounts: { authenticator: await Authenticator.create(lines), loginGraceMs: 800 },
  });
  await Deno.writeTextFile(`${server.root}/f.txt`, "ok");
  await using client = await RawClient.greeted(server.port);
  await client.send(wire.opt({ user: "alice", password: "wonderland" }));
  const oack = await client.read();
  assert.equal(oack?.op, "OACK");
  // Past the grace (a time, not an event, is what is tested), the logged-in client is still served.
  await new Promise((resolve) => setTimeout(resolve, 1000));
  await client.send(wire.drq());
  const listing = await client.read();
  assert.equal(listing?.op, "DAT");
});
