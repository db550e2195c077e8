/** fsd serve --users and the clients' --user, as subprocesses with their documented permissions. */

import assert from "node:assert/strict";
import { accountsFixture } from "../support/accounts.ts";
import { runFsd, spawnServe } from "../support/cli.ts";
import { text } from "../support/files.ts";
import { onTerminal } from "../support/terminal.ts";
import { needs } from "../support/tools.ts";

function serveUsers(root: string, users: string, extra: string[] = []) {
  return spawnServe(root, 0, ["--users", users, ...extra], [
    "--allow-net=127.0.0.1",
    `--allow-read=${root},${users}`,
    `--allow-write=${root}`,
  ]);
}

const asAlice = (
  port: number,
  args: string[],
  env: Record<string, string> = {},
  more: string[] = [],
) => runFsd([`--allow-net=127.0.0.1:${port}`, "--allow-env=FSD_PASSWORD", ...more], args, { env });

Deno.test("serve --users: what it says at start; no login, no files", async () => {
  await using f = await accountsFixture();
  await using server = await serveUsers(f.root, f.users);
  assert.ok(server.lines.includes(`Accounts: 1 from ${f.users}`), server.lines.join("\n"));
  assert.ok(server.lines.some((l) => /^Logins without TLS are taken from loopback only/.test(l)));
  const result = await runFsd([`--allow-net=127.0.0.1:${server.port}`], [
    "ls",
    "127.0.0.1",
    String(server.port),
  ]);
  assert.equal(result.code, 1);
  assert.equal(result.stderr, "fsd: server error 7: login required\n");
});

Deno.test("serve --users: get, put and ls --user with FSD_PASSWORD or --password-file", async () => {
  await using f = await accountsFixture();
  await using server = await serveUsers(f.root, f.users);
  const port = String(server.port);
  const got = await asAlice(server.port, [
    "get",
    "127.0.0.1",
    port,
    "notes.txt",
    "-",
    "--user",
    "alice",
  ], {
    FSD_PASSWORD: "wonderland",
  });
  assert.equal(got.code, 0, got.stderr);
  assert.equal(got.stdout, "alice's notes\n");
  const passwordFile = `${f.dir.path}/pw`;
  await Deno.writeTextFile(passwordFile, "wonderland\n");
  const put = await runFsd(
    [`--allow-net=127.0.0.1:${server.port}`, `--allow-read=${passwordFile}`],
    [
      "put",
      "127.0.0.1",
      port,
      "-",
      "new.txt",
      "--user",
      "alice",
      "--password-file",
      passwordFile,
    ],
    { stdin: text.encode("new") },
  );
  assert.equal(put.code, 0, put.stderr);
  assert.equal(await Deno.readTextFile(`${f.root}/alice/new.txt`), "new");
  const ls = await asAlice(server.port, ["ls", "127.0.0.1", port, "--user", "alice"], {
    FSD_PASSWORD: "wonderland",
  });
  assert.equal(ls.code, 0, ls.stderr);
  assert.deepEqual(ls.stdout.trim().split("\n").map((l) => l.split(" ").pop()), [
    "new.txt",
    "notes.txt",
  ]);
  await server.waitForLine(/DRQ by "alice": sent listing/);
  assert.ok(server.lines.some((l) => /RRQ "notes\.txt" by "alice": sent file/.test(l)));
  assert.ok(server.lines.some((l) => /WRQ "new\.txt" by "alice": received file/.test(l)));
  assert.ok(!server.lines.some((l) => l.includes("wonderland")), "no password in the log");
});

