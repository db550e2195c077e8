/**
 * The rough edges a new user hit with get, put and ls, each run as a
 * subprocess with its documented permission flags: stop signals, a
 * directory as REMOTE, LOCAL ending in '/', a closed stdout, special
 * files, names as a shell user types them, services that are not fsd, and
 * option edges.
 */

import assert from "node:assert/strict";
import { assertTools, needs } from "../support/tools.ts";
import { MAIN, net, oneErrorLine, runFsd, rw, servedAndWork, spawnReady } from "../support/cli.ts";
import { dirNames, randomBytes, tempDir, text } from "../support/files.ts";
import { fakeServer, readExactly, stallingDownload, wire } from "../support/raw_client.ts";

/** Starts the CLI and returns the child, stderr piped. */
function spawnCli(permissions: string[], args: string[], cwd: string) {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", "--no-prompt", ...permissions, MAIN, ...args],
    cwd,
    stdout: "null",
    stderr: "piped",
  }).spawn();
}

const GREETING = wire.dat(1, text.encode("Hello from fake's fileserver"));

Deno.test("get and put: SIGINT, SIGTERM and SIGHUP end with one fsd: line, 128+N, nothing left", async () => {
  const signals: [Deno.Signal, number][] = [["SIGINT", 130], ["SIGTERM", 143], ["SIGHUP", 129]];
  for (const [signal, status] of signals) {
    // get: the server sends one block of "big", then stalls.
    await using work = await tempDir();
    await using fake = stallingDownload(1);
    const get = spawnCli([net(fake.port), ...rw(work.path)], [
      "get",
      "127.0.0.1",
      String(fake.port),
      "big",
      "--fsd1",
    ], work.path);
    await fake.midway;
    assert.ok((await dirNames(work.path)).some((name) => name.startsWith(".fsd-download-")));
    get.kill(signal);
    const got = await get.output();
    fake.release();
    assert.equal(got.code, status, `get ${signal}`);
    oneErrorLine(text.decode(got.stderr), new RegExp(`^fsd: interrupted by ${signal}$`));
    assert.deepEqual(await dirNames(work.path), [], `get ${signal} left a staging file`);

    // put: the server takes the first block of "up.bin", then stalls.
    const file = `${work.path}/up.bin`;
    await Deno.writeFile(file, randomBytes(4096));
    let took!: () => void;
    const tookOne = new Promise<void>((resolve) => took = resolve);
    let free!: () => void;
    const freed = new Promise<void>((resolve) => free = resolve);
    await using sink = fakeServer(async (conn) => {
      await conn.write(GREETING);
      await readExactly(conn, 4 + 2 + "up.bin".length + 1);
      await conn.write(wire.ack(0));
      await readExactly(conn, 6 + 512);
      took();
      await freed;
    });
    const put = spawnCli([net(sink.port), `--allow-read=${file}`], [
      "put",
      "127.0.0.1",
      String(sink.port),
      file,
      "--fsd1",
    ], work.path);
    await tookOne;
    put.kill(signal);
    const sent = await put.output();
    free();
    assert.equal(sent.code, status, `put ${signal}`);
    oneErrorLine(text.decode(sent.stderr), new RegExp(`^fsd: interrupted by ${signal}$`));
  }
});

Deno.test("get: a directory as REMOTE is refused with a hint to -r or ls, and nothing is saved", async () => {
  await using env = await servedAndWork();
  await Deno.mkdir(`${env.served}/somedir`);
  for (const typed of ["somedir", "somedir/", "."]) {
    const result = await runFsd([net(env.port), ...rw(env.work)], [
      "get",
      "127.0.0.1",
      String(env.port),
      typed,
    ], { cwd: env.work });
    assert.equal(result.code, 1, typed);
    oneErrorLine(result.stderr, /is a directory: use fsd get -r to copy it, or fsd ls to list it$/);
  }
  assert.deepEqual(await dirNames(env.work), []);
});

