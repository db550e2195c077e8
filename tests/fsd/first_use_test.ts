/**
 * What a new user meets first (issue 19): no Deno prompt on a terminal,
 * special files as LOCAL, the help and messages that must agree with the
 * program. README.md and docs/LABS.md as a whole are run by readme_test.ts
 * and labs_test.ts.
 */

import assert from "node:assert/strict";
import { FsdClient } from "../../lib/fsd/client.ts";
import { hashPassword } from "../../lib/auth/password.ts";
import { formatBytes } from "../../commands/shared/cli.ts";
import { MAIN, runFsd, spawnServe } from "../support/cli.ts";
import { tempDir } from "../support/files.ts";
import { withDeadline } from "../support/raw_client.ts";
import { PROMPT, PtyLine } from "../support/pty.ts";
import { assertTools, needs } from "../support/tools.ts";

Deno.test("fsd wireshark --help names every filter field the dissector has", async () => {
  const help = await runFsd([], ["wireshark", "--help"]);
  assert.equal(help.code, 0);
  const lua = await Deno.readTextFile(
    new URL("../../lib/capture/fsd_dissector.lua", import.meta.url),
  );
  const fields = [...lua.matchAll(/ProtoField\.\w+\("(fsd\.[\w.]+)"/g)].map((m) => m[1]);
  assert.ok(fields.includes("fsd.length") && fields.includes("fsd.sha256"), fields.join(" "));
  for (const field of fields) {
    assert.match(help.stdout, new RegExp(`${field.replaceAll(".", "\\.")}[,.\\s]`), field);
  }
});

Deno.test("a port out of range: one message for a listening port (0 up), one for a peer's (1 up)", async () => {
  for (
    const [args, range] of [
      [["get", "127.0.0.1", "0", "f"], "1 to 65535"],
      [["get", "127.0.0.1", "70000", "f"], "1 to 65535"],
      [["ls", "127.0.0.1", "70000"], "1 to 65535"],
      [["echo", "127.0.0.1", "0", "hi"], "1 to 65535"],
      [["proxy", "9000", "127.0.0.1", "0"], "1 to 65535"],
      [["serve", ".", "70000"], "0 to 65535"],
    ] as const
  ) {
    const run = await runFsd([], [...args]);
    assert.equal(run.code, 2, args.join(" "));
    const port = args[0] === "proxy" ? args[3] : args[2];
    assert.equal(run.stderr, `fsd: invalid port: ${port}: expected a number from ${range}\n`);
  }
});

Deno.test({
  name: "fsd serve on a terminal without --allow-sys asks nothing; the greeting names fsd",
  ...needs("script"),
  sanitizeOps: false, // the terminal is read in the background
  sanitizeResources: false,
  fn: async () => {
    assertTools("script");
    await using dir = await tempDir();
    const line = [
      Deno.execPath(),
      "run",
      "--allow-net",
      `--allow-read=${dir.path}`,
      `--allow-write=${dir.path}`,
      MAIN,
      "serve",
      dir.path,
      "0",
      "--host",
      "127.0.0.1",
    ].join(" ");
    await using pty = new PtyLine(line, { cwd: dir.path, env: { NO_COLOR: "1" } });
    await pty.waitFor(new RegExp(`port \\d+|${PROMPT.source}`), 20_000, "serve");
    assert.ok(!PROMPT.test(pty.output), pty.output);
    const port = Number(/port (\d+)/.exec(pty.output)![1]);
    const client = await FsdClient.connect("127.0.0.1", port, { timeoutMs: 5000 });
    try {
      assert.equal(client.greeting, "Hello from fsd's fileserver");
    } finally {
      client.close();
    }
  },
});

Deno.test("fsd get to /dev/stdout and /dev/stderr writes there; another device says what to do", async () => {
  await using served = await tempDir();
  await Deno.writeTextFile(`${served.path}/f.txt`, "special\n");
  await using server = await spawnServe(served.path);
  const flags = [`--allow-net=127.0.0.1:${server.port}`, "--allow-read", "--allow-write"];
  const get = (local: string) =>
    runFsd(flags, ["get", "127.0.0.1", `${server.port}`, "f.txt", local]);
  const out = await get("/dev/stdout");
  assert.equal(out.code, 0, out.stderr);
  assert.equal(out.stdout, "special\n");
  const err = await get("/dev/stderr");
  assert.equal(err.code, 0, err.stderr);
  assert.equal(err.stderr, "special\n");
  const full = await get("/dev/full");
  assert.equal(full.code, 1);
  assert.equal(
    full.stderr,
    "fsd: cannot write /dev/full: a device: give LOCAL - and redirect, as in: fsd get HOST PORT REMOTE - > /dev/full\n",
  );
  assert.doesNotMatch(full.stderr, /--allow-all/);
  const put = await runFsd(flags, ["put", "127.0.0.1", `${server.port}`, "/dev/stdin", "in.txt"], {
    stdin: new TextEncoder().encode("from stdin\n"),
  });
  assert.equal(put.code, 0, put.stderr);
  assert.equal(await Deno.readTextFile(`${served.path}/in.txt`), "from stdin\n");
});

Deno.test("get/put/ls as scripts use them: HOST:PORT, fsd:// URLs, ls FILE, -q and -v, -j alone refused", async () => {
  await using served = await tempDir();
  await using work = await tempDir();
  await Deno.mkdir(`${served.path}/docs`);
  await Deno.writeTextFile(`${served.path}/docs/notes.txt`, "hello notes\n");
  await Deno.writeTextFile(`${work.path}/a.txt`, "a\n");
  await using server = await spawnServe(served.path);
  const port = `${server.port}`;
  const flags = [
    `--allow-net=127.0.0.1:${port}`,
    `--allow-read=${work.path}`,
    `--allow-write=${work.path}`,
  ];
  const fsd = (...args: string[]) => runFsd(flags, args, { cwd: work.path });

  const pair = await fsd("get", `127.0.0.1:${port}`, "docs/notes.txt", "-");
  assert.equal(pair.stdout, "hello notes\n", pair.stderr);
  const url = await fsd("get", `fsd://127.0.0.1:${port}/docs/notes.txt`, "-");
  assert.equal(url.stdout, "hello notes\n", url.stderr);
  const listed = await fsd("ls", `fsd://127.0.0.1:${port}/docs`);
  assert.match(listed.stdout, /^f 12 \S+ notes\.txt\n$/, listed.stderr);
  const put = await fsd("put", `fsd://127.0.0.1:${port}/docs/a-copy.txt`, "a.txt");
  assert.equal(put.code, 0, put.stderr);
  assert.equal(await Deno.readTextFile(`${served.path}/docs/a-copy.txt`), "a\n");

  const file = await fsd("ls", "127.0.0.1", port, "docs/notes.txt");
  assert.equal(file.code, 0, file.stderr);
  assert.match(file.stdout, /^f 12 \S+ docs\/notes\.txt\n$/, "a file: its own line, as ls");

  // In a script (stderr not a terminal): data and errors only, unless -v.
  const quiet = await fsd("put", "127.0.0.1", port, "a.txt", "-o", "up");
  assert.equal(quiet.code, 0, quiet.stderr);
  assert.equal(quiet.stderr, "");
  const verbose = await fsd("get", "127.0.0.1", port, "docs/notes.txt", "-o", "in", "-v");
  assert.equal(verbose.code, 0, verbose.stderr);
  assert.match(
    verbose.stderr,
    /^ {2}docs\/notes\.txt: 12 bytes in \d+\.\d{3} s\nreceived 1 of 1 file\(s\), 12 bytes in \d+\.\d s\n$/,
  );
  const both = await fsd("get", "127.0.0.1", port, "docs/notes.txt", "-q", "-v");
  assert.equal(both.code, 2);
  assert.equal(both.stderr, "fsd: -q and -v do not mix\n");
  const json = await fsd("get", "127.0.0.1", port, "docs/notes.txt", "-o", "json", "--json");
  assert.match(json.stdout, /"seconds":\d+(\.\d{1,3})?,/, "seconds in milliseconds, not 1e-16");

  const jobs = await fsd("get", "127.0.0.1", port, "docs/notes.txt", "-j", "4");
  assert.equal(jobs.code, 2);
  assert.equal(jobs.stderr, "fsd: --jobs takes -o or -r: one file moves on one connection\n");
});

Deno.test("a job that fails leaves no empty directory, here or on the server", async () => {
  await using served = await tempDir();
  await using work = await tempDir();
  await using server = await spawnServe(served.path);
  const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const downPort = `${closed.addr.port}`;
  closed.close();
  const flags = [
    "--allow-net=127.0.0.1",
    `--allow-read=${work.path}`,
    `--allow-write=${work.path}`,
  ];
  const down = await runFsd(flags, ["get", "127.0.0.1", downPort, "a", "b", "-o", "zz"], {
    cwd: work.path,
  });
  assert.equal(down.code, 1);
  assert.match(down.stderr, /cannot connect to 127\.0\.0\.1 port \d+/);
  assert.deepEqual(await Array.fromAsync(Deno.readDir(work.path)), [], "no zz");
  const missing = await runFsd(
    flags,
    ["put", "127.0.0.1", `${server.port}`, "missing1", "missing2", "-o", "x"],
    { cwd: work.path },
  );
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /failed: x\/missing1: file not found: missing1/);
  assert.deepEqual(await Array.fromAsync(Deno.readDir(served.path)), [], "no remote x");
});

