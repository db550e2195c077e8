/**
 * Many files and whole trees in one command, machine-readable output,
 * end-to-end integrity and resume: the CLI as a subprocess with its
 * documented flags against an in-process server (whose log shows how many
 * connections a job used), and the extension's new options on the wire.
 */

import assert from "node:assert/strict";
import { assertTools, needs } from "../support/tools.ts";
import { createHash } from "node:crypto";
import { Relay } from "../../lib/relay/relay.ts";
import { getInto, jsonLines, MAIN, net, runFsd, rw } from "../support/cli.ts";
import { dirNames, randomBytes, tempDir, text } from "../support/files.ts";
import { RawClient, stallingDownload, wire } from "../support/raw_client.ts";
import { connections, startServer } from "../support/server.ts";

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

Deno.test("get -o --jobs 1: several files on one connection; a missing one is listed and the exit is 1", async () => {
  await using ctx = await startServer();
  await using work = await tempDir();
  for (let i = 0; i < 5; i++) await Deno.writeFile(`${ctx.root}/f${i}`, randomBytes(1000 + i, i));
  const names = ["f0", "f1", "nope", "f2", "f3", "f4"];
  const result = await getInto(ctx.port, work.path, names, ["--jobs", "1"]);
  assert.equal(result.code, 1);
  assert.match(
    result.stderr,
    // in a script: the failures, no summary (-v prints it)
    /^ {2}failed: nope: server error 1: file not found: nope\nfsd: 1 of 6 failed\n$/,
  );
  for (let i = 0; i < 5; i++) {
    assert.deepEqual(await Deno.readFile(`${work.path}/in/f${i}`), randomBytes(1000 + i, i));
  }
  assert.deepEqual(await dirNames(`${work.path}/in`), ["f0", "f1", "f2", "f3", "f4"]);
  assert.equal(connections(ctx.logs), 1, ctx.logs.join("\n"));
});

Deno.test("get -o: a name already in DIR, or given by an earlier file of the job, fails as 'file exists' and is never replaced", async () => {
  await using ctx = await startServer();
  await using work = await tempDir();
  await Deno.mkdir(`${ctx.root}/sub`);
  for (let i = 0; i < 4; i++) await Deno.writeFile(`${ctx.root}/f${i}`, randomBytes(500 + i, i));
  await Deno.writeFile(`${ctx.root}/sub/f0`, randomBytes(700, 9));
  await Deno.mkdir(`${work.path}/in`);
  await Deno.writeTextFile(`${work.path}/in/f2`, "mine");
  const result = await getInto(ctx.port, work.path, ["f0", "f1", "f2", "f3", "sub/f0"]);
  assert.equal(result.code, 1, result.stderr);
  const failed = result.stderr.split("\n").filter((line) => line.includes("failed:"));
  assert.equal(failed.length, 2, result.stderr);
  assert.match(result.stderr, /failed: f2: file exists: .*\/in\/f2: use --force to replace it/);
  // f0 and sub/f0 share a local name: one of them arrives whole, the other fails
  assert.match(result.stderr, /failed: (sub\/)?f0: file exists: .*\/in\/f0: use --force/);
  assert.match(result.stderr, /fsd: 2 of 5 failed/);
  assert.equal(await Deno.readTextFile(`${work.path}/in/f2`), "mine");
  const f0 = await Deno.readFile(`${work.path}/in/f0`);
  assert.ok(
    [randomBytes(500, 0), randomBytes(700, 9)].some((bytes) =>
      bytes.length === f0.length && bytes.every((b, i) => b === f0[i])
    ),
    "in/f0 is one of the two files, whole",
  );
  assert.deepEqual(await Deno.readFile(`${work.path}/in/f1`), randomBytes(501, 1));
  assert.deepEqual(await Deno.readFile(`${work.path}/in/f3`), randomBytes(503, 3));
  assert.deepEqual(await dirNames(`${work.path}/in`), ["f0", "f1", "f2", "f3"]);
});

