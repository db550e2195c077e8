/**
 * Jobs of many files on several connections at once (`--jobs N`, default
 * 4): every file arrives byte-exact, the reports (--json, the summary, the
 * failures) come in the order of the names or the tree whatever the
 * lanes' timing, a failing file among many is listed with exit 1, --jobs 1
 * is one connection, and a bad --jobs is a usage error. The CLI runs as a
 * subprocess with its documented flags against an in-process server whose
 * log tells how many connections a job used.
 */

import assert from "node:assert/strict";
import { getInto, jsonLines, MAIN, net, runFsd, rw } from "../support/cli.ts";
import {
  canMountSmallDisk,
  dirNames,
  mountSmallDisk,
  randomBytes,
  tempDir,
  text,
  unmount,
} from "../support/files.ts";
import { readExactly, wire } from "../support/raw_client.ts";
import { connections, startServer } from "../support/server.ts";

const size = (i: number) => 1 + ((i * 7919) % 70_000);

Deno.test("get -o --jobs 8: 40 files byte-exact on 8 connections, a missing one listed in order, exit 1", async () => {
  await using ctx = await startServer();
  await using work = await tempDir();
  const names: string[] = [];
  for (let i = 0; i < 40; i++) {
    await Deno.writeFile(`${ctx.root}/f${i}`, randomBytes(size(i), i + 1));
    names.push(`f${i}`);
    if (i === 17) names.push("nope");
  }
  const result = await getInto(ctx.port, work.path, names, ["--jobs", "8", "--json"]);
  assert.equal(result.code, 1, result.stderr);
  const reports = jsonLines(result.stdout);
  assert.deepEqual(reports.map((r) => r.name), names, "the order of the names");
  assert.deepEqual(
    reports.filter((r) => r.outcome === "failed").map((r) => [r.name, r.error]),
    [["nope", "server error 1: file not found: nope"]],
  );
  for (let i = 0; i < 40; i++) {
    assert.deepEqual(await Deno.readFile(`${work.path}/in/f${i}`), randomBytes(size(i), i + 1));
  }
  assert.equal((await dirNames(`${work.path}/in`)).length, 40, "no staging file left");
  assert.equal(connections(ctx.logs), 8);
});

Deno.test("get -r: the same reports in the same order with --jobs 1 and --jobs 4, at most 4 connections", async () => {
  await using ctx = await startServer();
  await using work = await tempDir();
  for (const dir of ["t", "t/b", "t/a", "t/a/deep"]) await Deno.mkdir(`${ctx.root}/${dir}`);
  for (let i = 0; i < 30; i++) {
    const dir = ["t", "t/b", "t/a", "t/a/deep"][i % 4];
    await Deno.writeFile(`${ctx.root}/${dir}/n${i}`, randomBytes(size(i), 100 + i));
  }
  const fetch = (local: string, extra: string[]) =>
    runFsd([net(ctx.port), ...rw(work.path)], [
      "get",
      "-r",
      "127.0.0.1",
      String(ctx.port),
      "t",
      `${work.path}/${local}`,
      "--json",
      ...extra,
    ]);
  const one = await fetch("one", ["-j", "1"]);
  assert.equal(one.code, 0, one.stderr);
  assert.equal(connections(ctx.logs), 1, "--jobs 1: one connection");
  const many = await fetch("many", ["-j", "4"]);
  assert.equal(many.code, 0, many.stderr);
  const strip = (stdout: string) =>
    jsonLines(stdout).map((r) => [r.name, r.kind, r.size, r.outcome]);
  assert.deepEqual(strip(many.stdout), strip(one.stdout));
  assert.equal(strip(one.stdout).filter((r) => r[1] === "file").length, 30);
  const used = connections(ctx.logs) - 1;
  assert.ok(used > 1 && used <= 4, `--jobs 4: ${used} connections`);
  for (let i = 0; i < 30; i++) {
    const dir = ["", "/b", "/a", "/a/deep"][i % 4];
    for (const local of ["one", "many"]) {
      assert.deepEqual(
        await Deno.readFile(`${work.path}/${local}${dir}/n${i}`),
        randomBytes(size(i), 100 + i),
      );
    }
  }
});

