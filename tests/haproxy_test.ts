/**
 * HAProxy (Debian's package) in front of 3 fsd servers on one directory,
 * configured from deploy/haproxy.cfg: 200 clients mixing get, put and ls,
 * one server killed with SIGKILL in the middle. No acknowledged upload is
 * lost, no partial file appears under any name, every failed client got a
 * clear error, and retried clients succeed on the other servers.
 */

import assert from "node:assert/strict";
import { bytesSource, MemorySink } from "../lib/bytes/source_sink.ts";
import { FsdClient } from "../lib/fsd/client.ts";
import { rng } from "./fuzz.ts";
import { assertTools, needs } from "./support/tools.ts";
import { dirNames, randomBytes, type ServeProcess, spawnServe, tempDir } from "./helpers.ts";

const DEPLOY_CONFIG = new URL("../deploy/haproxy.cfg", import.meta.url).pathname;
const CLIENTS = 200;
const CONCURRENCY = 40;
const ATTEMPTS = 4;

/** deploy/haproxy.cfg with this test's ports: the example file is what runs. */
async function haproxyConfig(frontend: number, servers: number[]): Promise<string> {
  const text = await Deno.readTextFile(DEPLOY_CONFIG);
  const lines = text.split("\n").filter((line) => !/^\s*server fsd\d/.test(line));
  const out = lines.map((line) =>
    line.replace(/^(\s*)bind \S+$/, `$1bind 127.0.0.1:${frontend}`)
      .replace(/^(\s*)log stdout.*$/, "$1# (log off in the test)")
  );
  const backend = out.findIndex((line) => line.startsWith("backend fsd_servers"));
  assert.ok(backend > 0, "deploy/haproxy.cfg has no backend fsd_servers");
  const at = out.findIndex((line, i) => i > backend && /^\s*default-server /.test(line));
  out.splice(at + 1, 0, ...servers.map((port, i) => `    server fsd${i + 1} 127.0.0.1:${port}`));
  return out.join("\n");
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  return port;
}

/** Waits until HAProxy answers with an fsd greeting. */
async function waitForGreeting(port: number, haproxy: Deno.ChildProcess): Promise<void> {
  let exited = false;
  haproxy.status.then(() => exited = true);
  for (let i = 0; i < 200; i++) {
    if (exited) throw new Error("haproxy exited at start");
    try {
      const client = await FsdClient.connect("127.0.0.1", port, { timeoutMs: 2000 });
      client.close();
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 50)); // haproxy is still starting
    }
  }
  throw new Error("haproxy did not pass a greeting on");
}

type Op = "get" | "put" | "ls";

