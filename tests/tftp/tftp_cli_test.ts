/**
 * TFTP from the command line: `fsd serve --tftp` beside fsd/1 with the
 * documented permissions, JSON logs, --tftp-port-range, usage errors,
 * graceful shutdown; `fsd get/put tftp://` local-file rules and exit codes.
 */

import assert from "node:assert/strict";
import { MAIN, runFsd, rw, spawnFsd } from "../support/cli.ts";
import { randomBytes, tempDir } from "../support/files.ts";
import { RawPeer, tftp } from "../support/tftp.ts";

function serve(dir: string, extra: string[]) {
  return spawnFsd(
    ["serve", dir, "0", "--host", "127.0.0.1", ...extra],
    ["--allow-net", `--allow-read=${dir}`, `--allow-write=${dir}`],
    /^TFTP server listening on |"event":"listening","transport":"tftp"/,
  );
}

Deno.test("cli: fsd serve --tftp beside fsd/1, JSON log, port range, graceful stop", async () => {
  await using served = await tempDir();
  await using local = await tempDir();
  await Deno.writeFile(`${served.path}/f`, randomBytes(5000));
  const range = [41000 + Math.floor(Math.random() * 1000)];
  range.push(range[0] + 20);
  await using server = await serve(served.path, [
    "--tftp",
    "0",
    "--log",
    "json",
    "--tftp-port-range",
    `${range[0]}:${range[1]}`,
  ]);
  // --log json: the listening lines are JSON too
  assert.ok(
    server.lines.some((line) =>
      /"event":"listening","transport":"fsd","address":"127\.0\.0\.1"/.test(line)
    ),
  );
  // The documented narrow permissions for a server on loopback.
  const permissions = [
    "--allow-net=127.0.0.1",
    `--allow-read=${local.path}`,
    `--allow-write=${local.path}`,
  ];
  const url = `tftp://127.0.0.1:${server.port}/f`;
  const narrower = await runFsd(["--allow-net=127.0.0.1:" + server.port], ["get", url, "-"]);
  assert.equal(narrower.code, 1);
  assert.match(narrower.stderr, /cannot bind UDP 127.0.0.1 port 0: needs --allow-net=127.0.0.1/);
  const got = await runFsd(permissions, ["get", url, `${local.path}/f`]);
  assert.equal(got.code, 0, got.stderr);
  assert.deepEqual(await Deno.readFile(`${local.path}/f`), randomBytes(5000));
  // The same name again: the local file is not replaced without --force (exit 1).
  const again = await runFsd(permissions, ["get", url, `${local.path}/f`]);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /file exists: .*--force/);
  const put = await runFsd(permissions, [
    "put",
    `tftp://127.0.0.1:${server.port}/`,
    `${local.path}/f`,
  ]);
  assert.equal(put.code, 1); // f exists on the server: never replaced
  assert.match(put.stderr, /server error 6: File already exists/);
  // Each transfer's port comes from the range.
  await using peer = await RawPeer.open();
  await peer.send(tftp.rrq("f"), server.port);
  const first = await peer.receive();
  assert.ok(first.port >= range[0] && first.port <= range[1], `port ${first.port}`);
  await peer.send(tftp.error(0, "enough"), first.port);
  const line = await server.waitForLine(/"event":"connection".*"transport":"tftp"/);
  assert.equal(JSON.parse(line).event, "connection");
  await server.waitForLine(/"event":"request".*"op":"RRQ".*"outcome":"ok"/);
  const status = await server.stop("SIGTERM");
  assert.equal(status.code, 0);
});

Deno.test("cli: --tftp-only serves no fsd/1; --read-only refuses TFTP uploads", async () => {
  await using served = await tempDir();
  await using server = await serve(served.path, ["--tftp-only", "--read-only"]);
  assert.ok(!server.lines.some((line) => /^File server listening|"transport":"fsd"/.test(line)));
  await using peer = await RawPeer.open();
  await peer.send(tftp.wrq("new"), server.port);
  assert.equal(await peer.expectError(2), "Access violation");
  await server.waitForLine(/WRQ "new": refused with error 2: .*read-only/);
});

Deno.test("cli: TFTP usage errors exit 2", async () => {
  await using dir = await tempDir();
  const cases: [string[], RegExp][] = [
    [["serve", dir.path, "0", "--tftp-no-upload"], /need --tftp UDPPORT or --tftp-only/],
    [["serve", dir.path, "0", "--tftp", "70000"], /invalid port/],
    [
      ["serve", dir.path, "0", "--tftp", "0", "--tftp-port-range", "9:1"],
      /invalid --tftp-port-range/,
    ],
    [
      ["serve", dir.path, "0", "--tftp", "0", "--tftp-max-blksize", "7"],
      /invalid --tftp-max-blksize/,
    ],
    [["get", "tftp://"], /invalid TFTP URL/],
    [["get", "tftp://127.0.0.1:1/dir/"], /no file named/],
    [["get", "tftp://127.0.0.1/f", "--blksize", "70000"], /invalid --blksize/],
    [["put", "tftp://127.0.0.1/", "-"], /REMOTE is required/],
    [["proxy", "--udp", "0", "127.0.0.1", "69", "--drop", "2"], /invalid --drop/],
  ];
  for (const [args, message] of cases) {
    const result = await runFsd([
      "--allow-net",
      `--allow-read=${dir.path}`,
      `--allow-write=${dir.path}`,
    ], args);
    assert.equal(result.code, 2, `${args.join(" ")}: ${result.stderr}`);
    assert.match(result.stderr, message);
  }
});