Deno.test("serve --users: refusals the clients report in one line", async () => {
  await using f = await accountsFixture();
  await using server = await serveUsers(f.root, f.users, ["--anonymous", "read"]);
  const port = String(server.port);
  const wrong = await asAlice(server.port, ["ls", "127.0.0.1", port, "--user", "alice"], {
    FSD_PASSWORD: "looking-glass",
  });
  assert.equal(wrong.code, 1);
  assert.equal(wrong.stderr, "fsd: server error 7: login failed: unknown user or wrong password\n");
  const unknown = await asAlice(server.port, ["ls", "127.0.0.1", port, "--user", "mallory"], {
    FSD_PASSWORD: "wonderland",
  });
  assert.equal(unknown.stderr, wrong.stderr, "a wrong name reads as a wrong password");
  const noPassword = await runFsd([`--allow-net=127.0.0.1:${server.port}`], [
    "ls",
    "127.0.0.1",
    port,
    "--user",
    "alice",
  ]);
  assert.equal(noPassword.code, 1);
  assert.match(
    noPassword.stderr,
    /no password for alice: run with --allow-env=FSD_PASSWORD to read FSD_PASSWORD, give --password-file/,
    "without the permission, the message names it instead of blaming the user",
  );
  const unset = await runFsd([`--allow-net=127.0.0.1:${server.port}`, "--allow-env=FSD_PASSWORD"], [
    "ls",
    "127.0.0.1",
    port,
    "--user",
    "alice",
  ]);
  assert.equal(unset.code, 1);
  assert.match(unset.stderr, /no password for alice: set FSD_PASSWORD, give --password-file/);
  // Anonymous: downloads yes, uploads no.
  const anonymous = await runFsd([`--allow-net=127.0.0.1:${server.port}`], [
    "get",
    "127.0.0.1",
    port,
    "public.txt",
    "-",
  ]);
  assert.equal(anonymous.stdout, "for everyone\n", anonymous.stderr);
  const upload = await runFsd([`--allow-net=127.0.0.1:${server.port}`], [
    "put",
    "127.0.0.1",
    port,
    "-",
    "x.txt",
  ], { stdin: text.encode("x") });
  assert.equal(upload.code, 1);
  assert.match(upload.stderr, /server error 7: login required/);
});

Deno.test("serve --users: SIGHUP rereads the accounts file; a broken one keeps the old", async () => {
  await using f = await accountsFixture();
  await using server = await serveUsers(f.root, f.users);
  const port = String(server.port);
  const add = await runFsd([`--allow-read=${f.dir.path}`, `--allow-write=${f.dir.path}`], [
    "user",
    "add",
    f.users,
    "bob",
    "--read-only",
  ], { stdin: text.encode("builder\n") });
  assert.equal(add.code, 0, add.stderr);
  server.child.kill("SIGHUP");
  await server.waitForLine(/^read 2 account\(s\) from /);
  const bob = await asAlice(server.port, [
    "get",
    "127.0.0.1",
    port,
    "public.txt",
    "-",
    "--user",
    "bob",
  ], {
    FSD_PASSWORD: "builder",
  });
  assert.equal(bob.stdout, "for everyone\n", bob.stderr);
  await Deno.writeTextFile(f.users, "bob:broken\n");
  server.child.kill("SIGHUP");
  await server.waitForLine(/^cannot reread .*line 1: .*keeping the accounts read before$/);
  const again = await asAlice(server.port, ["ls", "127.0.0.1", port, "--user", "bob"], {
    FSD_PASSWORD: "builder",
  });
  assert.equal(again.code, 0, again.stderr);
});

Deno.test("serve --users: usage errors", async () => {
  for (
    const [flags, message] of [
      [["--users", "u", "--anonymous", "write"], /invalid --anonymous: write: expected read/],
      [["--anonymous", "read"], /go with --users/],
      [["--public", "handouts"], /go with --users/],
      [["--users", "u", "--public", "a/b"], /invalid --public: a\/b: expected one directory name/],
      [["--users", "u", "--public", ".."], /invalid --public: \.\.: /],
      [["--allow-plaintext-login"], /go with --users/],
      [["--tls-cert", "c.pem"], /--tls-cert and --tls-key go together/],
    ] as const
  ) {
    const result = await runFsd(["--allow-net=127.0.0.1", "--allow-read"], [
      "serve",
      ".",
      "0",
      ...flags,
    ]);
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, message);
  }
  for (
    const [flags, code, message] of [
      [["ls", "h", "1", "--pin", "SHA256:zz"], 2, /invalid pin/],
      [
        ["ls", "h", "1", "--pin", `SHA256:${"00".repeat(32)}`, "--ca", "x"],
        2,
        /choose --ca or --pin/,
      ],
      [["ls", "h", "1", "--password-file", "x"], 2, /--password-file goes with --user/],
    ] as const
  ) {
    const result = await runFsd([], [...flags]);
    assert.equal(result.code, code, result.stderr);
    assert.match(result.stderr, message);
  }
});

Deno.test({
  name: "serve --users: on a terminal the client asks for the password without echo",
  ...needs("script"),
  fn: async () => {
    await using f = await accountsFixture();
    await using server = await serveUsers(f.root, f.users);
    const { code, output } = await onTerminal(
      [`--allow-net=127.0.0.1:${server.port}`],
      ["ls", "127.0.0.1", String(server.port), "--user", "alice"],
      [{ after: /Password for alice: /, type: "wonderland\r" }],
    );
    assert.equal(code, 0, output);
    assert.ok(!output.includes("wonderland"), output);
    assert.match(output, /notes\.txt/);
  },
});
