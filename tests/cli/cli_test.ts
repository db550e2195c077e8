/**
 * The command line, spawned as a subprocess with exactly the permission
 * flags the README documents for each subcommand.
 */

import assert from "node:assert/strict";
import { assertTools, needs } from "../support/tools.ts";
import { FsdClient } from "../../lib/fsd/client.ts";
import { VERSION } from "../../lib/version.ts";
import { COMMANDS } from "../../main.ts";
import { UsageError } from "../../commands/shared/cli.ts";
import { type FlagSpec, permissionRows } from "../../commands/shared/command.ts";
import { MAIN, net, oneErrorLine, runFsd, servedAndWork, spawnServe } from "../support/cli.ts";
import { dirNames, randomBytes, tempDir, text } from "../support/files.ts";
import {
  fakeServer,
  RawClient,
  readExactly,
  stallingDownload,
  wire,
} from "../support/raw_client.ts";

/** The narrowest flags each client command needs, as documented. */
const getFlags = (
  port: number,
  dir: string,
) => [net(port), `--allow-read=${dir}`, `--allow-write=${dir}`];
const putFlags = (port: number, file: string) => [net(port), `--allow-read=${file}`];

// ---- help, version, usage errors ----

Deno.test("cli: --version matches deno.json", async () => {
  const config = JSON.parse(await Deno.readTextFile(new URL("../../deno.json", import.meta.url)));
  assert.equal(config.version, VERSION);
  for (const flag of ["--version", "-V"]) {
    const result = await runFsd([], [flag]);
    assert.equal(result.code, 0);
    assert.equal(result.stdout, `fsd ${VERSION}\n`);
  }
});

Deno.test("cli: --help for fsd and for every command lists every flag and its permission", async () => {
  const top = await runFsd([], ["--help"]);
  assert.equal(top.code, 0);
  assert.equal(COMMANDS.length, 8);
  for (const { name, summary, load } of COMMANDS) {
    assert.match(top.stdout, new RegExp(`^  ${name} +${escape(summary)}$`, "m"));
    const { spec } = await load();
    const result = await runFsd([], [name, "--help"]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, new RegExp(`Usage: fsd ${name}( |$)`, "m"));
    assert.match(result.stdout, /\nPermissions: /);
    assert.match(result.stdout, /\nExamples:\n {2}\S/);
    for (const [flag, declared] of Object.entries(spec.flags)) {
      const label = `--${flag}${declared.arg ? ` ${declared.arg}` : ""}`;
      assert.match(result.stdout, new RegExp(`^  (-\\w, )?${escape(label)}( |$)`, "m"), label);
    }
    const [[, own], ...added] = permissionRows(spec);
    assert.ok(result.stdout.includes(`Permissions: ${own}\n`), `${name}: ${own}`);
    for (const [what, permission] of added) {
      const flag = what.slice(`fsd ${name} `.length);
      assert.ok(result.stdout.includes(`  with ${flag}: ${permission}\n`), `${what}`);
    }
  }
});

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** Text that some value parser accepts, for flags given only to test where they belong. */
const SAMPLES = ["1", "read", "text", "up", "fsd", "1:2", "f".repeat(64)];

function sample(name: string, spec: FlagSpec): string[] {
  if (spec.type === "boolean") return [`--${name}`];
  const text = SAMPLES.find((t) => {
    try {
      (spec.value ?? { parse: () => t }).parse(t, `--${name}`);
      return true;
    } catch {
      return false;
    }
  });
  assert.ok(text !== undefined, `a sample value for --${name}`);
  return [`--${name}`, text];
}

Deno.test("cli: every flag of every command refuses what it cannot take, as a usage error", async () => {
  for (const { name, load } of COMMANDS) {
    const command = await load();
    for (const [flag, spec] of Object.entries(command.spec.flags)) {
      const refused = async (args: string[], pattern: RegExp) => {
        await assert.rejects(() => command.run(args), (error: Error) => {
          assert.ok(error instanceof UsageError, `${name} ${args.join(" ")}: ${error}`);
          assert.match(error.message, pattern, `${name} ${args.join(" ")}`);
          return true;
        });
      };
      if (spec.type === "boolean") {
        await refused([`--${flag}=yes`], new RegExp(`--${flag}' does not take an argument`));
        continue;
      }
      if (spec.bare) {
        // An optional value (--integrity [crc32|sha256]): alone it is valid; a wrong one is not.
        await refused([`--${flag}=x`], new RegExp(`^invalid --${flag}: x: `));
        continue;
      }
      await refused([`--${flag}`], new RegExp(`--${flag} <value>' argument missing`));
      if (spec.value) {
        await refused([`--${flag}`, "x"], new RegExp(`^invalid (port for )?--${flag}: x: `));
      }
    }
  }
});

