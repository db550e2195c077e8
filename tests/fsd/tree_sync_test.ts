/**
 * Finishing a tree: get -r keeps the server's modification times, and a
 * rerun skips the files already here and identical (size and mtime), fetches
 * what is missing, and never replaces a file that differs without --force.
 * get -p keeps the time of a single file. The CLI as a subprocess.
 */

import assert from "node:assert/strict";
import { jsonLines, net, runFsd, rw } from "../support/cli.ts";
import { randomBytes, tempDir } from "../support/files.ts";
import { startServer } from "../support/server.ts";

const seconds = (path: string) => Math.floor(Deno.statSync(path).mtime!.getTime() / 1000);

Deno.test("get -r keeps mtimes; a rerun skips identical files, fetches missing ones, refuses changed ones without --force", async () => {
  await using ctx = await startServer();
  await using work = await tempDir();
  await Deno.mkdir(`${ctx.root}/t/sub`, { recursive: true });
  const files = ["t/a", "t/b", "t/sub/c"];
  for (const [i, name] of files.entries()) {
    await Deno.writeFile(`${ctx.root}/${name}`, randomBytes(1000 + i, i));
    Deno.utimeSync(`${ctx.root}/${name}`, 1_600_000_000 + i, 1_600_000_000 + i);
  }
  const get = (...extra: string[]) =>
    runFsd([net(ctx.port), ...rw(work.path)], [
      "get",
      "-r",
      "127.0.0.1",
      String(ctx.port),
      "t",
      work.path, // an existing directory: t goes into it, the same on every run (as cp -r)
      "--json",
      ...extra,
    ]);
  const first = await get();
  assert.equal(first.code, 0, first.stderr);
  for (const [i, name] of files.entries()) {
    assert.equal(seconds(`${work.path}/${name}`), 1_600_000_000 + i, name);
  }

  const again = await get();
  assert.equal(again.code, 0, again.stderr);
  const fileReports = jsonLines(again.stdout).filter((r) => r.kind === "file");
  assert.deepEqual(fileReports.map((r) => [r.name, r.skipped, r.bytes]), [
    ["t/a", true, 0],
    ["t/b", true, 0],
    ["t/sub/c", true, 0],
  ]);

  // A new file on the server, and one that changed: the new one comes, the changed one is refused.
  await Deno.writeFile(`${ctx.root}/t/new`, randomBytes(10, 9));
  await Deno.writeFile(`${ctx.root}/t/b`, randomBytes(2000, 8));
  const finish = await get();
  assert.equal(finish.code, 1);
  const reports = jsonLines(finish.stdout).filter((r) => r.kind === "file");
  const byName = Object.fromEntries(reports.map((r) => [r.name, r]));
  assert.equal(byName["t/a"].skipped, true);
  assert.equal(byName["t/new"].outcome, "ok");
  assert.equal(byName["t/new"].skipped, undefined);
  assert.equal(byName["t/b"].outcome, "failed");
  assert.match(byName["t/b"].error, /file exists/);
  assert.deepEqual(await Deno.readFile(`${work.path}/t/new`), randomBytes(10, 9));

  // --force fetches every file again, the changed one too.
  const forced = await get("--force");
  assert.equal(forced.code, 0, forced.stderr);
  assert.ok(jsonLines(forced.stdout).every((r) => r.skipped === undefined));
  assert.deepEqual(await Deno.readFile(`${work.path}/t/b`), randomBytes(2000, 8));
});

