/** `fsd echo serve PORT --login USERS`: the login lab as in issue 10's transcript, server and client as subprocesses. */

import assert from "node:assert/strict";
import { hashPassword } from "../../lib/auth/password.ts";
import { runFsd, spawnFsd } from "../support/cli.ts";
import { tempDir, text } from "../support/files.ts";
import { withDeadline } from "../support/raw_client.ts";
import { onTerminal } from "../support/terminal.ts";
import { needs } from "../support/tools.ts";

const FAST = { ln: 10, r: 8, p: 1 };

async function labServer(dir: string, extra: string[] = []) {
  const users = `${dir}/users`;
  await Deno.writeTextFile(
    users,
    `alice:${await hashPassword("wonderland", FAST)}:rw\nbob:${await hashPassword(
      "builder",
      FAST,
    )}:ro\n`,
  );
  return await spawnFsd(
    ["echo", "serve", "0", "--host", "127.0.0.1", "--login", users, ...extra],
    ["--allow-net=127.0.0.1", `--allow-read=${users}`],
    /^Echo server \(login, TCP\) listening on /,
  );
}

const client = (port: number, input: string) =>
  runFsd([`--allow-net=127.0.0.1:${port}`], ["echo", "127.0.0.1", String(port)], {
    stdin: text.encode(input),
  });

Deno.test("echo --login: the right pair is logged in, the log masks the password", async () => {
  await using dir = await tempDir();
  await using server = await labServer(dir.path);
  const result = await client(server.port, "alice\nwonderland\n");
  assert.equal(result.code, 0, result.stderr);
  assert.equal(
    result.stdout,
    "Username:\nPassword:\nUsername and password are correct.\nYou are now logged in.\n",
  );
  await server.waitForLine(/closed/);
  assert.ok(server.lines.includes('Client login with username "alice"'), server.lines.join("\n"));
  assert.ok(server.lines.includes('Client entered password "****"'));
  assert.ok(!server.lines.some((line) => line.includes("wonderland")));
});

Deno.test("echo --login: a wrong password and an unknown name get the same answer", async () => {
  await using dir = await tempDir();
  await using server = await labServer(dir.path);
  const expected = "Username:\nPassword:\nUsername or password is incorrect.\n";
  for (const input of ["alice\nbuilder\n", "mallory\nwonderland\n", "\n\n", "al\u0000ice\nx\n"]) {
    const result = await client(server.port, input);
    assert.equal(result.stdout, expected, JSON.stringify(input));
  }
  const bob = await client(server.port, "bob\r\nbuilder\r\n");
  assert.match(bob.stdout, /You are now logged in\./);
});

Deno.test("echo --login: a username over 64 KiB is refused, never split into a password", async () => {
  await using dir = await tempDir();
  await using server = await labServer(dir.path, ["--show-passwords"]);
  const result = await client(server.port, `${"A".repeat(64 * 1024)}wonderland\nx\n`);
  assert.equal(result.stdout, "Username:\nUsername or password is incorrect.\n");
  await server.waitForLine(/closed/);
  assert.ok(server.lines.includes("Client sent a line over 65536 bytes: closing"));
  assert.ok(
    !server.lines.some((line) => /Client (login|entered)/.test(line)),
    server.lines.join("\n"),
  );
});

Deno.test("echo --login --show-passwords: the log shows the password as typed", async () => {
  await using dir = await tempDir();
  await using server = await labServer(dir.path, ["--show-passwords"]);
  await client(server.port, 'bob\nnot "it"\n');
  await server.waitForLine(/closed/);
  assert.ok(
    server.lines.includes('Client entered password "not \\"it\\""'),
    server.lines.join("\n"),
  );
});

Deno.test("echo --login: a silent client does not hold up another", async () => {
  await using dir = await tempDir();
  await using server = await labServer(dir.path);
  using silent = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  const result = await withDeadline(client(server.port, "alice\nwonderland\n"), "login");
  assert.match(result.stdout, /You are now logged in\./);
  silent.close();
});

Deno.test("echo --login: usage errors", async () => {
  for (
    const [args, message] of [
      [["--login", "u", "--udp"], /TCP only/],
      [["--login", "u", "--upper"], /--login takes no --upper/],
      [["--show-passwords"], /--show-passwords goes with --login/],
    ] as const
  ) {
    const result = await runFsd(["--allow-net=127.0.0.1"], ["echo", "serve", "0", ...args]);
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, message);
  }
  const missing = await runFsd(["--allow-net=127.0.0.1", "--allow-read"], [
    "echo",
    "serve",
    "0",
    "--login",
    "/nonexistent/users",
  ]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /accounts file not found: \/nonexistent\/users/);
});

Deno.test({
  name: "echo --login: on a terminal the client does not echo the password",
  ...needs("script"),
  fn: async () => {
    await using dir = await tempDir();
    await using server = await labServer(dir.path);
    const { output } = await onTerminal(
      [`--allow-net=127.0.0.1:${server.port}`],
      ["echo", "127.0.0.1", String(server.port)],
      [
        { after: /Username:/, type: "alice\r" },
        { after: /Password:/, type: "wonderland\r" },
      ],
    );
    assert.match(output, /alice/, "the name is echoed");
    assert.ok(!output.includes("wonderland"), `the password was echoed: ${output}`);
    assert.match(output, /You are now logged in\./);
  },
});
