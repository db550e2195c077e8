/**
 * Accounts and TLS on the HTTP face: curl -u (HTTP Basic), the login form
 * and its cookie, homes and rights as in fsd/1, anonymous reads, the rule
 * on clear text, and HTTPS checked by curl --cacert.
 */

import assert from "node:assert/strict";
import { hashPassword } from "../../lib/auth/password.ts";
import { accountsFixture, FAST } from "../support/accounts.ts";
import { assertTools, needs } from "../support/tools.ts";
import { curl, serveHttp } from "../support/http.ts";
import { makeCertificates } from "../support/tls_certs.ts";

Deno.test({
  name: "http --users: curl -u, homes and rights, 401 with Basic, anonymous read, the login form",
  ...needs("curl"),
  fn: async () => {
    assertTools("curl");
    await using f = await accountsFixture({ bob: true });
    await using server = await serveHttp(f.root, ["--users", f.users, "--anonymous", "read"], [
      f.users,
    ]);
    const base = `http://127.0.0.1:${server.port}`;
    // Alice sees her home as the root, and may upload there.
    const mine = await curl(["-u", "alice:wonderland", `${base}/notes.txt`]);
    assert.equal(mine.status, 200);
    assert.equal(mine.text, "alice's notes\n");
    const put = await curl(["-u", "alice:wonderland", "-T", `${f.dir.path}/up.txt`, `${base}/`]);
    assert.equal(put.status, 201);
    assert.equal(await Deno.readTextFile(`${f.root}/alice/up.txt`), "uploaded\n");
    const wrong = await curl(["-u", "alice:rabbit", `${base}/notes.txt`]);
    assert.equal(wrong.status, 401);
    assert.match(wrong.text, /login failed: unknown user or wrong password/);
    assert.match(wrong.headers["www-authenticate"], /^Basic realm="fsd"/);
    // Bob is read-only; anonymous clients may read the whole directory but not write.
    const bob = await curl(["-u", "bob:builder", "-T", `${f.dir.path}/up.txt`, `${base}/`]);
    assert.equal(bob.status, 403);
    assert.equal((await curl([`${base}/public.txt`])).text, "for everyone\n");
    const anonymous = await curl(["-T", `${f.dir.path}/up.txt`, `${base}/`]);
    assert.equal(anonymous.status, 401);
    // A browser asked to log in gets the form (no Basic prompt); the form gives a session cookie.
    const asked = await curl(["-H", "Accept: text/html", "-T", `${f.dir.path}/up.txt`, `${base}/`]);
    assert.equal(asked.status, 401);
    assert.match(asked.text, /<form method="post" action="\/.fsd\/login"/);
    const token = /name="csrf" value="([0-9a-f]+)"/.exec(asked.text)![1];
    const jar = `${f.dir.path}/jar`;
    const login = await curl([
      "-c",
      jar,
      "--data-urlencode",
      "user=alice",
      "--data-urlencode",
      "password=wonderland",
      "--data-urlencode",
      `csrf=${token}`,
      `${base}/.fsd/login`,
    ]);
    assert.equal(login.status, 303);
    assert.match(
      login.headers["set-cookie"],
      /^fsd_session=[0-9a-f]{32}; Path=\/; HttpOnly; SameSite=Strict/,
    );
    const page = await curl(["-b", jar, `${base}/`]);
    assert.match(page.text, /Signed in as <strong>alice<\/strong>/);
    assert.match(page.text, /notes.txt/);
    await server.stop();
    assert.ok(server.lines.some((l) => /GET "notes.txt" by "alice": sent file/.test(l)));
  },
});

Deno.test({
  name: "http --users without TLS: logins from loopback only; HTTPS with curl --cacert",
  ...needs("curl", "openssl"),
  fn: async () => {
    assertTools("curl", "openssl");
    await using f = await accountsFixture({ bob: true });
    const certs = await makeCertificates(f.dir.path);
    await using server = await serveHttp(
      f.root,
      ["--users", f.users, "--tls-cert", certs.cert, "--tls-key", certs.key],
      [f.users, certs.cert, certs.key],
    );
    const started = await server.waitForLine(/^HTTP server listening/);
    assert.match(started, /, https:\/\/127\.0\.0\.1:\d+\/$/);
    const got = await curl([
      "--cacert",
      certs.ca,
      "-u",
      "alice:wonderland",
      `https://127.0.0.1:${server.port}/notes.txt`,
    ]);
    assert.equal(got.status, 200, got.stderr);
    assert.equal(got.text, "alice's notes\n");
    const untrusted = await curl([`https://127.0.0.1:${server.port}/notes.txt`]);
    assert.notEqual(untrusted.code, 0);
  },
});

Deno.test("http logins: without TLS, from an address other than loopback, refused before a check", async () => {
  await using f = await accountsFixture({ bob: true });
  const { readAccountsFile } = await import("../../lib/auth/accounts.ts");
  const { Authenticator } = await import("../../lib/auth/authenticator.ts");
  const { FileStore } = await import("../../lib/store/file_store.ts");
  const { HttpLogins } = await import("../../lib/http/auth.ts");
  const authenticator = await Authenticator.create(await readAccountsFile(f.users));
  const store = await FileStore.open({ root: f.root });
  const basic = new Request("http://x/", {
    headers: { authorization: `Basic ${btoa("alice:wonderland")}` },
  });
  const plain = new HttpLogins(store, { authenticator }, false);
  await assert.rejects(
    () => plain.caller(basic, "192.0.2.7", false),
    /takes logins without TLS only from loopback/,
  );
  assert.equal((await plain.caller(basic, "127.0.0.1", false)).user, "alice");
  const allowed = new HttpLogins(store, { authenticator, allowPlaintextLogin: true }, false);
  assert.equal((await allowed.caller(basic, "192.0.2.7", false)).user, "alice");
  const tls = new HttpLogins(store, { authenticator }, true);
  assert.equal((await tls.caller(basic, "192.0.2.7", false)).user, "alice");
  assert.equal((await tls.caller(basic, "192.0.2.7", false)).admin, false);
});

Deno.test("http --live from afar: only an account with the admin right", async () => {
  await using f = await accountsFixture({ bob: true });
  const users = `${f.dir.path}/admins`;
  await Deno.writeTextFile(
    users,
    `carol:${await hashPassword("teacher", FAST)}:admin\nalice:${await hashPassword(
      "wonderland",
      FAST,
    )}:rw\n`,
  );
  const { readAccountsFile } = await import("../../lib/auth/accounts.ts");
  const { Authenticator } = await import("../../lib/auth/authenticator.ts");
  const { FileStore } = await import("../../lib/store/file_store.ts");
  const { HttpLogins } = await import("../../lib/http/auth.ts");
  const { LivePage } = await import("../../lib/http/live.ts");
  const { LiveHub } = await import("../../lib/capture/live.ts");
  const logins = new HttpLogins(
    await FileStore.open({ root: f.root }),
    { authenticator: await Authenticator.create(await readAccountsFile(users)) },
    true,
  );
  const as = (pair: string) =>
    new Request("https://x/.live/", { headers: { authorization: `Basic ${btoa(pair)}` } });
  const page = new LivePage(new LiveHub());
  const signal = new AbortController().signal;
  const carol = await logins.caller(as("carol:teacher"), "192.0.2.7", false);
  assert.equal(page.answer("", "192.0.2.7", signal, carol.admin).status, 200);
  const alice = await logins.caller(as("alice:wonderland"), "192.0.2.7", false);
  assert.throws(
    () => page.answer("", "192.0.2.7", signal, alice.admin),
    /loopback clients and admin accounts only/,
  );
});
