/**
 * Logins on fsd serve (docs/PROTOCOL.md, "Login"), in process with a client
 * built from the protocol text: login required, the same ERR 7 for a wrong
 * name as for a wrong password, per-account roots and rights, anonymous
 * reads, the log, bad input, and 10,000 failed logins from one address
 * while an account logs in from another.
 */

import assert from "node:assert/strict";
import net from "node:net";
import { parseAccounts } from "../../lib/auth/accounts.ts";
import { Authenticator, type AuthenticatorConfig } from "../../lib/auth/authenticator.ts";
import { hashPassword } from "../../lib/auth/password.ts";
import type { AccountsConfig } from "../../lib/fsd/server.ts";
import { NodeSocketConn } from "../../lib/net/node_socket_conn.ts";
import { parseTrusted } from "../../lib/net/proxied.ts";
import { text } from "../support/files.ts";
import { RawClient, wire } from "../support/raw_client.ts";
import { startServer } from "../support/server.ts";

const FAST = { ln: 10, r: 8, p: 1 };
const LOGIN_FAILED = "login failed: unknown user or wrong password";

async function accounts(
  extra: Partial<AccountsConfig> = {},
  config: AuthenticatorConfig = { throttle: { freeFailures: 1000 } },
): Promise<AccountsConfig> {
  const lines = parseAccounts(
    [
      `alice:${await hashPassword("wonderland", FAST)}:rw:alice`,
      `bob:${await hashPassword("builder", FAST)}:ro`,
      `ghost:${await hashPassword("boo", FAST)}:rw:missing`,
    ].join("\n"),
  );
  return { authenticator: await Authenticator.create(lines, config), ...extra };
}

/** A server with accounts over a directory with top.txt and alice/a.txt. */
async function serverWithAccounts(
  extra: Partial<AccountsConfig> = {},
  config?: AuthenticatorConfig,
) {
  const server = await startServer({ accounts: await accounts(extra, config) });
  await Deno.writeTextFile(`${server.root}/top.txt`, "top");
  await Deno.mkdir(`${server.root}/alice`);
  await Deno.writeTextFile(`${server.root}/alice/a.txt`, "alice's");
  return server;
}

const login = (user: string | Uint8Array, password: string | Uint8Array) =>
  wire.opt({ user: user as string, password: password as string });

Deno.test("login: a plain fsd/1 client gets ERR 7 'login required' for every request", async () => {
  await using server = await serverWithAccounts();
  await using client = await RawClient.greeted(server.port);
  for (const request of [wire.rrq("top.txt"), wire.drq(), wire.wrq("new.txt"), wire.rrq("")]) {
    await client.send(request);
    assert.equal(await client.expectError(7), "login required");
  }
  // With options, the same refusal in place of the OACK.
  await client.send(wire.opt({ blksize: "1024" }), wire.rrq("top.txt"));
  assert.equal(await client.expectError(7), "login required");
  assert.deepEqual([...Deno.readDirSync(server.root)].map((e) => e.name).sort(), [
    "alice",
    "top.txt",
  ]);
});

Deno.test("login: the right pair gets OACK user; the account's home is its root", async () => {
  await using server = await serverWithAccounts();
  await using client = await RawClient.greeted(server.port);
  await client.send(login("alice", "wonderland"));
  assert.deepEqual(await client.expectOack(), { user: "alice" });
  assert.equal(text.decode((await client.download("a.txt")).data), "alice's");
  await client.send(wire.rrq("top.txt"));
  assert.equal(await client.expectError(1), "file not found: top.txt");
  await client.send(wire.rrq("../top.txt"));
  await client.expectError(2);
  await client.upload("up.txt", text.encode("up"));
  assert.equal(await Deno.readTextFile(`${server.root}/alice/up.txt`), "up");
  const requests = await server.waitForLog(/RRQ "a\.txt" by "alice": sent file/);
  assert.match(requests, /^\[\d+\] RRQ "a.txt" by "alice": sent file, 7 bytes/);
  await server.waitForLog(/WRQ "up\.txt" by "alice": received file/);
  assert.ok(server.logs.some((l) => /login as "alice": accepted/.test(l)));
  assert.ok(!server.logs.some((l) => l.includes("wonderland")), "no password in the log");
});