Deno.test("put -o --jobs 1: several files into REMOTEDIR (made when missing) on one connection, --json", async () => {
  await using ctx = await startServer();
  await using work = await tempDir();
  const files = [0, 1, 2].map((i) => `${work.path}/u${i} with space`);
  for (const [i, file] of files.entries()) await Deno.writeFile(file, randomBytes(700 * i, i));
  const result = await runFsd([net(ctx.port), `--allow-read=${work.path}`], [
    "put",
    "127.0.0.1",
    String(ctx.port),
    ...files,
    "-o",
    "drop/",
    "--json",
    "--integrity",
    "sha256",
    "--jobs",
    "1",
  ]);
  assert.equal(result.code, 0, result.stderr);
  const reports = jsonLines(result.stdout);
  assert.deepEqual(reports.map((r) => [r.name, r.kind, r.size, r.bytes, r.outcome, r.verified]), [
    ["drop/u0 with space", "file", 0, 0, "ok", true],
    ["drop/u1 with space", "file", 700, 700, "ok", true],
    ["drop/u2 with space", "file", 1400, 1400, "ok", true],
  ]);
  assert.ok(reports.every((r) => typeof r.seconds === "number" && /^[0-9a-f]{64}$/.test(r.sha256)));
  assert.equal(reports[2].sha256, sha256(randomBytes(1400, 2)));
  for (const [i] of files.entries()) {
    assert.deepEqual(
      await Deno.readFile(`${ctx.root}/drop/u${i} with space`),
      randomBytes(700 * i, i),
    );
  }
  assert.equal(connections(ctx.logs), 1);
});

async function makeTree(root: string): Promise<void> {
  await Deno.mkdir(`${root}/tree/sub dir/deeper`, { recursive: true });
  await Deno.mkdir(`${root}/tree/empty`);
  await Deno.writeFile(`${root}/tree/a.bin`, randomBytes(100_000, 1));
  await Deno.writeFile(`${root}/tree/sub dir/b c.txt`, text.encode("b c"));
  await Deno.writeFile(`${root}/tree/sub dir/deeper/d`, randomBytes(3, 4));
}

async function assertSameTree(a: string, b: string): Promise<void> {
  assert.deepEqual(await dirNames(a), await dirNames(b), `${a} vs ${b}`);
  for (const name of await dirNames(a)) {
    const info = await Deno.stat(`${a}/${name}`);
    if (info.isDirectory) await assertSameTree(`${a}/${name}`, `${b}/${name}`);
    else assert.deepEqual(await Deno.readFile(`${a}/${name}`), await Deno.readFile(`${b}/${name}`));
  }
}