Deno.test("get: a LOCAL ending in '/' must be an existing directory", async () => {
  await using env = await servedAndWork();
  await Deno.writeTextFile(`${env.served}/file`, "data");
  const missing = await runFsd([net(env.port), ...rw(env.work)], [
    "get",
    "127.0.0.1",
    String(env.port),
    "file",
    `${env.work}/newdir/`,
  ]);
  assert.equal(missing.code, 1);
  oneErrorLine(missing.stderr, /^fsd: directory not found: .*newdir\/: create it first$/);
  assert.deepEqual(await dirNames(env.work), []);
  await Deno.mkdir(`${env.work}/newdir`);
  const into = await runFsd([net(env.port), ...rw(env.work)], [
    "get",
    "127.0.0.1",
    String(env.port),
    "file",
    `${env.work}/newdir/`,
  ]);
  assert.equal(into.code, 0, into.stderr);
  assert.equal(await Deno.readTextFile(`${env.work}/newdir/file`), "data");
});

Deno.test("get: a closed stdout ends quietly, as cat does (141, nothing on stderr)", async () => {
  await using env = await servedAndWork();
  await Deno.writeFile(`${env.served}/big`, randomBytes(4 * 1024 * 1024));
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", net(env.port), MAIN, "get", "127.0.0.1", String(env.port), "big", "-"],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const reader = child.stdout.getReader();
  await reader.read(); // some bytes arrived: now close the pipe, as `head -c 10` does
  await reader.cancel();
  const output = await child.output().catch(async () => {
    const status = await child.status;
    return {
      code: status.code,
      stderr: new Uint8Array(await new Response(child.stderr).arrayBuffer()),
    };
  });
  assert.equal(output.code, 141);
  assert.equal(text.decode(output.stderr), "");
});

Deno.test("get and put: special files are written and read directly, without staging", async () => {
  await using env = await servedAndWork();
  const content = randomBytes(70_000, 5);
  await Deno.writeFile(`${env.served}/data`, content);
  const toNull = await runFsd(
    [net(env.port), "--allow-read=/dev/null", "--allow-write=/dev/null"],
    [
      "get",
      "127.0.0.1",
      String(env.port),
      "data",
      "/dev/null",
    ],
  );
  assert.equal(toNull.code, 0, toNull.stderr);
  assert.ok((await Deno.stat("/dev/null")).isCharDevice, "/dev/null is still a device");

  // A FIFO: written directly on get, read as a stream on put.
  const fifo = `${env.work}/fifo`;
  await new Deno.Command("mkfifo", { args: [fifo] }).output();
  const reading = Deno.readFile(fifo);
  const toFifo = await runFsd([net(env.port), ...rw(env.work)], [
    "get",
    "127.0.0.1",
    String(env.port),
    "data",
    fifo,
  ]);
  assert.equal(toFifo.code, 0, toFifo.stderr);
  assert.deepEqual(await reading, content);
  assert.deepEqual(await dirNames(env.work), ["fifo"]);

  const writing = Deno.writeFile(fifo, content);
  const fromFifo = await runFsd([net(env.port), `--allow-read=${fifo}`], [
    "put",
    "127.0.0.1",
    String(env.port),
    fifo,
    "from-fifo",
  ]);
  await writing;
  assert.equal(fromFifo.code, 0, fromFifo.stderr);
  assert.deepEqual(await Deno.readFile(`${env.served}/from-fifo`), content);
});