Deno.test("a rate below 1 KiB/s is a whole number of bytes", () => {
  assert.equal(formatBytes(473.58579939720096), "474 bytes");
  assert.equal(formatBytes(1536), "1.5 KiB");
});

Deno.test("serve --log json: every line on stdout is JSON, the listening and start lines too", async () => {
  await using dir = await tempDir();
  const users = `${dir.path}/users`;
  await Deno.writeTextFile(
    users,
    `ada:${await hashPassword("secret1", { ln: 10, r: 8, p: 1 })}:rw\n`,
  );
  const root = `${dir.path}/root`;
  await Deno.mkdir(root);
  const server = await spawnServe(
    root,
    0,
    ["--log", "json", "--users", users, "--tftp", "0"],
    ["--allow-net", `--allow-read=${dir.path}`, `--allow-write=${root}`],
  );
  await server.waitForLine(/"transport":"tftp"/);
  await server.stop();
  const events = server.lines.map((line) => JSON.parse(line));
  assert.match(events[0].message, /^Accounts: 1 from /);
  const listening = events.filter((e) => e.event === "listening");
  assert.deepEqual(
    listening.map(({ transport, address, port }) => ({ transport, address, port })),
    [
      { transport: "fsd", address: "127.0.0.1", port: server.port },
      { transport: "tftp", address: "127.0.0.1", port: listening[1].port },
    ],
  );
  assert.equal(events.at(-1).event, "shutdown");
});