Deno.test("get -r and put -r --jobs 1: a tree both ways, named as cp -r names it, on one connection each", async () => {
  await using ctx = await startServer();
  await using work = await tempDir();
  await makeTree(ctx.root);
  const got = await runFsd([net(ctx.port), ...rw(work.path)], [
    "get",
    "-r",
    "127.0.0.1",
    String(ctx.port),
    "tree",
    "--json",
    "--jobs=1",
  ], { cwd: work.path });
  assert.equal(got.code, 0, got.stderr);
  await assertSameTree(`${ctx.root}/tree`, `${work.path}/tree`);
  const reports = jsonLines(got.stdout);
  assert.deepEqual(
    reports.filter((r) => r.kind === "file").map((r) => r.name).sort(),
    ["tree/a.bin", "tree/sub dir/b c.txt", "tree/sub dir/deeper/d"],
  );
  assert.ok(reports.every((r) => r.outcome === "ok"));
  assert.equal(connections(ctx.logs), 1);

  // Into an existing LOCALDIR: as cp -r, the copy is LOCALDIR/tree.
  await Deno.mkdir(`${work.path}/into`);
  const into = await runFsd([net(ctx.port), ...rw(work.path)], [
    "get",
    "-r",
    "127.0.0.1",
    String(ctx.port),
    "tree/",
    `${work.path}/into`,
    "-j1",
  ]);
  assert.equal(into.code, 0, into.stderr);
  await assertSameTree(`${ctx.root}/tree`, `${work.path}/into/tree`);

  const put = await runFsd([net(ctx.port), `--allow-read=${work.path}`], [
    "put",
    "-r",
    "127.0.0.1",
    String(ctx.port),
    `${work.path}/tree`,
    "copy",
    "--jobs",
    "1",
    "-v",
  ]);
  assert.equal(put.code, 0, put.stderr);
  assert.match(put.stderr, /^sent 3 of 3 file\(s\)/m);
  await assertSameTree(`${work.path}/tree`, `${ctx.root}/copy`);
  assert.equal(connections(ctx.logs), 3);

  // The same tree again: the directories exist, every file is refused, none replaced.
  const again = await runFsd([net(ctx.port), `--allow-read=${work.path}`], [
    "put",
    "-r",
    "127.0.0.1",
    String(ctx.port),
    `${work.path}/tree`,
    "copy/",
  ]);
  assert.equal(again.code, 0, again.stderr); // into copy/: a new copy/tree
  await assertSameTree(`${work.path}/tree`, `${ctx.root}/copy/tree`);
});

Deno.test("ls: --json, --sha256, and names with spaces unambiguous in every format", async () => {
  await using ctx = await startServer();
  await Deno.writeFile(`${ctx.root}/with space.txt`, text.encode("hello"));
  await Deno.mkdir(`${ctx.root}/d`);
  const plain = await runFsd([net(ctx.port)], ["ls", "127.0.0.1", String(ctx.port)]);
  assert.equal(plain.code, 0, plain.stderr);
  // NAME is the rest of the line: the README's awk line recovers it.
  const awk = await new Deno.Command("awk", {
    args: ['$1 == "f" { sub(/^[^ ]+ [^ ]+ [^ ]+ /, ""); print }'],
    stdin: "piped",
    stdout: "piped",
  }).spawn();
  const writer = awk.stdin.getWriter();
  await writer.write(text.encode(plain.stdout));
  await writer.close();
  assert.equal(text.decode((await awk.output()).stdout), "with space.txt\n");

  const json = await runFsd([net(ctx.port)], ["ls", "127.0.0.1", String(ctx.port), "--json"]);
  assert.deepEqual(jsonLines(json.stdout).map((e) => [e.name, e.kind, e.size]), [
    ["d", "directory", 0],
    ["with space.txt", "file", 5],
  ]);
  const digests = await runFsd([net(ctx.port)], ["ls", "127.0.0.1", String(ctx.port), "--sha256"]);
  assert.equal(digests.code, 0, digests.stderr);
  const lines = digests.stdout.trimEnd().split("\n");
  assert.match(lines[0], /^d 0 \S+ - d$/);
  assert.equal(
    lines[1].split(" ").slice(3).join(" "),
    `${sha256(text.encode("hello"))} with space.txt`,
  );
  const both = await runFsd([net(ctx.port)], [
    "ls",
    "127.0.0.1",
    String(ctx.port),
    "--json",
    "--sha256",
  ]);
  assert.equal(jsonLines(both.stdout)[1].sha256, sha256(text.encode("hello")));
});