/** A command line on each side of the commands that have sides. */
const SIDES: Record<string, Record<string, string[]>> = {
  get: {
    fsd: ["127.0.0.1", "1", "x"],
    tftp: ["tftp://127.0.0.1:1/x"],
    http: ["http://127.0.0.1:1/x"],
  },
  put: {
    fsd: ["127.0.0.1", "1", "x"],
    tftp: ["tftp://127.0.0.1:1/x", "x"],
    http: ["http://127.0.0.1:1/", "x"],
  },
  ls: { fsd: ["127.0.0.1", "1"], http: ["http://127.0.0.1:1/"] },
  proxy: { tcp: ["0", "127.0.0.1", "1"], udp: ["--udp", "0", "127.0.0.1", "1"] },
  echo: { server: ["serve", "0"], client: ["127.0.0.1", "1"] },
};

Deno.test("cli: a flag of the other side of a command is refused, naming its side", async () => {
  for (const { name, load } of COMMANDS) {
    const command = await load();
    const sides = command.spec.side;
    assert.equal(sides !== undefined, name in SIDES, name);
    if (!sides) continue;
    for (const [flag, spec] of Object.entries(command.spec.flags)) {
      // A flag that chooses its side (--tftp, --udp) cannot be on the other one.
      if (spec.side === undefined || sides.of([], { [flag]: true }) !== sides.of([], {})) continue;
      for (const [side, args] of Object.entries(SIDES[name])) {
        if ([spec.side].flat().includes(side)) continue;
        const owners = [spec.side].flat().map((owner) => sides.names[owner]).join(" and ");
        await assert.rejects(() => command.run([...args, ...sample(flag, spec)]), (error) => {
          assert.ok(error instanceof UsageError, `${name} ${flag} on ${side}: ${error}`);
          assert.equal(
            error.message,
            `--${flag} is an option of ${owners}, not ${sides.names[side]}`,
          );
          return true;
        });
      }
    }
  }
});

Deno.test("cli: README's usage lines are the commands' declared usage", async () => {
  const readme = await Deno.readTextFile(new URL("../../README.md", import.meta.url));
  const block = readme.split("\n## Usage\n\n```\n")[1]?.split("\n```")[0];
  assert.ok(block, "README has a Usage block");
  const declared = [];
  for (const { load } of COMMANDS) {
    declared.push(...[(await load()).spec.usage].flat().flatMap((u) => u.split("\n")));
  }
  assert.deepEqual(block.split("\n"), [
    ...declared,
    "fsd --help | fsd COMMAND --help | fsd --version",
  ]);
});

Deno.test("cli: README's permission table matches the flags' declarations", async () => {
  const readme = await Deno.readTextFile(new URL("../../README.md", import.meta.url));
  const section = readme.split("\n### Permissions\n")[1]?.split("\n#")[0];
  assert.ok(section, "README has a Permissions section");
  const table = [...section.matchAll(/^\| `(fsd [^`]+)` +\| `([^`]+)` +\|/gm)].map((
    m,
  ) => [m[1], m[2]]);
  const declared = [];
  for (const { load } of COMMANDS) declared.push(...permissionRows((await load()).spec));
  assert.deepEqual(table, declared);
});

Deno.test("cli: usage errors exit 2 with one line", async () => {
  const cases: [string[], RegExp][] = [
    [["frobnicate"], /unknown command: frobnicate/],
    [["get", "127.0.0.1"], /missing arguments: usage: fsd get/],
    [["get", "127.0.0.1", "1", "a", "b", "c"], /unexpected argument: c/],
    [["ls", "127.0.0.1", "1", "--bogus"], /unknown option '--bogus'/],
    [["serve", ".", "70000"], /invalid port: 70000/],
    [["serve", ".", "http"], /invalid port: http/],
    [["serve", ".", "-1"], /./],
    [["get", "127.0.0.1", "1", "x", "--timeout", "soon"], /invalid --timeout: soon/],
    [["serve", ".", "0", "--idle-timeout", "0"], /invalid --idle-timeout: 0/],
    [["put", "127.0.0.1", "1", "-"], /REMOTE is required when LOCAL is '-'/],
  ];
  for (const [args, pattern] of cases) {
    const result = await runFsd([], args);
    assert.equal(result.code, 2, `${args.join(" ")}: ${result.stderr}`);
    oneErrorLine(result.stderr, pattern);
  }
});