Deno.test("clients: './a', 'dir/' and '.' are normalised; put FILE dir/ means into dir", async () => {
  await using env = await servedAndWork();
  await Deno.writeTextFile(`${env.served}/a.txt`, "a");
  await Deno.mkdir(`${env.served}/dir`);
  await Deno.writeTextFile(`${env.served}/dir/b.txt`, "b");
  const dotSlash = await runFsd([net(env.port), ...rw(env.work)], [
    "get",
    "127.0.0.1",
    String(env.port),
    "./a.txt",
  ], { cwd: env.work });
  assert.equal(dotSlash.code, 0, dotSlash.stderr);
  assert.equal(await Deno.readTextFile(`${env.work}/a.txt`), "a");
  for (
    const [typed, names] of [["dir/", ["b.txt"]], [".", ["a.txt", "dir"]], ["./dir", ["b.txt"]]]
  ) {
    const listed = await runFsd([net(env.port)], [
      "ls",
      "127.0.0.1",
      String(env.port),
      typed as string,
    ]);
    assert.equal(listed.code, 0, listed.stderr);
    assert.deepEqual(listed.stdout.trimEnd().split("\n").map((l) => l.split(" ")[3]), names);
  }
  const file = `${env.work}/a.txt`;
  const into = await runFsd([net(env.port), `--allow-read=${file}`], [
    "put",
    "127.0.0.1",
    String(env.port),
    file,
    "dir/",
  ]);
  assert.equal(into.code, 0, into.stderr);
  assert.equal(await Deno.readTextFile(`${env.served}/dir/a.txt`), "a");
});

Deno.test("clients: a silent listener, an HTTP server and an SSH daemon are named for what they are", async () => {
  let release!: () => void;
  const released = new Promise<void>((resolve) => release = resolve);
  await using silent = fakeServer(() => released);
  const quiet = await runFsd([net(silent.port)], ["ls", "127.0.0.1", String(silent.port)]);
  release();
  assert.equal(quiet.code, 1);
  oneErrorLine(
    quiet.stderr,
    /^fsd: 127\.0\.0\.1 port \d+: connected, but no fsd greeting within 5 s: is it a TLS port\? \(add --tls, --ca FILE or --pin SHA256:\.\.\.\)$/,
  );

  await using ssh = fakeServer(async (conn) => {
    await conn.write(text.encode("SSH-2.0-OpenSSH_9.6p1 Debian-4\r\n"));
    await readExactly(conn, 1);
  });
  const banner = await runFsd([net(ssh.port)], ["ls", "127.0.0.1", String(ssh.port)]);
  assert.equal(banner.code, 1);
  oneErrorLine(
    banner.stderr,
    /^fsd: 127\.0\.0\.1 port \d+: this is not an fsd server \(it sent: SSH-2\.0-OpenSSH_9\.6p1 Debian-4\)$/,
  );
});

Deno.test({
  name: "clients: an HTTP server (python3 -m http.server) gets no fsd greeting",
  ...needs("python3"),
  fn: async () => {
    assertTools("python3");
    await using dir = await tempDir();
    // port 0, read back from its "Serving HTTP on 127.0.0.1 port N" line (-u: not buffered in a pipe)
    const args = ["-u", "-m", "http.server", "0", "--bind", "127.0.0.1", "--directory", dir.path];
    await using http = await spawnReady("python3", args, /^Serving HTTP on .* port \d+/);
    const port = http.port;
    const result = await runFsd([net(port)], ["ls", "127.0.0.1", String(port), "--timeout", "1"]);
    assert.equal(result.code, 1);
    oneErrorLine(
      result.stderr,
      /connected, but no fsd greeting within 1 s: is it a TLS port\? \(add --tls, --ca FILE or --pin SHA256:\.\.\.\)$/,
    );
  },
});

Deno.test("cli: --timeout 0 says the range, client port 0 is a usage error, no arguments print help", async () => {
  const zero = await runFsd([], ["get", "127.0.0.1", "10000", "x", "--timeout", "0"]);
  assert.equal(zero.code, 2);
  oneErrorLine(
    zero.stderr,
    /^fsd: invalid --timeout: 0: out of range: expected a number of seconds from 0\.001 to 86400$/,
  );
  for (const command of ["get", "put", "ls"]) {
    const port0 = await runFsd([], [command, "127.0.0.1", "0", "x"]);
    assert.equal(port0.code, 2, command);
    oneErrorLine(port0.stderr, /^fsd: invalid port: 0: expected a number from 1 to 65535$/);
  }
  const bare = await runFsd([], []);
  assert.equal(bare.code, 2);
  assert.equal(bare.stdout, "");
  assert.match(bare.stderr, /^fsd \d+\.\d+\.\d+: .*\n\nUsage: fsd COMMAND/);
});