Deno.test("mkdir in the extension: inside the root, never replacing, printable names, refused read-only", async () => {
  await using ctx = await startServer();
  await Deno.writeTextFile(`${ctx.root}/file`, "x");
  await using client = await RawClient.greeted(ctx.port);
  const mkdir = async (name: string | Uint8Array) => {
    await client.send(wire.opt({ mkdir: "1" }), wire.wrq(name));
    return await client.read();
  };
  assert.deepEqual(await mkdir("new"), { op: "OACK", options: { mkdir: "1" } });
  assert.ok((await Deno.stat(`${ctx.root}/new`)).isDirectory);
  assert.deepEqual(await mkdir("new/inner"), { op: "OACK", options: { mkdir: "1" } });
  const refusals: [string | Uint8Array, number, RegExp][] = [
    ["new", 6, /^file already exists: new$/],
    ["file", 6, /^file already exists: file$/],
    ["../outside", 2, /"\.\." part/],
    ["a\u0007b", 2, /control character/],
    ["missing/child", 1, /not found/],
    ["", 2, /empty file name/],
    [".fsd-upload-x", 2, /reserved/],
  ];
  for (const [name, code, pattern] of refusals) {
    const packet = await mkdir(name);
    assert.ok(
      packet?.op === "ERR" && packet.code === code,
      `${String(name)}: ${JSON.stringify(packet)}`,
    );
    assert.match(packet.message, pattern);
  }
  // The connection still serves.
  assert.match(await client.listRoot(), /^f 1 .* file\nd 0 .* new\n$/);

  await using readOnly = await startServer({ readOnly: true });
  await using other = await RawClient.greeted(readOnly.port);
  await other.send(wire.opt({ mkdir: "1" }), wire.wrq("new"));
  assert.equal(await other.expectError(2), "server is read-only");
  assert.deepEqual(await dirNames(readOnly.root), []);
});

Deno.test("extension on the wire: kind, mtime and sha256 on RRQ; SUM follows the last DAT", async () => {
  await using ctx = await startServer();
  const content = randomBytes(1500, 8);
  await Deno.writeFile(`${ctx.root}/f`, content);
  await Deno.utime(`${ctx.root}/f`, 1_700_000_000, 1_700_000_000);
  await using client = await RawClient.greeted(ctx.port);
  await client.send(wire.opt({ kind: "0", mtime: "0", sha256: "1", tsize: "0" }), wire.rrq("f"));
  assert.deepEqual(await client.expectOack(), {
    tsize: "1500",
    sha256: "1",
    kind: "1",
    mtime: "1700000000",
  });
  await client.send(wire.ack(0));
  const { data } = await client.receiveBlocks();
  assert.deepEqual(data, content);
  const sum = await client.read();
  assert.deepEqual(sum, { op: "?", opcode: 9 }); // SUM: opcode 9 and 32 bytes of digest
  await client.send(wire.opt({ kind: "0" }), wire.rrq(""));
  assert.deepEqual(await client.expectOack(), { kind: "2" });
});

Deno.test("integrity: a transfer the proxy corrupts is caught both ways by the default CRC-32 and by --integrity sha256, and leaves nothing", async () => {
  await using ctx = await startServer();
  await using work = await tempDir();
  const content = randomBytes(4 * 1024 * 1024, 6);
  await Deno.writeFile(`${ctx.root}/big`, content);
  await Deno.writeFile(`${work.path}/up`, content);
  for (const [check, flags] of [["crc32", []], ["sha256", ["--integrity", "sha256"]]] as const) {
    for (const direction of ["down", "up"] as const) {
      const relay = Relay.start({
        port: 0,
        hostname: "127.0.0.1",
        targetHost: "127.0.0.1",
        targetPort: ctx.port,
        faults: { [direction]: { corruptRate: 2e-6 } },
      });
      try {
        const port = relay.addr.port;
        const result = direction === "down"
          ? await runFsd([net(port), ...rw(work.path)], [
            "get",
            "127.0.0.1",
            String(port),
            "big",
            ...flags,
          ], { cwd: work.path })
          : await runFsd([net(port), `--allow-read=${work.path}`], [
            "put",
            "127.0.0.1",
            String(port),
            `${work.path}/up`,
            ...flags,
          ]);
        assert.equal(result.code, 1, `${direction}: ${result.stderr}`);
        // Almost always the checksum; a changed header byte is a protocol violation, caught as well.
        const caught = new RegExp(`${check} mismatch|unexpected packet|wrong block|too large`);
        assert.match(result.stderr, caught, `${check} ${direction}`);
      } finally {
        await relay.close();
      }
    }
  }
  assert.deepEqual(await dirNames(work.path), ["up"]);
  assert.deepEqual(await dirNames(ctx.root), ["big"]);
});