Deno.test("put -r --jobs 3: a tree byte-exact; files the server has already are refused, listed in order, exit 1", async () => {
  await using ctx = await startServer();
  await using work = await tempDir();
  await Deno.mkdir(`${work.path}/site/sub`, { recursive: true });
  const files: string[] = [];
  for (let i = 0; i < 12; i++) {
    const name = `${i % 2 ? "sub/" : ""}p${String(i).padStart(2, "0")}`;
    await Deno.writeFile(`${work.path}/site/${name}`, randomBytes(size(i), 200 + i));
    files.push(name);
  }
  await Deno.mkdir(`${ctx.root}/site/sub`, { recursive: true });
  await Deno.writeTextFile(`${ctx.root}/site/p04`, "kept");
  await Deno.writeTextFile(`${ctx.root}/site/sub/p09`, "kept too");
  const result = await runFsd([net(ctx.port), `--allow-read=${work.path}`], [
    "put",
    "-r",
    "127.0.0.1",
    String(ctx.port),
    `${work.path}/site`,
    "--jobs",
    "3",
  ]);
  assert.equal(result.code, 1, result.stderr);
  assert.match(
    result.stderr,
    /^ {2}failed: site\/p04: server error 6: .*\n {2}failed: site\/sub\/p09: server error 6: .*\nfsd: 2 of \d+ failed\n$/,
  );
  assert.equal(await Deno.readTextFile(`${ctx.root}/site/p04`), "kept", "never replaced");
  assert.equal(await Deno.readTextFile(`${ctx.root}/site/sub/p09`), "kept too");
  for (const [i, name] of files.entries()) {
    if (name === "p04" || name === "sub/p09") continue;
    assert.deepEqual(
      await Deno.readFile(`${ctx.root}/site/${name}`),
      randomBytes(size(i), 200 + i),
    );
  }
  assert.ok(connections(ctx.logs) <= 3, ctx.logs.join("\n"));
});

Deno.test("put -o --jobs 2 --integrity: every file checked by the server, reports in order", async () => {
  await using ctx = await startServer();
  await using work = await tempDir();
  const locals = [0, 1, 2, 3, 4].map((i) => `${work.path}/u${i}`);
  for (const [i, local] of locals.entries()) await Deno.writeFile(local, randomBytes(size(i), i));
  const result = await runFsd([net(ctx.port), `--allow-read=${work.path}`], [
    "put",
    "127.0.0.1",
    String(ctx.port),
    ...locals,
    "-o",
    "up",
    "--jobs=2",
    "--integrity",
    "--json",
  ]);
  assert.equal(result.code, 0, result.stderr);
  const reports = jsonLines(result.stdout);
  assert.deepEqual(
    reports.map((r) => [r.name, r.verified]),
    [0, 1, 2, 3, 4].map((i) => [`up/u${i}`, true]),
  );
  for (const [i] of locals.entries()) {
    assert.deepEqual(await Deno.readFile(`${ctx.root}/up/u${i}`), randomBytes(size(i), i));
  }
  assert.equal(connections(ctx.logs), 2);
});

Deno.test("--jobs: 0, 17, -1, 2.5 and words are usage errors (exit 2) for get and put", async () => {
  await using work = await tempDir();
  for (const command of ["get", "put"]) {
    for (const jobs of ["0", "17", "-1", "2.5", "many"]) {
      const result = await runFsd([`--allow-read=${work.path}`, `--allow-write=${work.path}`], [
        command,
        "127.0.0.1",
        "10000",
        "a",
        "b",
        "-o",
        work.path,
        `--jobs=${jobs}`,
      ]);
      assert.equal(result.code, 2, `${command} --jobs ${jobs}: ${result.stderr}`);
      assert.match(result.stderr, /^fsd: invalid --jobs: /, result.stderr);
    }
  }
});