Deno.test("login: a wrong name and a wrong password get the same ERR 7; retrying works", async () => {
  await using server = await serverWithAccounts();
  await using client = await RawClient.greeted(server.port);
  for (
    const [user, password] of [
      ["alice", "builder"],
      ["mallory", "wonderland"],
      ["", ""],
      ["Alice", "wonderland"],
      ["a".repeat(1000), "x"],
      ["alice", "w".repeat(1024)],
    ]
  ) {
    await client.send(login(user, password));
    assert.equal(await client.expectError(7), LOGIN_FAILED, `${user.slice(0, 10)}`);
  }
  await client.send(login("bob", "builder"));
  assert.deepEqual(await client.expectOack(), { user: "bob" });
  await client.send(wire.wrq("x.txt"));
  assert.equal(await client.expectError(2), "access denied: account bob is read-only");
  assert.equal(text.decode((await client.download("top.txt")).data), "top");
  await server.waitForLog(/RRQ "top\.txt" by "bob"/);
});

Deno.test("login: --anonymous read serves downloads and listings, not uploads", async () => {
  await using server = await serverWithAccounts({ anonymousRead: true });
  await using client = await RawClient.greeted(server.port);
  assert.equal(text.decode((await client.download("top.txt")).data), "top");
  await client.send(wire.wrq("new.txt"));
  assert.equal(await client.expectError(7), "login required");
  await server.waitForLog(/RRQ "top\.txt" by "anonymous": sent file/);
});

Deno.test("login: bad input gets a clear error or close, and the server goes on", async () => {
  await using server = await serverWithAccounts();
  const cases: {
    name: string;
    before?: Uint8Array[];
    send: Uint8Array;
    code: number;
    closes: boolean;
  }[] = [
    {
      name: "invalid UTF-8 name",
      send: login(new Uint8Array([0x61, 0xff, 0xfe]), "x"),
      code: 7,
      closes: false,
    },
    {
      name: "invalid UTF-8 password",
      send: login("alice", new Uint8Array([0xc3, 0x28])),
      code: 7,
      closes: false,
    },
    {
      name: "a name over the string limit",
      send: login("a".repeat(2000), "x"),
      code: 4,
      closes: true,
    },
    {
      name: "a password over the string limit",
      send: login("alice", "p".repeat(2000)),
      code: 4,
      closes: true,
    },
    {
      name: "a NUL inside the name",
      send: wire.concat([0, 7, 0, 2], text.encode("user\0al\0ice\0password\0wonderland\0")),
      code: 8,
      closes: true,
    },
    { name: "user without password", send: wire.opt({ user: "alice" }), code: 8, closes: true },
    {
      name: "a login with block size",
      send: wire.opt({ user: "alice", password: "wonderland", blksize: "512" }),
      code: 8,
      closes: true,
    },
    {
      name: "a login after a request",
      before: [wire.rrq("top.txt")],
      send: login("alice", "wonderland"),
      code: 4,
      closes: true,
    },
    {
      name: "two logins",
      before: [login("alice", "wonderland")],
      send: login("alice", "wonderland"),
      code: 4,
      closes: true,
    },
  ];
  for (const c of cases) {
    await using client = await RawClient.greeted(server.port);
    for (const packet of c.before ?? []) {
      await client.send(packet);
      await client.read(); // its answer (ERR 7 or OACK)
    }
    await client.send(c.send);
    const message = await client.expectError(c.code).catch((e) => {
      throw new Error(`${c.name}: ${e.message}`);
    });
    if (c.closes) await client.expectClosed();
    else {
      await client.send(login("alice", "wonderland"));
      assert.deepEqual(await client.expectOack(), { user: "alice" }, c.name);
    }
    assert.ok(message.length > 0, c.name);
  }
  // Before the greeting's ACK, a login is a wrong answer to the greeting.
  await using early = await RawClient.connect(server.port);
  await early.send(login("alice", "wonderland"));
  assert.equal((await early.read())?.op, "DAT");
  await early.expectError(4);
  await early.expectClosed();
  // An account whose home is missing cannot log in; nothing is created.
  await using ghost = await RawClient.greeted(server.port);
  await ghost.send(login("ghost", "boo"));
  assert.equal(await ghost.expectError(1), "home directory not found: missing");
  await assert.rejects(Deno.stat(`${server.root}/missing`));
  // And the legitimate user is still served.
  await using alice = await RawClient.greeted(server.port);
  await alice.send(login("alice", "wonderland"));
  await alice.expectOack();
});