// ---- serve ----

Deno.test("serve: prints where it listens, with the port the system chose", async () => {
  await using dir = await tempDir();
  await using server = await spawnServe(dir.path);
  assert.equal(server.lines[0], `File server listening on 127.0.0.1 port ${server.port}`);
  assert.ok(server.port > 0);
});

Deno.test("serve: a taken port, a missing or non-directory DIR fail with one line", async () => {
  await using dir = await tempDir();
  const blocker = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const port = blocker.addr.port;
    const flags = [
      "--allow-net=127.0.0.1",
      `--allow-read=${dir.path}`,
      `--allow-write=${dir.path}`,
    ];
    const taken = await runFsd(flags, ["serve", dir.path, String(port), "--host", "127.0.0.1"]);
    assert.equal(taken.code, 1);
    oneErrorLine(taken.stderr, new RegExp(`Unable to bind to port ${port}\\. Sorry! \\(.+\\)`));
  } finally {
    blocker.close();
  }
  const flags = ["--allow-net=127.0.0.1", `--allow-read=${dir.path}`, `--allow-write=${dir.path}`];
  const missing = await runFsd(flags, ["serve", `${dir.path}/missing`, "0", "--host", "127.0.0.1"]);
  assert.equal(missing.code, 1);
  oneErrorLine(missing.stderr, /directory not found: .*missing/);
  await Deno.writeTextFile(`${dir.path}/file`, "x");
  const notDir = await runFsd(flags, ["serve", `${dir.path}/file`, "0", "--host", "127.0.0.1"]);
  assert.equal(notDir.code, 1);
  oneErrorLine(notDir.stderr, /not a directory: .*file/);
});

Deno.test("serve: stops on SIGTERM and SIGINT with status 0, and restarts on the same port", async () => {
  await using dir = await tempDir();
  const first = await spawnServe(dir.path);
  const client = await RawClient.greeted(first.port);
  const status = await first.stop("SIGTERM");
  assert.equal(status.code, 0);
  await client.expectClosed();
  client.close();
  const second = await spawnServe(dir.path, first.port);
  assert.equal(second.port, first.port);
  assert.equal((await second.stop("SIGINT")).code, 0);
});

Deno.test("serve: narrow permissions suffice; the greeting falls back to 'fsd' or uses --name", async () => {
  await using dir = await tempDir();
  await using plain = await spawnServe(dir.path);
  const a = await FsdClient.connect("127.0.0.1", plain.port);
  assert.equal(a.greeting, "Hello from fsd's fileserver");
  a.close();
  await using named = await spawnServe(dir.path, 0, ["--name", "lab1"]);
  const b = await FsdClient.connect("127.0.0.1", named.port);
  assert.equal(b.greeting, "Hello from lab1's fileserver");
  b.close();
});

Deno.test("serve: --idle-timeout closes silent connections, and the log says so", async () => {
  await using dir = await tempDir();
  await using server = await spawnServe(dir.path, 0, ["--idle-timeout", "0.2"]);
  await using client = await RawClient.greeted(server.port);
  await client.expectClosed();
  await server.waitForLine(/^\[1\] idle timeout; closing$/);
  assert.match(server.lines[1], /^\[1\] connection from 127\.0\.0\.1 port \d+$/);
});

// ---- get ----

