/** lib/auth/: password hashes, the accounts file, the login throttle and the authenticator. */

import assert from "node:assert/strict";
import {
  checkHome,
  formatAccounts,
  parseAccounts,
  readAccountsFile,
  writeAccountsFile,
} from "../../lib/auth/accounts.ts";
import { Authenticator } from "../../lib/auth/authenticator.ts";
import { hashPassword, parseHash, verifyPassword } from "../../lib/auth/password.ts";
import { LoginThrottle } from "../../lib/auth/throttle.ts";
import { tempDir } from "../support/files.ts";

/** Cheap parameters: the tests check behaviour, not cost. */
const FAST = { ln: 10, r: 8, p: 1 };

Deno.test("password: scrypt hash string with its parameters and a random salt", async () => {
  const a = await hashPassword("correct horse", FAST);
  const b = await hashPassword("correct horse", FAST);
  assert.match(a, /^\$scrypt\$ln=10,r=8,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/);
  assert.notEqual(a, b, "a fresh salt each time");
  assert.equal(await verifyPassword("correct horse", parseHash(a)), true);
  assert.equal(await verifyPassword("correct horse", parseHash(b)), true);
  assert.equal(await verifyPassword("correct horsf", parseHash(a)), false);
  assert.equal(await verifyPassword("", parseHash(a)), false);
  assert.equal(await verifyPassword("x".repeat(5000), parseHash(a)), false, "overlong");
});

Deno.test("password: the default parameters are OWASP's scrypt with 16 MiB", async () => {
  assert.match(await hashPassword("pw"), /^\$scrypt\$ln=14,r=8,p=5\$/);
});

Deno.test("password: malformed hashes and parameters out of bounds are refused", () => {
  for (
    const bad of [
      "",
      "plaintext",
      "$scrypt$ln=14,r=8$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
      "$scrypt$ln=40,r=8,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", // 2^40: memory exhaustion
      "$scrypt$ln=14,r=99,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
      "$scrypt$ln=14,r=8,p=99$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
      "$scrypt$ln=14,r=8,p=1$c2E$aGFzaGhhc2hoYXNoaGFzaA", // salt too short
      "$pbkdf2$ln=14,r=8,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
    ]
  ) {
    assert.throws(() => parseHash(bad), Error, bad);
  }
});

Deno.test("accounts: parse and format round trip, comments kept", async () => {
  const hash = await hashPassword("pw", FAST);
  const text = `# lab accounts\nalice:${hash}:rw\n\nbob:${hash}:ro:students/bob\n`;
  const lines = parseAccounts(text);
  assert.equal(formatAccounts(lines), text);
  const accounts = lines.flatMap((l) => "account" in l ? [l.account] : []);
  assert.deepEqual(accounts.map((a) => [a.name, a.rights, a.home]), [
    ["alice", "rw", undefined],
    ["bob", "ro", "students/bob"],
  ]);
});

Deno.test("accounts: bad lines are refused with their line number", async () => {
  const hash = await hashPassword("pw", FAST);
  for (
    const [line, message] of [
      [`alice:${hash}`, /line 2: expected NAME:HASH:RIGHTS/],
      [`alice:${hash}:root`, /line 2: invalid rights/],
      [`al ice:${hash}:rw`, /line 2: invalid account name/],
      [`-alice:${hash}:rw`, /line 2: invalid account name/],
      [`${"a".repeat(65)}:${hash}:rw`, /line 2: invalid account name/],
      [`alice:plain:rw`, /line 2: not an scrypt hash/],
      [`alice:${hash}:rw:../etc`, /line 2: invalid home/],
      [`alice:${hash}:rw:/etc`, /line 2: invalid home/],
      [`alice:${hash}:rw:a//b`, /line 2: invalid home/],
      [`alice:${hash}:rw:a:b`, /line 2: expected NAME:HASH:RIGHTS/],
      [`carol:${hash}:rw`, /line 2: account carol appears twice/],
    ] as const
  ) {
    assert.throws(() => parseAccounts(`carol:${hash}:rw\n${line}\n`, "users"), message, line);
  }
  assert.throws(() => checkHome("a/./b"), /invalid home/);
  assert.throws(() => checkHome("a\u0000b"), /invalid home/);
});