Deno.test({
  name: "haproxy: 3 fsd servers behind HAProxy, 200 clients, one server killed midway",
  ...needs("haproxy"),
  async fn() {
    assertTools("haproxy");
    const haproxyVersion = new TextDecoder().decode(
      (await new Deno.Command("haproxy", { args: ["-v"], stdout: "piped" }).output()).stdout,
    ).split("\n")[0];
    const seed = Number(Deno.env.get("FSD_HAPROXY_SEED") ?? Math.floor(Math.random() * 2 ** 31));
    console.log(`  ${haproxyVersion}; seed ${seed} (repeat with FSD_HAPROXY_SEED=${seed})`);
    const random = rng(seed);
    await using dir = await tempDir();
    const shared = randomBytes(1_500_000, seed | 1);
    await Deno.writeFile(`${dir.path}/shared.bin`, shared);
    const start = () =>
      spawnServe(dir.path, 0, ["--proxy-protocol", "--trusted-proxy", "127.0.0.1"]);
    const servers: ServeProcess[] = await Promise.all([start(), start(), start()]);
    const frontend = freePort();
    const cfg = `${dir.path}/haproxy.cfg`;
    await Deno.writeTextFile(cfg, await haproxyConfig(frontend, servers.map((s) => s.port)));
    const haproxy = new Deno.Command("haproxy", {
      args: ["-db", "-f", cfg],
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const haproxyErrors = new Response(haproxy.stderr).text();
    const attempted = new Map<string, Uint8Array>();
    const acknowledged = new Set<string>();
    const failures: string[] = [];
    let retriedOk = 0;
    let replacement: ServeProcess | undefined;
    try {
      await waitForGreeting(frontend, haproxy);
      let done = 0;
      let next = 0;
      const victim = servers[1];
      const killAt = Math.floor(CLIENTS / 3);
      const one = async (index: number) => {
        const op: Op = (["get", "put", "ls"] as const)[Math.floor(random() * 3)];
        const name = `up-${index}`;
        const content = randomBytes(Math.floor(random() * 400_000), seed + index);
        if (op === "put") attempted.set(name, content);
        for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
          try {
            await runOp(frontend, op, name, content, shared);
            if (op === "put") acknowledged.add(name);
            if (attempt > 1) retriedOk++;
            return;
          } catch (error) {
            const message = error instanceof Error ? error.message : String(error);
            // A retried upload that had in fact completed finds its own file there.
            if (op === "put" && attempt > 1 && /file already exists/.test(message)) {
              assert.deepEqual(await Deno.readFile(`${dir.path}/${name}`), content);
              retriedOk++;
              return;
            }
            const target = op === "put" ? name : op === "get" ? "shared.bin" : "/";
            failures.push(`${op} ${target} attempt ${attempt}: ${message}`);
          }
        }
        throw new Error(`${op} ${name}: failed ${ATTEMPTS} times: ${failures.at(-1)}`);
      };
      const worker = async () => {
        while (next < CLIENTS) {
          const index = next++;
          await one(index);
          if (++done === killAt) {
            victim.child.kill("SIGKILL");
            await victim.exited();
          }
        }
      };
      await Promise.all(Array.from({ length: CONCURRENCY }, worker));
      assert.equal(done, CLIENTS);
      // The dead server's unfinished uploads are staging files nobody holds; its restart sweeps
      // them while the others keep serving.
      replacement = await start();
      const names = await dirNames(dir.path);
      for (const name of names) {
        assert.ok(!name.startsWith(".fsd-upload-"), `staging file left: ${name}`);
        if (name === "shared.bin" || name === "haproxy.cfg") continue;
        assert.deepEqual(await Deno.readFile(`${dir.path}/${name}`), attempted.get(name), name);
      }
      for (const name of acknowledged) assert.ok(names.includes(name), `${name} lost`);
      console.log(
        `  ${CLIENTS} clients: ${acknowledged.size} uploads acknowledged, ${failures.length} ` +
          `failed attempts, ${retriedOk} clients succeeded on a retry`,
      );
      for (const failure of failures.slice(0, 5)) console.log(`    ${failure}`);
      // Every failure said what happened: the connection broke, or the server refused.
      for (const failure of failures) {
        assert.match(failure, /closed|reset|broken pipe|refused|timed out|server error|eof/i);
      }
    } finally {
      haproxy.kill("SIGTERM");
      await haproxy.status;
      const errors = await haproxyErrors;
      if (/\[ALERT\]/.test(errors)) console.log(errors);
      for (const server of [...servers, replacement]) await server?.stop();
    }
  },
});

async function runOp(
  port: number,
  op: Op,
  name: string,
  content: Uint8Array,
  shared: Uint8Array,
): Promise<void> {
  const client = await FsdClient.connect("127.0.0.1", port, { timeoutMs: 10_000 });
  try {
    const params = { blockSize: 8192, windowSize: 8 };
    if (op === "put") {
      await client.upload(name, bytesSource(content), { params, size: content.length });
    } else if (op === "get") {
      const sink = new MemorySink();
      await client.download("shared.bin", sink, { params });
      assert.deepEqual(sink.bytes(), shared, "download differs");
    } else {
      const entries = await client.list();
      assert.ok(entries.some((e) => e.name === "shared.bin"));
    }
  } finally {
    client.close();
  }
}
