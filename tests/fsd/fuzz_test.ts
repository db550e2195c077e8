/**
 * A bounded fuzz run against a live server (tests/fsd/fuzz.ts has the long
 * mode): 20,000 random and damaged streams while a legitimate 64 MiB
 * download runs beside them and must arrive byte-exact.
 * FSD_FUZZ_SEED=N repeats a run; the seed is printed either way.
 */

import assert from "node:assert/strict";
import { FsdClient } from "../../lib/fsd/client.ts";
import { parseCidr } from "../../lib/net/ip.ts";
import { checkAnswer, fuzz, FUZZ_ACCOUNT, seedDirectory } from "./fuzz.ts";
import { parseAccounts } from "../../lib/auth/accounts.ts";
import { Authenticator } from "../../lib/auth/authenticator.ts";
import { hashPassword } from "../../lib/auth/password.ts";
import { randomBytes } from "../support/files.ts";
import { RawClient, wire } from "../support/raw_client.ts";
import { startServer } from "../support/server.ts";

// Seed 647562379, stream 19230 asked for crc32=1: its SUM is 6 bytes, which the checker once took for a cut SHA-256 SUM.
Deno.test("fuzz checker: a SUM is as long as the OACK's granted checksum, and none without one", () => {
  const text = (value: string) => [...new TextEncoder().encode(value), 0];
  const oack = (name: string) => [0, 8, 0, 1, ...text(name), ...text("1")];
  const dat = [0, 3, 0, 1, 0, 2, 7, 7];
  const sum = (size: number) => [0, 9, ...new Array(size).fill(1)];
  assert.equal(checkAnswer(new Uint8Array([...oack("crc32"), ...dat, ...sum(4)])), null);
  assert.equal(checkAnswer(new Uint8Array([...oack("sha256"), ...dat, ...sum(32)])), null);
  assert.equal(checkAnswer(new Uint8Array([...oack("sha256"), ...dat, ...sum(4)])), "cut SUM");
  assert.equal(checkAnswer(new Uint8Array([...dat, ...sum(4)])), "SUM that no OACK granted");
});

Deno.test("fuzz: 20,000 streams, every answer valid, the server up, a 64 MiB download intact", async () => {
  const seed = Number(Deno.env.get("FSD_FUZZ_SEED") ?? Math.floor(Math.random() * 2 ** 31));
  console.log(`  fuzz seed ${seed} (repeat with FSD_FUZZ_SEED=${seed})`);
  await using ctx = await startServer({ maxClients: 0, maxPerIp: 0 });
  await seedDirectory(ctx.root);
  const size = 64 * 1024 * 1024;
  const content = randomBytes(size, seed | 1);
  await Deno.writeFile(`${ctx.root}/legit.bin`, content);

  // The legitimate transfer compares as it goes instead of keeping a copy.
  let offset = 0;
  let mismatch = -1;
  const compare = {
    write(bytes: Uint8Array) {
      for (let i = 0; i < bytes.length; i++) {
        if (mismatch < 0 && bytes[i] !== content[offset + i]) mismatch = offset + i;
      }
      offset += bytes.length;
      return Promise.resolve(bytes.length);
    },
  };
  // Settled at once (a rejection is kept, not left unhandled while the fuzzer runs).
  const legit = (async () => {
    const client = await FsdClient.connect("127.0.0.1", ctx.port);
    try {
      return await client.download("legit.bin", compare);
    } finally {
      client.close();
    }
  })().then((bytes) => ({ bytes }), (error: Error) => ({ error }));

  const report = await fuzz(ctx.port, { seed, streams: 20_000, concurrency: 32 });
  console.log(
    `  ${report.streams} streams in ${(report.ms / 1000).toFixed(1)} s, answers ${
      JSON.stringify(report.answers)
    }`,
  );
  assert.deepEqual(report.failures, []);
  assert.equal(report.streams, 20_000);
  const outcome = await legit;
  const legitLog = ctx.logs.filter((line) => line.startsWith("[1] "));
  assert.ok(
    !("error" in outcome),
    `the 64 MiB download failed: ${"error" in outcome && outcome.error.message}; server: ${
      legitLog.join(" | ")
    }`,
  );
  assert.equal(outcome.bytes, size);
  assert.equal(mismatch, -1, `the 64 MiB download differs at byte ${mismatch}`);
  await using after = await RawClient.greeted(ctx.port);
  await after.send(wire.drq());
  await after.receiveBlocks();
});

Deno.test("fuzz: 5,000 streams after valid and damaged PROXY headers, every answer valid", async () => {
  const seed = Number(Deno.env.get("FSD_FUZZ_SEED") ?? Math.floor(Math.random() * 2 ** 31));
  console.log(`  fuzz seed ${seed} (repeat with FSD_FUZZ_SEED=${seed})`);
  await using ctx = await startServer({
    maxClients: 0,
    maxPerIp: 0,
    proxyProtocol: { trusted: [parseCidr("127.0.0.1")!], timeoutMs: 2000 },
  });
  await seedDirectory(ctx.root);
  const report = await fuzz(ctx.port, { seed, streams: 5_000, concurrency: 32, proxyHeader: true });
  console.log(`  answers ${JSON.stringify(report.answers)}`);
  assert.deepEqual(report.failures, []);
  assert.ok(ctx.logs.some((line) => / via 127\.0\.0\.1 port /.test(line)), "no header accepted");
  assert.ok(ctx.logs.some((line) => /rejected with error 0: .*PROXY/.test(line)), "none refused");
});

Deno.test("fuzz: 5,000 streams with logins against a server with accounts, every answer valid", async () => {
  const seed = Number(Deno.env.get("FSD_FUZZ_SEED") ?? Math.floor(Math.random() * 2 ** 31));
  console.log(`  fuzz seed ${seed} (repeat with FSD_FUZZ_SEED=${seed})`);
  const hash = await hashPassword(FUZZ_ACCOUNT.password, { ln: 10, r: 8, p: 1 });
  const authenticator = await Authenticator.create(
    parseAccounts(`${FUZZ_ACCOUNT.user}:${hash}:rw\n`),
    { throttle: { freeFailures: 1_000_000 } }, // the fuzzer is one address: let every login be checked
  );
  await using ctx = await startServer({ maxClients: 0, maxPerIp: 0, accounts: { authenticator } });
  await seedDirectory(ctx.root);
  const report = await fuzz(ctx.port, { seed, streams: 5_000, concurrency: 32 });
  console.log(`  answers ${JSON.stringify(report.answers)}`);
  assert.deepEqual(report.failures, []);
  assert.ok(ctx.logs.some((line) => /login as "\S+": refused/.test(line)), "no login checked");
  assert.ok(ctx.logs.some((line) => /refused with error 7: login required/.test(line)));
});
