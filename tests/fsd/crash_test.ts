/**
 * Crash safety: uploads in flight when the server is killed with SIGKILL.
 * Whatever the moment, every file under its own name is complete (and every
 * acknowledged upload is there); after a restart no staging data is left.
 * FSD_CRASH_SEED=N repeats a run.
 */

import assert from "node:assert/strict";
import { rng } from "./fuzz.ts";
import { spawnServe } from "../support/cli.ts";
import { randomBytes, tempDir } from "../support/files.ts";
import { RawClient } from "../support/raw_client.ts";

const ROUNDS = 8;
const UPLOADERS = 4;

async function walk(root: string, prefix = ""): Promise<string[]> {
  const out: string[] = [];
  for await (const entry of Deno.readDir(`${root}/${prefix}`)) {
    const path = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory) out.push(...await walk(root, path));
    else out.push(path);
  }
  return out;
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

Deno.test("crash: SIGKILL mid-upload never leaves a partial file, and a restart cleans up", async () => {
  const seed = Number(Deno.env.get("FSD_CRASH_SEED") ?? Math.floor(Math.random() * 2 ** 31));
  console.log(`  crash seed ${seed} (repeat with FSD_CRASH_SEED=${seed})`);
  const random = rng(seed);
  await using dir = await tempDir();
  await Deno.mkdir(`${dir.path}/sub`);
  const attempted = new Map<string, Uint8Array>();
  const acknowledged = new Set<string>();
  let staleSeen = 0;
  let staleLastRound = 0;

  for (let round = 0; round < ROUNDS; round++) {
    const server = await spawnServe(dir.path);
    let killed = false;
    const uploader = async (k: number) => {
      for (let i = 0; !killed; i++) {
        const name = `${k % 2 ? "sub/" : ""}r${round}-u${k}-${i}`;
        const size = random() < 0.5 ? Math.floor(random() * 2048) : Math.floor(random() * 200_000);
        const content = randomBytes(size, seed + round * 1000 + k * 100 + i);
        attempted.set(name, content);
        try {
          await using client = await RawClient.greeted(server.port);
          await client.upload(name, content);
          acknowledged.add(name);
        } catch {
          return; // the server died under us
        }
      }
    };
    const uploads = Array.from({ length: UPLOADERS }, (_, k) => uploader(k));
    // The kill comes at a random moment: this delay is the scenario, not a wait for an event.
    await new Promise((resolve) => setTimeout(resolve, 20 + random() * 300));
    killed = true;
    server.child.kill("SIGKILL");
    const status = await server.stop();
    assert.equal(status.signal, "SIGKILL");
    await Promise.all(uploads);

    // Before any restart: only whole files under real names.
    staleLastRound = 0;
    for (const path of await walk(dir.path)) {
      const base = path.split("/").pop()!;
      if (base.startsWith(".fsd-upload-")) {
        staleSeen++;
        staleLastRound++;
        continue;
      }
      const expected = attempted.get(path);
      assert.ok(expected, `unexpected file ${path}`);
      assert.ok(
        equal(await Deno.readFile(`${dir.path}/${path}`), expected),
        `${path} is not complete`,
      );
    }
    for (const name of acknowledged) {
      assert.ok(
        equal(await Deno.readFile(`${dir.path}/${name}`), attempted.get(name)!),
        `${name} lost`,
      );
    }
  }

  // A restart removes whatever staging data the kills left (each round's start did so too).
  await using server = await spawnServe(dir.path);
  const leftovers = (await walk(dir.path)).filter((p) =>
    p.split("/").pop()!.startsWith(".fsd-upload-")
  );
  assert.deepEqual(leftovers, []);
  if (staleLastRound > 0) await server.waitForLine(/^removed \d+ unfinished upload\(s\)/);
  console.log(
    `  ${ROUNDS} kills, ${attempted.size} uploads started, ${acknowledged.size} acknowledged, ` +
      `${staleSeen} staging files left by kills and removed at restart`,
  );
  assert.ok(acknowledged.size > 0);
});
