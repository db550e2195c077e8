/**
 * Many processes, one directory: staging files are locked by their writer,
 * and a start-up cleanup (server) or a get's sweep (client) removes only
 * those no live process holds. Servers sharing a directory, in any mix of
 * --read-only and read-write, killed in any order, never lose an
 * acknowledged upload, never show a partial file, and give exactly one
 * winner to racing uploads of one name.
 */

import assert from "node:assert/strict";
import { rng } from "../fsd/fuzz.ts";
import {
  MAIN,
  runFsd,
  type ServeProcess,
  spawnFsd,
  spawnServe,
  spawnServeWithHttp,
} from "../support/cli.ts";
import { encodeRequest, Opcode } from "../../lib/fsd/codec.ts";
import { randomBytes, tempDir } from "../support/files.ts";
import { RawClient, startUpload, withDeadline } from "../support/raw_client.ts";
import {
  DOWNLOAD_PREFIX,
  removeIfAbandoned,
  removeStaleStaging,
  StagedFile,
} from "../../lib/store/staging.ts";
import { STAGING_PREFIX } from "../../lib/store/sandbox.ts";
import { probeSharedDir } from "../../lib/store/shared_dir.ts";

const STAGING_URL = new URL("../../lib/store/staging.ts", import.meta.url).href;

/** A separate process holding a staging file open (and locked) until killed. */
async function holder(dir: string, prefix: string): Promise<{ path: string } & AsyncDisposable> {
  const script = `
    import { StagedFile } from ${JSON.stringify(STAGING_URL)};
    const staged = await StagedFile.create(${JSON.stringify(`${dir}/held`)}, ${
    JSON.stringify(prefix)
  });
    console.log(staged.path);
    setInterval(() => {}, 60_000);`;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", "--quiet", "--no-prompt", `--allow-read=${dir}`, `--allow-write=${dir}`, script],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let line = "";
  while (!line.includes("\n")) {
    const { value, done } = await withDeadline(reader.read(), "holder start");
    if (done) throw new Error("holder exited before creating its file");
    line += value;
  }
  reader.releaseLock();
  return {
    path: line.trim(),
    async [Symbol.asyncDispose]() {
      try {
        child.kill("SIGKILL");
      } catch {
        // already dead
      }
      await child.status;
      await child.stdout.cancel().catch(() => {});
    },
  };
}