Deno.test("get: to REMOTE's base name, to a LOCAL path, into a directory, to stdout", async () => {
  await using env = await servedAndWork();
  const content = randomBytes(3000, 1);
  await Deno.mkdir(`${env.served}/sub`);
  await Deno.writeFile(`${env.served}/sub/data.bin`, content);
  const flags = getFlags(env.port, env.work);

  const byName = await runFsd(flags, ["get", "127.0.0.1", String(env.port), "sub/data.bin"], {
    cwd: env.work,
  });
  assert.equal(byName.code, 0, byName.stderr);
  assert.equal(byName.stdout, "");
  assert.deepEqual(await Deno.readFile(`${env.work}/data.bin`), content);

  const byPath = await runFsd(flags, [
    "get",
    "127.0.0.1",
    String(env.port),
    "sub/data.bin",
    "copy.bin",
  ], {
    cwd: env.work,
  });
  assert.equal(byPath.code, 0, byPath.stderr);
  assert.deepEqual(await Deno.readFile(`${env.work}/copy.bin`), content);

  await Deno.mkdir(`${env.work}/into`);
  const intoDir = await runFsd(flags, [
    "get",
    "127.0.0.1",
    String(env.port),
    "sub/data.bin",
    "into",
  ], {
    cwd: env.work,
  });
  assert.equal(intoDir.code, 0, intoDir.stderr);
  assert.deepEqual(await Deno.readFile(`${env.work}/into/data.bin`), content);

  const stdout = await runFsd([net(env.port)], [
    "get",
    "127.0.0.1",
    String(env.port),
    "sub/data.bin",
    "-",
  ]);
  assert.equal(stdout.code, 0, stdout.stderr);
  assert.deepEqual(stdout.stdoutBytes, content);
  assert.deepEqual(await dirNames(env.work), ["copy.bin", "data.bin", "into"]);
});

Deno.test("get: refuses to replace LOCAL unless --force", async () => {
  await using env = await servedAndWork();
  await Deno.writeTextFile(`${env.served}/f.txt`, "new");
  await Deno.writeTextFile(`${env.work}/f.txt`, "old");
  const flags = getFlags(env.port, env.work);
  const refused = await runFsd(flags, ["get", "127.0.0.1", String(env.port), "f.txt"], {
    cwd: env.work,
  });
  assert.equal(refused.code, 1);
  oneErrorLine(refused.stderr, /file exists: f\.txt: use --force to replace it/);
  assert.equal(await Deno.readTextFile(`${env.work}/f.txt`), "old");
  const forced = await runFsd(flags, ["get", "127.0.0.1", String(env.port), "f.txt", "--force"], {
    cwd: env.work,
  });
  assert.equal(forced.code, 0, forced.stderr);
  assert.equal(await Deno.readTextFile(`${env.work}/f.txt`), "new");
  assert.deepEqual(await dirNames(env.work), ["f.txt"]);
});

Deno.test("get: the server's error text, exit 1, nothing left behind", async () => {
  await using env = await servedAndWork();
  const result = await runFsd(getFlags(env.port, env.work), [
    "get",
    "127.0.0.1",
    String(env.port),
    "nope.txt",
  ], {
    cwd: env.work,
  });
  assert.equal(result.code, 1);
  oneErrorLine(result.stderr, /^fsd: server error 1: file not found: nope\.txt$/);
  assert.deepEqual(await dirNames(env.work), []);
  await Deno.writeTextFile(`${env.served}/yes.txt`, "y");
  const noDir = await runFsd(getFlags(env.port, env.work), [
    "get",
    "127.0.0.1",
    String(env.port),
    "yes.txt",
    "no/such/file",
  ], {
    cwd: env.work,
  });
  assert.equal(noDir.code, 1);
  oneErrorLine(noDir.stderr, /^fsd: directory not found: no\/such$/);
});

Deno.test("get: a transfer cut off midway leaves no partial file", async () => {
  await using work = await tempDir();
  await using fake = fakeServer(async (conn) => {
    await conn.write(wire.dat(1, text.encode("Hello from fake's fileserver")));
    await readExactly(conn, 4 + 2 + "big".length + 1); // ACK 1, RRQ "big"
    for (let block = 1; block <= 3; block++) {
      await conn.write(wire.dat(block, new Uint8Array(512).fill(block)));
      await readExactly(conn, 4);
    }
    // and hang up
  });
  const result = await runFsd(getFlags(fake.port, work.path), [
    "get",
    "127.0.0.1",
    String(fake.port),
    "big",
    "--fsd1",
  ], {
    cwd: work.path,
  });
  assert.equal(result.code, 1);
  oneErrorLine(result.stderr, /connection closed while waiting for DAT 4/);
  assert.deepEqual(await dirNames(work.path), []);
});