Deno.test("login: a server without accounts refuses a login OPT with ERR 8", async () => {
  await using server = await startServer();
  await using client = await RawClient.greeted(server.port);
  await client.send(login("alice", "wonderland"));
  assert.match(await client.expectError(8), /this server has no accounts/);
  await client.expectClosed();
});

Deno.test("login: without TLS, logins from beyond loopback are refused (seen through a PROXY header)", async () => {
  await using server = await startServer({
    accounts: await accounts(),
    proxyProtocol: { trusted: parseTrusted(["127.0.0.1"]) },
  });
  await Deno.mkdir(`${server.root}/alice`);
  for (const [source, refused] of [["10.1.2.3", true], ["127.0.0.9", false]] as const) {
    await using client = await RawClient.connect(server.port);
    await client.send(text.encode(`PROXY TCP4 ${source} 127.0.0.1 40000 ${server.port}\r\n`));
    await client.answerGreeting();
    await client.send(login("alice", "wonderland"));
    if (refused) {
      assert.equal(
        await client.expectError(7),
        "login refused: this server takes logins without TLS only from loopback",
      );
    } else {
      assert.deepEqual(await client.expectOack(), { user: "alice" });
    }
  }
});

/** A raw client whose connection comes from `localAddress` (a loopback address other than 127.0.0.1). */
async function rawFrom(localAddress: string, port: number): Promise<RawClient> {
  const socket = net.connect({ host: "127.0.0.1", port, localAddress });
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", () => resolve());
    socket.once("error", reject);
  });
  const conn = new NodeSocketConn(socket, { hostname: "127.0.0.1", port });
  const client = RawClient.over(conn as unknown as Deno.Conn);
  await client.answerGreeting();
  return client;
}

Deno.test("login: 10,000 failed logins from 127.0.0.2 while alice logs in from 127.0.0.1", async () => {
  await using server = await serverWithAccounts({}, {
    throttle: { baseDelayMs: 5, maxDelayMs: 40, pauseMs: 600_000 },
  });
  const ATTEMPTS = 10_000;
  const CONNECTIONS = 8;
  const answers = new Map<string, number>();
  const attacker = async (worker: number) => {
    const client = await rawFrom("127.0.0.2", server.port);
    try {
      for (let i = worker; i < ATTEMPTS; i += CONNECTIONS) {
        await client.send(login(i % 2 ? "alice" : `user${i}`, `guess${i}`));
        const message = await client.expectError(7);
        const kind = message.replace(/try again in \d+ s/, "try again in N s");
        answers.set(kind, (answers.get(kind) ?? 0) + 1);
      }
    } finally {
      client.close();
    }
  };
  const attacking = Promise.all(Array.from({ length: CONNECTIONS }, (_, w) => attacker(w)));
  // Meanwhile, from 127.0.0.1: logged in at the first try, and served.
  await using alice = await RawClient.greeted(server.port);
  await alice.send(login("alice", "wonderland"));
  assert.deepEqual(await alice.expectOack(), { user: "alice" });
  assert.equal(text.decode((await alice.download("a.txt")).data), "alice's");
  await attacking;
  const total = [...answers.values()].reduce((a, b) => a + b, 0);
  assert.equal(total, ATTEMPTS);
  // At most pauseAfter (10) guesses were checked; every other one was refused unchecked.
  assert.ok((answers.get(LOGIN_FAILED) ?? 0) <= 10, JSON.stringify([...answers]));
  assert.equal(
    answers.get("login failed: too many failed logins from 127.0.0.2; try again in N s"),
    ATTEMPTS - (answers.get(LOGIN_FAILED) ?? 0),
  );
  // The right password from the paused address is refused too: guessing has stopped.
  const late = await rawFrom("127.0.0.2", server.port);
  await late.send(login("alice", "wonderland"));
  assert.match(await late.expectError(7), /too many failed logins/);
  late.close();
});