Deno.test("get --sha256 HEX: the right digest passes, a wrong one fails and leaves nothing", async () => {
  await using ctx = await startServer();
  await using work = await tempDir();
  const content = randomBytes(10_000, 2);
  await Deno.writeFile(`${ctx.root}/f`, content);
  for (const fsd1 of [[], ["--fsd1"]]) {
    const right = await runFsd([net(ctx.port), ...rw(work.path)], [
      "get",
      "127.0.0.1",
      String(ctx.port),
      "f",
      `${work.path}/right`,
      "--sha256",
      sha256(content).toUpperCase(),
      ...fsd1,
    ]);
    assert.equal(right.code, 0, right.stderr);
    await Deno.remove(`${work.path}/right`);
    const wrong = await runFsd([net(ctx.port), ...rw(work.path)], [
      "get",
      "127.0.0.1",
      String(ctx.port),
      "f",
      `${work.path}/wrong`,
      "--sha256",
      "0".repeat(64),
      ...fsd1,
    ]);
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /^fsd: sha256 mismatch: f has [0-9a-f]{64}, expected 0{64}\n$/);
    assert.deepEqual(await dirNames(work.path), []);
  }
});

Deno.test("get --continue: resumes from .fsd-partial-NAME when the file is unchanged, else starts over", async () => {
  await using ctx = await startServer();
  await using work = await tempDir();
  const content = randomBytes(300_000, 3);
  await Deno.writeFile(`${ctx.root}/big`, content);
  const mtime = Math.floor((await Deno.stat(`${ctx.root}/big`)).mtime!.getTime() / 1000);
  const partial = `${work.path}/.fsd-partial-big`;
  const run = () =>
    runFsd([net(ctx.port), ...rw(work.path)], [
      "get",
      "127.0.0.1",
      String(ctx.port),
      "big",
      "--continue",
      "--json",
      "--integrity",
    ], { cwd: work.path });

  await Deno.writeFile(partial, content.subarray(0, 100_000));
  await Deno.utime(partial, mtime, mtime);
  const resumed = await run();
  assert.equal(resumed.code, 0, resumed.stderr);
  const report = jsonLines(resumed.stdout)[0];
  assert.equal(report.bytes, 200_000); // only the rest moved
  assert.equal(report.size, 300_000);
  assert.equal(report.verified, true); // the digest covers the whole file
  assert.deepEqual(await Deno.readFile(`${work.path}/big`), content);
  assert.deepEqual(await dirNames(work.path), ["big"]);
  await Deno.remove(`${work.path}/big`);

  // A partial whose recorded mtime no longer matches: the server does not resume, all of it moves.
  await Deno.writeFile(partial, randomBytes(100_000, 99));
  await Deno.utime(partial, mtime - 60, mtime - 60);
  const restarted = await run();
  assert.equal(restarted.code, 0, restarted.stderr);
  assert.equal(jsonLines(restarted.stdout)[0].bytes, 300_000);
  assert.deepEqual(await Deno.readFile(`${work.path}/big`), content);
  assert.deepEqual(await dirNames(work.path), ["big"]);
});