Deno.test("cli: fsd get over TFTP from a missing server times out with exit 1", async () => {
  await using peer = await RawPeer.open(); // a port where nobody answers
  const result = await runFsd(["--allow-net"], [
    "get",
    `tftp://127.0.0.1:${peer.port}/f`,
    "-",
    "--timeout",
    "1",
  ]);
  assert.equal(result.code, 1);
  assert.match(result.stderr, /timed out/);
});

for (const ffi of [[], ["--allow-ffi"]]) {
  const how = ffi.length ? " (--allow-ffi: the client's blocking socket)" : "";

  Deno.test(`cli: Ctrl-C during a TFTP download exits 130 and leaves nothing behind${how}`, async () => {
    await using local = await tempDir();
    await using peer = await RawPeer.open(); // takes the request, never answers
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--quiet",
        "--allow-net",
        `--allow-read=${local.path}`,
        `--allow-write=${local.path}`,
        ...ffi,
        MAIN,
        "get",
        `tftp://127.0.0.1:${peer.port}/f`,
        `${local.path}/f`,
      ],
      stdout: "null",
      stderr: "piped",
    }).spawn();
    await peer.receive(); // the RRQ: the download is under way, its staging file made
    child.kill("SIGINT");
    const output = await child.output();
    assert.equal(output.code, 130); // 128 + SIGINT, as over fsd/1
    assert.match(new TextDecoder().decode(output.stderr), /interrupted by SIGINT/);
    assert.deepEqual(await Array.fromAsync(Deno.readDir(local.path)), []);
  });

  Deno.test(`cli: a dead TFTP port fails within --timeout: one RRQ for --timeout 0.3, none after${how}`, async () => {
    await using peer = await RawPeer.open(); // takes the request, never answers
    const run = runFsd(["--allow-net", ...ffi], [
      "get",
      `tftp://127.0.0.1:${peer.port}/f`,
      "-",
      "--timeout",
      "0.3",
    ]);
    assert.equal((await peer.receive()).packet.op, "?"); // the RRQ (opcode 1: not a reply kind)
    const result = await run;
    assert.equal(result.code, 1);
    assert.match(result.stderr, /timed out/);
    assert.equal(await peer.receiveOrNull(0), null, "no request resent past --timeout");
  });
}

Deno.test("cli: get over TFTP takes -o, --jobs, --json, --sha256 and --continue", async () => {
  await using served = await tempDir();
  await using local = await tempDir();
  await using server = await serve(served.path, ["--tftp-only"]);
  const a = randomBytes(3000, 1);
  const b = randomBytes(70_000, 2);
  await Deno.writeFile(`${served.path}/a.bin`, a);
  await Deno.writeFile(`${served.path}/b.bin`, b);
  const url = (name: string) => `tftp://127.0.0.1:${server.port}/${name}`;
  const permissions = ["--allow-net", `--allow-read=${local.path}`, `--allow-write=${local.path}`];
  // -o DIR with several URLs, one JSON line per file in their order, a missing one failed.
  const many = await runFsd(permissions, [
    "get",
    url("a.bin"),
    url("nope"),
    url("b.bin"),
    "-o",
    `${local.path}/in`,
    "--json",
    "--jobs",
    "3", // three transfers at once; the reports still come in the order of the names
  ]);
  assert.equal(many.code, 1, many.stderr);
  const lines = many.stdout.trim().split("\n").map((line) => JSON.parse(line));
  assert.deepEqual(lines.map((l) => [l.name, l.outcome]), [
    ["a.bin", "ok"],
    ["nope", "failed"],
    ["b.bin", "ok"],
  ]);
  assert.equal(lines[1].error, "server error 1: File not found");
  assert.deepEqual(await Deno.readFile(`${local.path}/in/a.bin`), a);
  assert.deepEqual(await Deno.readFile(`${local.path}/in/b.bin`), b);
  // --tftp form: HOST PORT and several names.
  const hostPort = await runFsd(permissions, [
    "get",
    "127.0.0.1",
    `${server.port}`,
    "a.bin",
    "b.bin",
    "-o",
    `${local.path}/again`,
    "--tftp",
  ]);
  assert.equal(hostPort.code, 0, hostPort.stderr);
  assert.deepEqual(await Deno.readFile(`${local.path}/again/b.bin`), b);
  // --sha256: the right digest keeps the file, a wrong one keeps nothing.
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new Uint8Array(b)));
  const hex = [...digest].map((x) => x.toString(16).padStart(2, "0")).join("");
  const good = await runFsd(permissions, [
    "get",
    url("b.bin"),
    `${local.path}/good.bin`,
    "--sha256",
    hex,
    "--json",
  ]);
  assert.equal(good.code, 0, good.stderr);
  assert.equal(JSON.parse(good.stdout).sha256, hex);
  const bad = await runFsd(permissions, [
    "get",
    url("a.bin"),
    `${local.path}/bad.bin`,
    "--sha256",
    hex,
  ]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /sha256 mismatch/);
  // --continue is taken (TFTP starts the file over).
  const resumed = await runFsd(permissions, [
    "get",
    url("a.bin"),
    `${local.path}/c.bin`,
    "--continue",
  ]);
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.deepEqual(await Deno.readFile(`${local.path}/c.bin`), a);
  const names = (await Array.fromAsync(Deno.readDir(local.path))).map((e) => e.name).sort();
  assert.deepEqual(names, ["again", "c.bin", "good.bin", "in"]);
});