Deno.test("get: SIGINT mid-transfer leaves no partial file", async () => {
  await using work = await tempDir();
  await using fake = stallingDownload(1);
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--quiet",
      ...getFlags(fake.port, work.path),
      MAIN,
      "get",
      "127.0.0.1",
      String(fake.port),
      "big",
      "--fsd1",
    ],
    cwd: work.path,
    stdout: "null",
    stderr: "piped",
  }).spawn();
  await fake.midway;
  assert.ok((await dirNames(work.path)).some((name) => name.startsWith(".fsd-download-")));
  child.kill("SIGINT");
  const output = await child.output();
  fake.release();
  assert.equal(output.code, 130);
  oneErrorLine(text.decode(output.stderr), /^fsd: interrupted by SIGINT$/);
  assert.deepEqual(await dirNames(work.path), []);
});

// ---- put ----

Deno.test("put: to LOCAL's base name, to a REMOTE path, from stdin", async () => {
  await using env = await servedAndWork();
  const content = randomBytes(2049, 4);
  await Deno.writeFile(`${env.work}/up.bin`, content);
  await Deno.mkdir(`${env.served}/incoming`);
  const file = `${env.work}/up.bin`;

  const plain = await runFsd(putFlags(env.port, file), [
    "put",
    "127.0.0.1",
    String(env.port),
    file,
  ]);
  assert.equal(plain.code, 0, plain.stderr);
  assert.deepEqual(await Deno.readFile(`${env.served}/up.bin`), content);

  const renamed = await runFsd(putFlags(env.port, file), [
    "put",
    "127.0.0.1",
    String(env.port),
    file,
    "incoming/x.bin",
  ]);
  assert.equal(renamed.code, 0, renamed.stderr);
  assert.deepEqual(await Deno.readFile(`${env.served}/incoming/x.bin`), content);

  const piped = await runFsd([net(env.port)], [
    "put",
    "127.0.0.1",
    String(env.port),
    "-",
    "piped.bin",
  ], {
    stdin: content,
  });
  assert.equal(piped.code, 0, piped.stderr);
  assert.deepEqual(await Deno.readFile(`${env.served}/piped.bin`), content);
});

Deno.test("put: an existing REMOTE or a missing LOCAL fails with one line", async () => {
  await using env = await servedAndWork();
  await Deno.writeTextFile(`${env.served}/taken`, "original");
  const file = `${env.work}/taken`;
  await Deno.writeTextFile(file, "mine");
  const exists = await runFsd(putFlags(env.port, file), [
    "put",
    "127.0.0.1",
    String(env.port),
    file,
  ]);
  assert.equal(exists.code, 1);
  oneErrorLine(exists.stderr, /^fsd: server error 6: file already exists: taken$/);
  assert.equal(await Deno.readTextFile(`${env.served}/taken`), "original");

  const missing = `${env.work}/missing`;
  const gone = await runFsd(putFlags(env.port, missing), [
    "put",
    "127.0.0.1",
    String(env.port),
    missing,
  ]);
  assert.equal(gone.code, 1);
  oneErrorLine(gone.stderr, /file not found: .*missing/);
});

// ---- ls ----

Deno.test("ls: the root, a subdirectory, and a file (its own line, as ls)", async () => {
  await using env = await servedAndWork();
  await Deno.writeFile(`${env.served}/a.txt`, new Uint8Array(10));
  await Deno.mkdir(`${env.served}/dir`);
  await Deno.writeFile(`${env.served}/dir/b.txt`, new Uint8Array(20));
  const root = await runFsd([net(env.port)], ["ls", "127.0.0.1", String(env.port)]);
  assert.equal(root.code, 0, root.stderr);
  const lines = root.stdout.trimEnd().split("\n");
  assert.equal(lines.length, 2);
  assert.match(lines[0], /^f 10 \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ a\.txt$/);
  assert.match(lines[1], /^d 0 \S+ dir$/);
  const sub = await runFsd([net(env.port)], ["ls", "127.0.0.1", String(env.port), "dir"]);
  assert.match(sub.stdout, /^f 20 \S+ b\.txt\n$/);
  const file = await runFsd([net(env.port)], ["ls", "127.0.0.1", String(env.port), "a.txt"]);
  assert.equal(file.code, 0, file.stderr);
  assert.match(file.stdout, /^f 10 \S+ a\.txt\n$/);
  const slash = await runFsd([net(env.port)], ["ls", "127.0.0.1", String(env.port), "a.txt/"]);
  assert.equal(slash.code, 1);
  oneErrorLine(slash.stderr, /not a directory: a\.txt/);
});