Deno.test("get --continue: an interrupted download keeps its partial file, a plain one does not", async () => {
  for (const resume of [true, false]) {
    await using work = await tempDir();
    await using fake = stallingDownload(2);
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--quiet",
        net(fake.port),
        ...rw(work.path),
        MAIN,
        "get",
        "127.0.0.1",
        String(fake.port),
        "big",
        "--fsd1",
        ...(resume ? ["--continue"] : []),
      ],
      cwd: work.path,
      stdout: "null",
      stderr: "piped",
    }).spawn();
    await fake.midway;
    child.kill("SIGTERM");
    const output = await child.output();
    fake.release();
    assert.equal(output.code, 143);
    if (resume) {
      assert.deepEqual(await dirNames(work.path), [".fsd-partial-big"]);
      assert.equal((await Deno.stat(`${work.path}/.fsd-partial-big`)).size, 1024);
    } else {
      assert.deepEqual(await dirNames(work.path), []);
    }
  }
});

Deno.test({
  name: "ls on a terminal: -l style lines, human sizes, names with spaces quoted (under script(1))",
  ...needs("script"),
  fn: async () => {
    assertTools("script");
    await using ctx = await startServer();
    await Deno.writeFile(`${ctx.root}/with space.txt`, new Uint8Array(1536));
    await Deno.mkdir(`${ctx.root}/d`);
    const command = [Deno.execPath(), "run", "--quiet", net(ctx.port), MAIN, "ls", "127.0.0.1"]
      .concat(String(ctx.port)).map((part) => `'${part}'`).join(" ");
    const output = await new Deno.Command("script", {
      args: ["-qec", command, "/dev/null"],
      stdin: "null",
      stdout: "piped",
    }).output();
    const lines = text.decode(output.stdout).replaceAll("\r", "").trimEnd().split("\n");
    assert.match(lines[0], /^d +- +\d{4}-\d\d-\d\d \d\d:\d\d {2}d\/$/);
    assert.match(lines[1], /^f +1\.5 KiB +\d{4}-\d\d-\d\d \d\d:\d\d {2}"with space\.txt"$/);
  },
});

/** `fsd get -r 127.0.0.1 PORT t LOCAL ...extra`, allowed to read and write `dir`. */
function getTree(port: number, dir: string, local: string, ...extra: string[]) {
  return runFsd([net(port), ...rw(dir)], [
    "get",
    "-r",
    "127.0.0.1",
    String(port),
    "t",
    local,
    ...extra,
  ]);
}

Deno.test("get -r into a directory whose parent is missing: exit 1 naming the parent, nothing made", async () => {
  await using ctx = await startServer();
  await using work = await tempDir();
  await Deno.mkdir(`${ctx.root}/t`);
  await Deno.writeTextFile(`${ctx.root}/t/x`, "x");
  const got = await getTree(ctx.port, work.path, `${work.path}/missing/t`);
  assert.equal(got.code, 1, got.stderr);
  assert.match(got.stderr, new RegExp(`no such directory: ${work.path}/missing\\n`));
  assert.deepEqual(await dirNames(work.path), []);
});

Deno.test("get -r: a listing that fails ends the job with its error, after the files listed before it moved", async () => {
  await using ctx = await startServer();
  await using work = await tempDir();
  await Deno.mkdir(`${ctx.root}/t/a`, { recursive: true });
  await Deno.writeTextFile(`${ctx.root}/t/a/x`, "x");
  await Deno.writeTextFile(`${ctx.root}/t/a/y`, "y");
  // Listed after a (in order), and too large for the server to list (MAX_LISTING_ENTRIES).
  await Deno.mkdir(`${ctx.root}/t/big`);
  for (let i = 0; i <= 10_000; i++) Deno.writeFileSync(`${ctx.root}/t/big/${i}`, new Uint8Array());
  for (const jobs of ["1", "2"]) {
    const got = await getTree(ctx.port, work.path, `${work.path}/j${jobs}`, "--jobs", jobs);
    assert.equal(got.code, 1, got.stderr);
    assert.match(got.stderr, /directory too large to list/);
    assert.equal(await Deno.readTextFile(`${work.path}/j${jobs}/a/x`), "x");
    assert.equal(await Deno.readTextFile(`${work.path}/j${jobs}/a/y`), "y");
  }
});
