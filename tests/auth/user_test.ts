/** `fsd user add|remove|list` as a subprocess, with its documented permissions; the no-echo prompt on a pty. */

import assert from "node:assert/strict";
import { parseAccounts } from "../../lib/auth/accounts.ts";
import { parseHash, verifyPassword } from "../../lib/auth/password.ts";
import { runFsd } from "../support/cli.ts";
import { tempDir, text } from "../support/files.ts";
import { onTerminal } from "../support/terminal.ts";
import { needs } from "../support/tools.ts";

const writeFlags = (dir: string) => [`--allow-read=${dir}`, `--allow-write=${dir}`];

async function accountsIn(file: string) {
  return parseAccounts(await Deno.readTextFile(file)).flatMap((l) =>
    "account" in l ? [l.account] : []
  );
}

Deno.test("fsd user: add creates the file 0600 with a hash, list and remove", async () => {
  await using dir = await tempDir();
  const file = `${dir.path}/users`;
  const add = await runFsd(
    writeFlags(dir.path),
    ["user", "add", file, "alice", "--home", "alice"],
    {
      stdin: text.encode("s3cret pass\n"),
    },
  );
  assert.equal(add.code, 0, add.stderr);
  assert.match(add.stderr, /added account alice \(rw, home alice\)/);
  assert.equal((await Deno.stat(file)).mode! & 0o777, 0o600);
  const content = await Deno.readTextFile(file);
  assert.ok(!content.includes("s3cret"), "no password in the file");
  const bob = await runFsd(writeFlags(dir.path), ["user", "add", file, "bob", "--read-only"], {
    stdin: text.encode("other\n"),
  });
  assert.equal(bob.code, 0, bob.stderr);
  const [alice, bobAccount] = await accountsIn(file);
  assert.equal(await verifyPassword("s3cret pass", parseHash(alice.hashText)), true);
  assert.equal(bobAccount.rights, "ro");

  const list = await runFsd([`--allow-read=${file}`], ["user", "list", file]);
  assert.equal(list.code, 0, list.stderr);
  assert.equal(list.stdout, "alice rw alice\nbob ro /\n");

  const remove = await runFsd(writeFlags(dir.path), ["user", "remove", file, "alice"]);
  assert.equal(remove.code, 0, remove.stderr);
  assert.deepEqual((await accountsIn(file)).map((a) => a.name), ["bob"]);
  assert.deepEqual([...Deno.readDirSync(dir.path)].map((e) => e.name), ["users"], "no temp files");
});

Deno.test("fsd user: refusals", async () => {
  await using dir = await tempDir();
  const file = `${dir.path}/users`;
  const stdin = text.encode("pw\n");
  const run = (args: string[], input?: Uint8Array) =>
    runFsd(writeFlags(dir.path), ["user", ...args], { stdin: input });
  assert.equal((await run(["add", file, "alice"], stdin)).code, 0);
  const cases: [string[], Uint8Array | undefined, number, RegExp][] = [
    [["add", file, "alice"], stdin, 1, /account exists: alice: use --replace/],
    [["add", file, "bad name"], stdin, 2, /invalid account name/],
    [["add", file, "a:b"], stdin, 2, /invalid account name/],
    [["add", file, "carol", "--home", "../up"], stdin, 2, /invalid home/],
    [["add", file, "carol"], text.encode("\n"), 1, /no password given/],
    [["add", file, "carol"], undefined, 1, /no password given/],
    [["add", file, "carol"], text.encode("a\u0000b\n"), 1, /NUL/],
    [["add", file, "carol"], text.encode("x".repeat(2000) + "\n"), 1, /password too long/],
    [["remove", file, "nobody"], undefined, 1, /no such account: nobody/],
    [["list", `${dir.path}/missing`], undefined, 1, /accounts file not found/],
    [["frob", file], undefined, 2, /unknown action: frob/],
    [["list", file, "--read-only"], undefined, 2, /go with 'fsd user add'/],
  ];
  for (const [args, input, code, message] of cases) {
    const result = await run(args, input);
    assert.equal(result.code, code, `${args.join(" ")}: ${result.stderr}`);
    assert.match(result.stderr, message, args.join(" "));
  }
  assert.deepEqual((await accountsIn(file)).map((a) => a.name), ["alice"]);
  const replaced = await run(
    ["add", file, "alice", "--replace", "--read-only"],
    text.encode("new\n"),
  );
  assert.equal(replaced.code, 0, replaced.stderr);
  const [alice] = await accountsIn(file);
  assert.equal(alice.rights, "ro");
  assert.equal(await verifyPassword("new", parseHash(alice.hashText)), true);
});

Deno.test("fsd user: a broken accounts file is refused with its line", async () => {
  await using dir = await tempDir();
  const file = `${dir.path}/users`;
  await Deno.writeTextFile(file, "# ok\nalice:notahash:rw\n");
  const result = await runFsd([`--allow-read=${file}`], ["user", "list", file]);
  assert.equal(result.code, 1);
  assert.match(result.stderr, /users line 2: not an scrypt hash/);
});

Deno.test({
  name: "fsd user add: on a terminal the password is asked twice and not echoed",
  ...needs("script"),
  fn: async () => {
    await using dir = await tempDir();
    const file = `${dir.path}/users`;
    const { code, output } = await onTerminal(
      writeFlags(dir.path),
      ["user", "add", file, "carol"],
      [
        { after: /Password for carol: /, type: "typed-secret\r" },
        { after: /Again: /, type: "typed-secret\r" },
      ],
    );
    assert.equal(code, 0, output);
    assert.ok(!output.includes("typed-secret"), `echoed: ${output}`);
    const [carol] = await accountsIn(file);
    assert.equal(await verifyPassword("typed-secret", parseHash(carol.hashText)), true);
  },
});