Deno.test("a capture file that cannot be written is said to be that, not a failed connection", async () => {
  await using served = await tempDir();
  await Deno.writeTextFile(`${served.path}/f.txt`, "f\n");
  await using server = await spawnServe(served.path);
  const run = await runFsd(
    [`--allow-net=127.0.0.1:${server.port}`, "--allow-write"],
    ["get", "127.0.0.1", `${server.port}`, "f.txt", "-", "--pcap", `${served.path}/no/such/x.pcap`],
  );
  assert.equal(run.code, 1);
  assert.match(run.stderr, /^fsd: cannot write capture file .*no\/such\/x\.pcap: /);
  assert.doesNotMatch(run.stderr, /cannot connect/);
});

Deno.test({
  name: "get --user on a terminal: the password prompt stays alone until the password is in",
  ...needs("script"),
  sanitizeOps: false, // the terminal is read in the background
  sanitizeResources: false,
  fn: async () => {
    assertTools("script");
    await using dir = await tempDir();
    const root = `${dir.path}/root`;
    await Deno.mkdir(root);
    await Deno.writeTextFile(`${root}/f.txt`, "for ada\n");
    const users = `${dir.path}/users`;
    const hash = await hashPassword("secret1", { ln: 10, r: 8, p: 1 });
    await Deno.writeTextFile(users, `ada:${hash}:rw\n`);
    await using server = await spawnServe(root, 0, ["--users", users], [
      "--allow-net",
      `--allow-read=${dir.path}`,
      `--allow-write=${root}`,
    ]);
    const line = [
      Deno.execPath(),
      "run",
      `--allow-net=127.0.0.1:${server.port}`,
      MAIN,
      "get",
      "127.0.0.1",
      `${server.port}`,
      "f.txt",
      "-",
      "--user",
      "ada",
    ].join(" ");
    await using pty = new PtyLine(line, { cwd: dir.path, env: { NO_COLOR: "1" } });
    await pty.waitFor(/Password for ada: $/, 20_000, "the prompt");
    // Progress would draw after a second: the prompt must still be the last thing shown.
    const shown = await pty.settle(1500);
    assert.ok(/Password for ada: $/.test(shown), JSON.stringify(shown));
    await pty.type("secret1\r");
    assert.equal(await pty.finish(20_000, "get"), 0, pty.output);
    assert.match(pty.output, /for ada/);
  },
});

Deno.test("serve --tftp: fsd/1 and TFTP connections share one sequence of ids in the log", async () => {
  await using dir = await tempDir();
  await Deno.writeTextFile(`${dir.path}/f.txt`, "both\n");
  const server = await spawnServe(dir.path, 0, ["--log", "json", "--tftp", "0"]);
  try {
    const tftpPort = JSON.parse(await server.waitForLine(/"transport":"tftp"/)).port;
    for (
      const url of [`fsd://127.0.0.1:${server.port}/f.txt`, `tftp://127.0.0.1:${tftpPort}/f.txt`]
    ) {
      for (let i = 0; i < 2; i++) {
        const got = await runFsd(["--allow-net=127.0.0.1"], ["get", url, "-"]);
        assert.equal(got.stdout, "both\n", got.stderr);
      }
    }
    await withDeadline(server.waitForLine(/"event":"request","id":4,/), "the fourth request");
  } finally {
    await server.stop();
  }
  const connections = server.lines.map((line) => JSON.parse(line))
    .filter((e) => e.event === "connection");
  assert.deepEqual(connections.map((e) => e.id), [1, 2, 3, 4], server.lines.join("\n"));
  assert.deepEqual(connections.map((e) => e.transport ?? "fsd"), ["fsd", "fsd", "tftp", "tftp"]);
});
