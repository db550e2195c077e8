/**
 * A read-only account's upload is refused saying the account is read-only
 * (issue 19: it said "server is read-only"), over fsd/1 and the HTTP face,
 * with `fsd put --user` as a subprocess; a `--read-only` server still says
 * the server is.
 */

import assert from "node:assert/strict";
import { hashPassword } from "../../lib/auth/password.ts";
import { runFsd, spawnFsd, spawnServe } from "../support/cli.ts";
import { tempDir } from "../support/files.ts";

const FAST = { ln: 10, r: 8, p: 1 };

async function fixture() {
  const dir = await tempDir();
  const root = `${dir.path}/root`;
  await Deno.mkdir(`${root}/bob`, { recursive: true });
  const users = `${dir.path}/users`;
  const hash = await hashPassword("builder", FAST);
  // bob reads his home; carol reads all of DIR; both read-only.
  await Deno.writeTextFile(users, `bob:${hash}:ro:bob\ncarol:${hash}:ro\n`);
  const local = `${dir.path}/hw1.txt`;
  await Deno.writeTextFile(local, "homework\n");
  return { dir, root, users, local, [Symbol.asyncDispose]: () => dir[Symbol.asyncDispose]() };
}

const put = (port: number, local: string, target: string[], user: string) =>
  runFsd(
    [`--allow-net=127.0.0.1:${port}`, "--allow-env=FSD_PASSWORD", `--allow-read=${local}`],
    ["put", ...target, local, "--user", user],
    { env: { FSD_PASSWORD: "builder" } },
  );

Deno.test("read-only account: fsd put over fsd/1 says the account is read-only", async () => {
  await using f = await fixture();
  await using server = await spawnServe(f.root, 0, ["--users", f.users], [
    "--allow-net=127.0.0.1",
    `--allow-read=${f.root},${f.users}`,
    `--allow-write=${f.root}`,
  ]);
  for (const user of ["bob", "carol"]) {
    const result = await put(server.port, f.local, ["127.0.0.1", String(server.port)], user);
    assert.equal(result.code, 1, result.stderr);
    assert.match(result.stderr, new RegExp(`access denied: account ${user} is read-only`));
    assert.doesNotMatch(result.stderr, /server is read-only/);
  }
  assert.deepEqual([...Deno.readDirSync(`${f.root}/bob`)], []);
});

Deno.test("read-only account: fsd put over HTTP says the account is read-only", async () => {
  await using f = await fixture();
  await using server = await spawnFsd(
    ["serve", f.root, "0", "--host", "127.0.0.1", "--users", f.users, "--http", "0", "--http-only"],
    ["--allow-net=127.0.0.1", `--allow-read=${f.root},${f.users}`, `--allow-write=${f.root}`],
    /^HTTP server listening on /,
  );
  const result = await put(server.port, f.local, [`http://127.0.0.1:${server.port}/`], "bob");
  assert.equal(result.code, 1, result.stderr);
  assert.match(result.stderr, /access denied: account bob is read-only/);
  assert.deepEqual([...Deno.readDirSync(`${f.root}/bob`)], []);
});

Deno.test("read-only account: a --read-only server still says the server is read-only", async () => {
  await using f = await fixture();
  await Deno.writeTextFile(f.users, `dave:${await hashPassword("builder", FAST)}:rw\n`);
  await using server = await spawnServe(f.root, 0, ["--users", f.users, "--read-only"], [
    "--allow-net=127.0.0.1",
    `--allow-read=${f.root},${f.users}`,
  ]);
  const result = await put(server.port, f.local, ["127.0.0.1", String(server.port)], "dave");
  assert.equal(result.code, 1, result.stderr);
  assert.match(result.stderr, /server is read-only/);
});