Deno.test("accounts: the file is written with mode 0600 and read back", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/users`;
  const lines = parseAccounts(`alice:${await hashPassword("pw", FAST)}:rw\n`);
  await writeAccountsFile(path, lines);
  assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
  assert.deepEqual(formatAccounts(await readAccountsFile(path)), formatAccounts(lines));
  assert.deepEqual([...Deno.readDirSync(dir.path)].map((e) => e.name), ["users"]);
  await assert.rejects(readAccountsFile(`${dir.path}/missing`), /accounts file not found/);
});

/** A throttle on a clock the test moves. */
function throttleAt() {
  const clock = { now: 0 };
  const throttle = new LoginThrottle({}, () => clock.now);
  return { clock, throttle };
}

/** One sequential failed attempt at the clock's time; returns its wait (or "paused"). */
function fail(throttle: LoginThrottle, address: string): number | "paused" {
  const admission = throttle.admit(address);
  if ("pausedMs" in admission) return "paused";
  throttle.settle(address, false);
  return admission.waitMs;
}

Deno.test("throttle: free failures, a growing delay, then a pause", () => {
  const { clock, throttle } = throttleAt();
  const waits: (number | "paused")[] = [];
  for (let i = 0; i < 12; i++) {
    const wait = fail(throttle, "10.0.0.1");
    waits.push(wait);
    if (wait !== "paused") clock.now += wait;
  }
  assert.deepEqual(waits, [0, 0, 0, 0, 250, 500, 1000, 2000, 4000, 4000, "paused", "paused"]);
  // Another address is not slowed at all.
  assert.equal(fail(throttle, "10.0.0.2"), 0);
  // After the pause, one attempt is checked; failing it pauses again.
  clock.now += 60_000;
  assert.equal(fail(throttle, "10.0.0.1"), 0);
  assert.equal(fail(throttle, "10.0.0.1"), "paused");
});

Deno.test("throttle: a success forgets the address", () => {
  const { clock, throttle } = throttleAt();
  for (let i = 0; i < 5; i++) clock.now += fail(throttle, "a") as number;
  const admission = throttle.admit("a");
  assert.ok("waitMs" in admission && admission.waitMs > 0);
  throttle.settle("a", true);
  assert.equal(throttle.size, 0);
  assert.deepEqual(throttle.admit("a"), { waitMs: 0 });
});

Deno.test("throttle: attempts arriving together are spaced out and capped", () => {
  const { throttle } = throttleAt();
  const admissions = Array.from({ length: 12 }, () => throttle.admit("a"));
  const waits = admissions.map((a) => "waitMs" in a ? a.waitMs : "paused");
  assert.deepEqual(waits, [0, 0, 0, 0, 250, 750, 1750, 3750, 7750, 11750, "paused", "paused"]);
});

Deno.test("throttle: memory is bounded by maxAddresses", () => {
  const throttle = new LoginThrottle({ maxAddresses: 100 });
  for (let i = 0; i < 1000; i++) {
    throttle.admit(`10.0.${i >> 8}.${i & 255}`);
    throttle.settle(`10.0.${i >> 8}.${i & 255}`, false);
  }
  assert.equal(throttle.size, 100);
});

Deno.test("authenticator: right pair, wrong name, wrong password, malformed input", async () => {
  const lines = parseAccounts(
    `alice:${await hashPassword("secret", FAST)}:rw:alice\nbob:${await hashPassword(
      "hunter2",
      FAST,
    )}:ro\n`,
  );
  const auth = await Authenticator.create(lines, { throttle: { freeFailures: 100 } });
  const ok = await auth.login("127.0.0.1", "alice", "secret");
  assert.ok(ok.ok && ok.account.name === "alice" && ok.account.home === "alice");
  const wrong = { ok: false, reason: "wrong" };
  assert.deepEqual(await auth.login("127.0.0.1", "alice", "hunter2"), wrong);
  assert.deepEqual(await auth.login("127.0.0.1", "mallory", "secret"), wrong);
  assert.deepEqual(await auth.login("127.0.0.1", "bob\u0000", "hunter2"), wrong);
  assert.deepEqual(await auth.login("127.0.0.1", "a".repeat(5000), "x"), wrong);
  assert.deepEqual(await auth.login("127.0.0.1", "bob", "x".repeat(5000)), wrong);
  assert.deepEqual(await auth.login("127.0.0.1", "bob", "hunter2\ufffd"), wrong);
  const bob = await auth.login("127.0.0.1", "bob", "hunter2");
  assert.ok(bob.ok && bob.account.rights === "ro");
});

Deno.test("authenticator: a paused address does not slow another", async () => {
  const lines = parseAccounts(`alice:${await hashPassword("secret", FAST)}:rw\n`);
  const auth = await Authenticator.create(lines, {
    throttle: { freeFailures: 100, pauseAfter: 5 },
  });
  for (let i = 0; i < 5; i++) await auth.login("127.0.0.2", "alice", `guess${i}`);
  const paused = await auth.login("127.0.0.2", "alice", "secret");
  assert.equal(paused.ok, false);
  assert.equal(!paused.ok && paused.reason, "paused");
  assert.equal((await auth.login("127.0.0.1", "alice", "secret")).ok, true);
});

Deno.test("authenticator: an aborted wait settles the attempt", async () => {
  const lines = parseAccounts(`alice:${await hashPassword("secret", FAST)}:rw\n`);
  const auth = await Authenticator.create(lines, {
    throttle: { freeFailures: 0, baseDelayMs: 60_000 },
  });
  await auth.login("a", "alice", "wrong");
  const abort = new AbortController();
  const waiting = auth.login("a", "alice", "secret", abort.signal);
  abort.abort(new Error("connection closed"));
  await assert.rejects(waiting, /connection closed/);
});