// ---- failures to reach a server ----

Deno.test("clients: a refused connection exits 1 with one line", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  for (const args of [["ls"], ["get", "x", "-"], ["put", "-", "x"]]) {
    const [command, ...rest] = args;
    const result = await runFsd([net(port)], [command, "127.0.0.1", String(port), ...rest], {
      stdin: command === "put" ? new Uint8Array(1) : undefined,
    });
    assert.equal(result.code, 1);
    oneErrorLine(
      result.stderr,
      new RegExp(`cannot connect to 127\\.0\\.0\\.1 port ${port}: connection refused`),
    );
  }
});

Deno.test("clients: --timeout gives up on a silent server", async () => {
  let release!: () => void;
  const released = new Promise<void>((resolve) => release = resolve);
  await using fake = fakeServer(() => released);
  const result = await runFsd([net(fake.port)], [
    "ls",
    "127.0.0.1",
    String(fake.port),
    "--timeout",
    "0.3",
  ]);
  release();
  assert.equal(result.code, 1);
  // TCP connected, so it is the (shorter of the greeting and --timeout) wait for a greeting that ends it.
  oneErrorLine(
    result.stderr,
    /port \d+: connected, but no fsd greeting within 0\.3 s: is it a TLS port\? \(add --tls, --ca FILE or --pin SHA256:\.\.\.\)$/,
  );
});

Deno.test("clients: many at once against one server", async () => {
  await using env = await servedAndWork();
  const content = randomBytes(20_000, 8);
  await Deno.writeFile(`${env.served}/shared.bin`, content);
  const results = await Promise.all(
    Array.from(
      { length: 8 },
      () => runFsd([net(env.port)], ["get", "127.0.0.1", String(env.port), "shared.bin", "-"]),
    ),
  );
  for (const result of results) {
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(result.stdoutBytes, content);
  }
});

// ---- IPv6, terminals ----

Deno.test("serve and clients over IPv6 loopback", async () => {
  await using served = await tempDir();
  await Deno.writeTextFile(`${served.path}/six.txt`, "over ::1");
  await using server = await spawnServe(served.path, 0, ["--host", "::1"]);
  assert.equal(server.lines[0], `File server listening on ::1 port ${server.port}`);
  const flags = [`--allow-net=[::1]:${server.port}`];
  const listed = await runFsd(flags, ["ls", "::1", String(server.port)]);
  assert.equal(listed.code, 0, listed.stderr);
  assert.match(listed.stdout, /^f 8 \S+ six\.txt\n$/);
  const got = await runFsd(flags, ["get", "::1", String(server.port), "six.txt", "-"]);
  assert.equal(got.stdout, "over ::1");
  await server.waitForLine(/^\[1\] connection from ::1 port \d+$/);
});

Deno.test({
  name: "get prints a summary only when stderr is a terminal",
  ...needs("script"),
  fn: async () => {
    assertTools("script");
    await using env = await servedAndWork();
    await Deno.writeTextFile(`${env.served}/f.txt`, "x".repeat(1000));
    const plain = await runFsd(getFlags(env.port, env.work), [
      "get",
      "127.0.0.1",
      String(env.port),
      "f.txt",
    ], {
      cwd: env.work,
    });
    assert.equal(plain.code, 0);
    assert.equal(plain.stderr, "");
    // script(1) runs the command on a pseudo-terminal.
    const command = [
      Deno.execPath(),
      "run",
      "--quiet",
      ...getFlags(env.port, env.work),
      MAIN,
      "get",
      "127.0.0.1",
      String(env.port),
      "f.txt",
      "g.txt",
    ];
    const onTerminal = await new Deno.Command("script", {
      args: ["-qec", command.map((arg) => `'${arg}'`).join(" "), "/dev/null"],
      cwd: env.work,
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(onTerminal.code, 0, text.decode(onTerminal.stderr));
    assert.match(
      text.decode(onTerminal.stdout),
      /received f\.txt as g\.txt: 1000 bytes in [\d.]+ s/,
    );
    assert.equal(await Deno.readTextFile(`${env.work}/g.txt`), "x".repeat(1000));
  },
});