async function names(dir: string): Promise<string[]> {
  return (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort();
}

Deno.test("staging: cleanup removes what no process holds, never a live process's file", async () => {
  await using dir = await tempDir();
  const abandoned = `${dir.path}/${STAGING_PREFIX}left-by-a-dead-run`;
  await Deno.writeFile(abandoned, new Uint8Array(10));
  const held = await holder(dir.path, STAGING_PREFIX);
  const own = await StagedFile.create(`${dir.path}/mine`, STAGING_PREFIX);
  try {
    assert.equal(await removeStaleStaging(dir.path, STAGING_PREFIX), 1);
    const left = await names(dir.path);
    assert.ok(!left.includes(abandoned.split("/").pop()!), "abandoned file kept");
    assert.ok(left.includes(held.path.split("/").pop()!), "another process's file removed");
    assert.ok(left.includes(own.path.split("/").pop()!), "this process's own file removed");
    await own.file.write(new Uint8Array([1, 2, 3]));
    await own.commit();
    assert.deepEqual(await Deno.readFile(`${dir.path}/mine`), new Uint8Array([1, 2, 3]));
  } finally {
    await own.discard();
    await held[Symbol.asyncDispose]();
  }
  // Its holder is dead: now the file is abandoned.
  assert.equal(await removeIfAbandoned(held.path), true);
  assert.deepEqual(await names(dir.path), ["mine"]);
});

Deno.test("staging: a file swept between create and lock is replaced, not written unlinked", async () => {
  await using dir = await tempDir();
  // Many creations racing a sweep that loops: each StagedFile must still name its file.
  let sweeping = true;
  const sweep = (async () => {
    while (sweeping) await removeStaleStaging(dir.path, STAGING_PREFIX);
  })();
  try {
    for (let i = 0; i < 50; i++) {
      const staged = await StagedFile.create(`${dir.path}/f${i}`, STAGING_PREFIX);
      await staged.file.write(new Uint8Array([i]));
      await staged.commit();
    }
  } finally {
    sweeping = false;
    await sweep;
  }
  for (let i = 0; i < 50; i++) {
    assert.deepEqual(await Deno.readFile(`${dir.path}/f${i}`), new Uint8Array([i]));
  }
});

const SERVE_PERMISSIONS = (dir: string) => [
  "--allow-net",
  `--allow-read=${dir}`,
  `--allow-write=${dir}`,
];

Deno.test("shared directory: a second server started mid-upload leaves the upload alone", async () => {
  // The issue's scenario: serve D, a slow put through `fsd proxy --bandwidth`,
  // then a second `fsd serve D`. The upload must still succeed.
  await using dir = await tempDir();
  await using first = await spawnServe(dir.path);
  await using proxy = await spawnFsd(
    ["proxy", "0", "127.0.0.1", String(first.port), "--host", "127.0.0.1", "--bandwidth", "500"],
    ["--allow-net=127.0.0.1"],
    /port \d+/,
  );
  const content = randomBytes(300_000, 7);
  const put = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--quiet",
      "--no-prompt",
      "--allow-net=127.0.0.1",
      MAIN,
      "put",
      "127.0.0.1",
      String(proxy.port),
      "-",
      "big.bin",
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = put.stdin.getWriter();
  // Half now; the rest only once the second server is up, so it starts mid-upload for sure.
  await writer.write(content.subarray(0, 150_000));
  await withDeadline(waitForStaging(dir.path), "staging file", 20_000);
  await using second = await spawnServe(dir.path);
  await writer.write(content.subarray(150_000));
  await writer.close();
  const result = await put.output();
  const stderr = new TextDecoder().decode(result.stderr);
  assert.equal(result.code, 0, `put failed: ${stderr}`);
  assert.ok(!second.lines.some((l) => /removed \d+ unfinished/.test(l)), second.lines.join("\n"));
  assert.deepEqual(await Deno.readFile(`${dir.path}/big.bin`), content);
});

async function waitForStaging(dir: string): Promise<void> {
  for (;;) {
    if ((await names(dir)).some((n) => n.startsWith(STAGING_PREFIX))) return;
    await new Promise((resolve) => setTimeout(resolve, 20)); // polling the directory: no event to await
  }
}

Deno.test("get: a download an interrupted get left is swept, a running get's file is kept", async () => {
  await using served = await tempDir();
  await using local = await tempDir();
  await Deno.writeTextFile(`${served.path}/a.txt`, "hello");
  const stale = `${local.path}/${DOWNLOAD_PREFIX}interrupted`;
  await Deno.writeFile(stale, new Uint8Array(100));
  await using running = await holder(local.path, DOWNLOAD_PREFIX);
  await using server = await spawnServe(served.path);
  const result = await runFsd(
    ["--allow-net=127.0.0.1", `--allow-read=${local.path}`, `--allow-write=${local.path}`],
    ["get", "127.0.0.1", String(server.port), "a.txt", `${local.path}/a.txt`],
  );
  assert.equal(result.code, 0, result.stderr);
  assert.deepEqual(await names(local.path), ["a.txt", running.path.split("/").pop()!].sort());
});

// ---- many servers on one directory ----

type Outcome = "ok" | "exists" | "read-only" | "failed";

async function tryUpload(port: number, name: string, data: Uint8Array): Promise<Outcome> {
  try {
    await using client = await RawClient.greeted(port);
    await client.upload(name, data);
    return "ok";
  } catch (error) {
    const message = String(error);
    if (/"code":6/.test(message)) return "exists";
    if (/"code":2/.test(message)) return "read-only";
    return "failed";
  }
}

interface Member {
  readOnly: boolean;
  process: ServeProcess;
}

async function startMember(dir: string, readOnly: boolean): Promise<Member> {
  const permissions = readOnly ? ["--allow-net", `--allow-read=${dir}`] : SERVE_PERMISSIONS(dir);
  const extra = readOnly ? ["--read-only"] : [];
  return { readOnly, process: await spawnServe(dir, 0, extra, permissions) };
}

async function checkDirectory(
  dir: string,
  attempted: Map<string, Uint8Array>,
  acknowledged: Set<string>,
): Promise<void> {
  for (const name of await names(dir)) {
    if (name.startsWith(STAGING_PREFIX)) continue;
    const data = await Deno.readFile(`${dir}/${name}`);
    assert.deepEqual(data, attempted.get(name), `${name}: not a complete upload`);
  }
  for (const name of acknowledged) {
    assert.deepEqual(await Deno.readFile(`${dir}/${name}`), attempted.get(name), `${name} lost`);
  }
}

for (const count of [2, 3, 10]) {
  Deno.test(`shared directory: ${count} servers, mixed --read-only, killed in any order`, async () => {
    const seed = Number(Deno.env.get("FSD_SHARED_SEED") ?? Math.floor(Math.random() * 2 ** 31));
    console.log(`  seed ${seed} (repeat with FSD_SHARED_SEED=${seed})`);
    const random = rng(seed);
    await using dir = await tempDir();
    // Every third server is read-only; the first is always read-write.
    const members = await Promise.all(
      Array.from({ length: count }, (_, i) => startMember(dir.path, i % 3 === 2)),
    );
    const attempted = new Map<string, Uint8Array>();
    const acknowledged = new Set<string>();
    try {
      const rounds = Math.min(count, 4);
      for (let round = 0; round < rounds; round++) {
        // One name raced from every server at once: exactly one upload wins.
        const race = `race-${round}`;
        const raced = randomBytes(20_000 + round, seed + round);
        attempted.set(race, raced);
        // Meanwhile, unique uploads, and one server killed in the middle of them.
        const victim = Math.floor(random() * members.length);
        const uniques = members.map((m, i) => {
          const name = `u-${round}-${i}`;
          const data = randomBytes(Math.floor(random() * 150_000), seed * 7 + round * 100 + i);
          attempted.set(name, data);
          return tryUpload(m.process.port, name, data).then((outcome) => {
            if (outcome === "ok") acknowledged.add(name);
            return outcome;
          });
        });
        const racers = members.map((m) => tryUpload(m.process.port, race, raced));
        const outcomes = await Promise.all(racers);
        const winners = outcomes.filter((o) => o === "ok").length;
        assert.equal(winners, 1, `race ${race}: ${outcomes.join(", ")}`);
        outcomes.forEach((o, i) => {
          const expected = members[i].readOnly ? ["read-only"] : ["ok", "exists"];
          assert.ok(expected.includes(o), `server ${i}: ${o}`);
        });
        acknowledged.add(race);
        // An upload to a surviving read-write server, in progress across the kill and restart.
        const survivor = members.findIndex((m, i) => i !== victim && !m.readOnly);
        const slowName = `slow-${round}`;
        const slowData = randomBytes(40_000, seed + 31 * round);
        attempted.set(slowName, slowData);
        const slow = survivor < 0
          ? undefined
          : await startUpload(members[survivor].process.port, slowName, slowData, 39);
        members[victim].process.child.kill("SIGKILL");
        await members[victim].process.exited();
        await Promise.all(uniques);
        await checkDirectory(dir.path, attempted, acknowledged);
        // Its replacement starts while the others serve; it sweeps only the dead one's files.
        members[victim] = await startMember(dir.path, members[victim].readOnly);
        if (slow) {
          await slow.finish();
          acknowledged.add(slowName);
        }
        await checkDirectory(dir.path, attempted, acknowledged);
      }
    } finally {
      // Killed in a random order.
      const order = members.map((m) => ({ m, k: random() })).sort((a, b) => a.k - b.k);
      for (const { m } of order) {
        m.process.child.kill("SIGKILL");
        await m.process.exited();
      }
    }
    await checkDirectory(dir.path, attempted, acknowledged);
    await using last = (await startMember(dir.path, false)).process;
    assert.deepEqual((await names(dir.path)).filter((n) => n.startsWith(STAGING_PREFIX)), []);
    await checkDirectory(dir.path, attempted, acknowledged);
    assert.ok(last.port > 0);
  });
}

Deno.test("shared directory: the start-up probe passes on a local directory and leaves nothing", async () => {
  await using dir = await tempDir();
  assert.equal(await probeSharedDir(dir.path), undefined);
  assert.deepEqual(await names(dir.path), []);
});

Deno.test("shared directory: a directory replaced under the server (unmounted) is refused and logged, nothing written beneath", async () => {
  await using parent = await tempDir();
  const served = `${parent.path}/mnt`;
  await Deno.mkdir(served);
  await Deno.writeTextFile(`${served}/hello.txt`, "hello\n");
  await using server = await spawnServeWithHttp(served, [], [
    "--allow-net",
    `--allow-read=${parent.path}`,
    `--allow-write=${parent.path}`,
  ]);
  const health = `http://127.0.0.1:${server.httpPort}/.fsd/health`;
  const healthy = await fetch(health);
  assert.equal(healthy.status, 200);
  assert.equal(await healthy.text(), "ok\n");
  await using before = await RawClient.greeted(server.port);
  // What an unmount leaves: the same path, another directory (empty) there.
  await Deno.rename(served, `${parent.path}/volume`);
  await Deno.mkdir(served);
  // A connection greeted before: a name missing beneath is the unmount, not "not found", and a
  // file there (the mount point's own) is not served.
  await before.send(encodeRequest(Opcode.RRQ, "hello.txt"));
  assert.match(await before.expectError(0), /served directory is no longer the one/);
  await Deno.writeTextFile(`${served}/beneath.txt`, "beneath\n");
  await before.send(encodeRequest(Opcode.RRQ, "beneath.txt"));
  assert.match(await before.expectError(0), /served directory is no longer the one/);
  await Deno.remove(`${served}/beneath.txt`);
  before.close();
  await using client = await RawClient.connect(server.port);
  const message = await client.expectError(0);
  assert.match(message, /served directory is no longer the one fsd started on/);
  await server.waitForLine(/rejected with error 0: the served directory is no longer the one/);
  // HTTP: the health check says so (a load balancer takes the server out), an upload is refused.
  const gone = await fetch(health);
  assert.equal(gone.status, 503);
  assert.match(await gone.text(), /served directory is no longer the one fsd started on/);
  const put = await fetch(`http://127.0.0.1:${server.httpPort}/new.txt`, {
    method: "PUT",
    body: "beneath?\n",
  });
  assert.equal(put.status, 500);
  assert.match(await put.text(), /served directory is no longer the one fsd started on/);
  assert.deepEqual(await names(served), []);
});