Deno.test("get -o --jobs 3: SIGTERM while three files are in flight: exit 143, one fsd: line, nothing left", async () => {
  await using work = await tempDir();
  // A server that sends each of 3 connections half a file, then waits.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  let reached!: () => void;
  const midway = new Promise<void>((resolve) => reached = resolve);
  let halfway = 0;
  const serving = (async () => {
    for (let i = 0; i < 3; i++) {
      const conn = await listener.accept();
      conns.push(conn);
      (async () => {
        await conn.write(wire.dat(1, text.encode("Hello from fake's fileserver")));
        await readExactly(conn, 4 + 2 + "a0".length + 1); // the greeting's ACK, then RRQ
        await conn.write(wire.dat(1, new Uint8Array(512).fill(i)));
        await readExactly(conn, 4);
        if (++halfway === 3) reached();
      })().catch(() => {});
    }
  })();
  try {
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--quiet",
        net(listener.addr.port),
        ...rw(work.path),
        MAIN,
        "get",
        "127.0.0.1",
        String(listener.addr.port),
        ..."012345".split("").map((n) => `a${n}`),
        "-o",
        work.path,
        "--fsd1",
        "--jobs",
        "3",
      ],
      stdout: "null",
      stderr: "piped",
    }).spawn();
    await midway;
    child.kill("SIGTERM");
    const output = await child.output();
    assert.equal(output.code, 143);
    assert.equal(text.decode(output.stderr), "fsd: interrupted by SIGTERM\n");
    assert.deepEqual(await dirNames(work.path), [], "no staging file, no partial file");
  } finally {
    await serving;
    for (const conn of conns) conn.close();
    listener.close();
  }
});

Deno.test("get -o --jobs 4 against --max-per-ip 2: the refused lanes hand their files back, every file arrives", async () => {
  await using ctx = await startServer({ maxPerIp: 2 });
  await using work = await tempDir();
  const names = Array.from({ length: 12 }, (_, i) => `m${i}`);
  for (const [i, name] of names.entries()) {
    await Deno.writeFile(`${ctx.root}/${name}`, randomBytes(size(i), 300 + i));
  }
  const result = await getInto(ctx.port, work.path, names, ["--json", "--jobs", "4"]);
  assert.equal(result.code, 0, result.stderr + result.stdout);
  const reports = jsonLines(result.stdout);
  assert.deepEqual(reports.map((r) => [r.name, r.outcome]), names.map((n) => [n, "ok"]));
  for (const [i, name] of names.entries()) {
    assert.deepEqual(await Deno.readFile(`${work.path}/in/${name}`), randomBytes(size(i), 300 + i));
  }
  assert.deepEqual(await dirNames(`${work.path}/in`), [...names].sort());
});

Deno.test({
  name:
    "get -o: a download that fills the disk ends its connection; the downloads sent ahead behind it are asked again on a new one and arrive",
  ignore: !canMountSmallDisk(), // mounting a small tmpfs needs root; CI runs as root
  async fn() {
    await using ctx = await startServer();
    await using work = await tempDir();
    // More small files than the 8 downloads a connection keeps under way: those past the first 8
    // are asked only after one of them ends, so after big whatever order the first 8 take turns in.
    const small = Array.from({ length: 12 }, (_, i) => `s${i}`);
    for (const [i, name] of small.entries()) {
      await Deno.writeFile(`${ctx.root}/${name}`, randomBytes(1000, i + 1));
    }
    await Deno.writeFile(`${ctx.root}/big`, randomBytes(512 * 1024, 9));
    await Deno.mkdir(`${work.path}/in`);
    assert.ok(mountSmallDisk(`${work.path}/in`));
    try {
      const names = ["s0", "big", ...small.slice(1)];
      const result = await getInto(ctx.port, work.path, names, ["--jobs", "1", "--json"]);
      assert.equal(result.code, 1, result.stderr);
      const reports = jsonLines(result.stdout);
      assert.deepEqual(reports.map((r) => r.name), names);
      assert.deepEqual(reports.filter((r) => r.outcome !== "ok").map((r) => r.name), ["big"]);
      for (const [i, name] of small.entries()) {
        assert.deepEqual(await Deno.readFile(`${work.path}/in/${name}`), randomBytes(1000, i + 1));
      }
      assert.deepEqual(await dirNames(`${work.path}/in`), [...small].sort(), "nothing of big left");
      // The one connection of --jobs 1 broke with big; what was sent ahead went again on another.
      assert.ok(connections(ctx.logs) >= 2, ctx.logs.join("\n"));
    } finally {
      unmount(`${work.path}/in`);
    }
  },
});