Deno.test("cli: put over TFTP takes -o REMOTEDIR and --json", async () => {
  await using served = await tempDir();
  await using local = await tempDir();
  await Deno.mkdir(`${served.path}/up`);
  await using server = await serve(served.path, ["--tftp-only"]);
  const a = randomBytes(2000, 3);
  await Deno.writeFile(`${local.path}/a.bin`, a);
  await Deno.writeFile(`${local.path}/b.bin`, a);
  await Deno.writeFile(`${served.path}/up/b.bin`, new Uint8Array(1)); // taken: refused
  const result = await runFsd(["--allow-net", `--allow-read=${local.path}`], [
    "put",
    `tftp://127.0.0.1:${server.port}`,
    `${local.path}/a.bin`,
    `${local.path}/b.bin`,
    "-o",
    "up",
    "--json",
  ]);
  assert.equal(result.code, 1, result.stderr);
  const lines = result.stdout.trim().split("\n").map((line) => JSON.parse(line));
  assert.deepEqual(lines.map((l) => [l.name, l.outcome, l.error]), [
    ["up/a.bin", "ok", undefined],
    ["up/b.bin", "failed", "server error 6: File already exists"],
  ]);
  assert.deepEqual(await Deno.readFile(`${served.path}/up/a.bin`), a);
  const one = await runFsd(["--allow-net", `--allow-read=${local.path}`], [
    "put",
    "127.0.0.1",
    `${server.port}`,
    `${local.path}/a.bin`,
    "one.bin",
    "--tftp",
    "--json",
  ]);
  assert.equal(one.code, 0, one.stderr);
  assert.equal(JSON.parse(one.stdout).bytes, 2000);
  assert.deepEqual(await Deno.readFile(`${served.path}/one.bin`), a);
});

Deno.test("cli: between fsd's own ends the window slides both ways (ackevery in the OACK and the log); --window 1 is lock-step", async () => {
  await using served = await tempDir();
  await using local = await tempDir();
  const data = randomBytes(300_000, 31);
  await Deno.writeFile(`${served.path}/f`, data);
  await Deno.writeFile(`${local.path}/up`, data);
  await using server = await serve(served.path, ["--tftp-only"]);
  const permissions = ["--allow-net=127.0.0.1", ...rw(local.path)];
  const url = `tftp://127.0.0.1:${server.port}`;
  const got = await runFsd(permissions, ["get", `${url}/f`, `${local.path}/f`, "--trace", "fsd"]);
  assert.equal(got.code, 0, got.stderr);
  assert.deepEqual(await Deno.readFile(`${local.path}/f`), data);
  // The same with the client's blocking socket (--allow-ffi, as README's install line gives).
  const blocking = await runFsd([...permissions, "--allow-ffi"], ["get", `${url}/f`, "-"]);
  assert.equal(blocking.code, 0, blocking.stderr);
  assert.deepEqual(blocking.stdoutBytes, data);
  assert.match(got.stderr, /RRQ "f" blksize=65464 tsize=0 windowsize=3 ackevery=1/);
  assert.match(got.stderr, /OACK blksize=65464 tsize=300000 windowsize=3 ackevery=1/);
  await server.waitForLine(
    /RRQ "f": sent file, 300000 bytes .*\(blksize 65464, windowsize 3, ackevery 1\)$/,
  );
  const put = await runFsd(permissions, ["put", `${url}/up`, `${local.path}/up`, "--window", "2"]);
  assert.equal(put.code, 0, put.stderr);
  assert.deepEqual(await Deno.readFile(`${served.path}/up`), data);
  await server.waitForLine(
    /WRQ "up": received file, 300000 bytes .*\(blksize 65464, windowsize 2, ackevery 1\)$/,
  );
  // A window of one asks for no ackevery: RFC 1350's lock-step, as any server would give.
  const lockStep = await runFsd(permissions, [
    "get",
    `${url}/f`,
    "-",
    "--window",
    "1",
    "--trace",
    "fsd",
  ]);
  assert.equal(lockStep.code, 0, lockStep.stderr);
  assert.doesNotMatch(lockStep.stderr, /ackevery/);
  await server.waitForLine(/RRQ "f": sent file, 300000 bytes .*\(blksize 65464, windowsize 1\)$/);
});