Deno.test("get -r -v: a rerun's skipped files say so, and the summary counts what moved and what was skipped", async () => {
  await using ctx = await startServer();
  await using work = await tempDir();
  await Deno.mkdir(`${ctx.root}/t`);
  for (const name of ["a", "b", "c"]) {
    await Deno.writeFile(`${ctx.root}/t/${name}`, randomBytes(100));
  }
  const get = () =>
    runFsd([net(ctx.port), ...rw(work.path)], [
      "get",
      "-r",
      "-v",
      "127.0.0.1",
      String(ctx.port),
      "t",
      work.path,
    ]);
  const first = await get();
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stderr, /^received 3 of 3 file\(s\), 300 bytes in [\d.]+ s$/m);
  await Deno.remove(`${work.path}/t/b`);
  const again = await get();
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stderr, /^ {2}t\/a: skipped: the same size and modification time$/m);
  assert.match(again.stderr, /^ {2}t\/b: 100 bytes in [\d.]+ s$/m);
  assert.match(again.stderr, /^ {2}t\/c: skipped: the same size and modification time$/m);
  assert.match(
    again.stderr,
    /^received 1 of 3 file\(s\), 100 bytes in [\d.]+ s; 2 skipped: already the same$/m,
  );
});

Deno.test("get -p gives one file the server's mtime; without it the file has the time it arrived", async () => {
  await using ctx = await startServer();
  await using work = await tempDir();
  await Deno.writeFile(`${ctx.root}/f`, randomBytes(100));
  Deno.utimeSync(`${ctx.root}/f`, 1_500_000_000, 1_500_000_000);
  const get = (local: string, ...extra: string[]) =>
    runFsd([net(ctx.port), ...rw(work.path)], [
      "get",
      "127.0.0.1",
      String(ctx.port),
      "f",
      `${work.path}/${local}`,
      ...extra,
    ]);
  assert.equal((await get("kept", "-p")).code, 0);
  assert.equal(seconds(`${work.path}/kept`), 1_500_000_000);
  assert.equal((await get("now")).code, 0);
  assert.ok(seconds(`${work.path}/now`) > 1_500_000_000);
});

Deno.test("put -r keeps mtimes on the server; a rerun skips identical files and uploads new ones; put -p for one file", async () => {
  await using ctx = await startServer();
  await using work = await tempDir();
  await Deno.mkdir(`${work.path}/t/sub`, { recursive: true });
  for (const [i, name] of ["t/a", "t/sub/c"].entries()) {
    await Deno.writeFile(`${work.path}/${name}`, randomBytes(500 + i, i));
    Deno.utimeSync(`${work.path}/${name}`, 1_600_000_000 + i, 1_600_000_000 + i);
  }
  const put = () =>
    runFsd([net(ctx.port), `--allow-read=${work.path}`], [
      "put",
      "-r",
      "127.0.0.1",
      String(ctx.port),
      `${work.path}/t`,
      "--json",
    ]);
  const first = await put();
  assert.equal(first.code, 0, first.stderr);
  assert.equal(seconds(`${ctx.root}/t/a`), 1_600_000_000);
  assert.equal(seconds(`${ctx.root}/t/sub/c`), 1_600_000_001);

  await Deno.writeFile(`${work.path}/t/new`, randomBytes(10, 5));
  const again = await put();
  assert.equal(again.code, 0, again.stderr);
  const files = jsonLines(again.stdout).filter((r) => r.kind === "file");
  assert.deepEqual(files.map((r) => [r.name, r.skipped ?? false, r.bytes]), [
    ["t/a", true, 0],
    ["t/new", false, 10],
    ["t/sub/c", true, 0],
  ]);
  assert.deepEqual(await Deno.readFile(`${ctx.root}/t/new`), randomBytes(10, 5));

  await Deno.writeFile(`${work.path}/one`, randomBytes(20));
  Deno.utimeSync(`${work.path}/one`, 1_500_000_000, 1_500_000_000);
  const single = await runFsd([net(ctx.port), `--allow-read=${work.path}`], [
    "put",
    "127.0.0.1",
    String(ctx.port),
    `${work.path}/one`,
    "-p",
  ]);
  assert.equal(single.code, 0, single.stderr);
  assert.equal(seconds(`${ctx.root}/one`), 1_500_000_000);
});
