/**
 * HAProxy (Debian's package) in front of fsd servers on one directory, configured from
 * deploy/haproxy.cfg: healthy servers stay UP over several health-check intervals, a killed
 * one goes DOWN and comes back UP when restarted. And
 * 200 clients mixing get, put and ls through 3 servers on one directory,
 * one server killed with SIGKILL in the middle. No acknowledged upload is
 * lost, no partial file appears under any name, every failed client got a
 * clear error, and retried clients succeed on the other servers. And HTTP
 * through the same file: the client's own address reaches fsd (HAProxy's
 * X-Forwarded-For, believed from --trusted-proxy only; a client's own
 * header replaced), and the HEAD /.fsd/health check takes a killed server out.
 */

import assert from "node:assert/strict";
import { FsdClient } from "../../lib/fsd/client.ts";
import { assertTools, needs } from "../support/tools.ts";
import { type ServeProcess, spawnServe, spawnServeWithHttp } from "../support/cli.ts";
import { curl } from "../support/http.ts";
import { randomBytes, tempDir } from "../support/files.ts";
import { withDeadline } from "../support/raw_client.ts";
import { startHaproxy, waitForStatus } from "../support/haproxy.ts";
import { checkAfterLoad, describeLoad, runLoad, SHARED_NAME } from "../support/load.ts";

const CLIENTS = 200;
const CONCURRENCY = 40;
const ATTEMPTS = 4;
/** Health checks each server must pass before the test calls it "UP over time". */
const CHECKS = 5;
/** A health check as fsd logs it: a PROXY v2 LOCAL header from HAProxy, so no "via". */
const CHECK_LINE = /^\[\d+\] connection from 127\.0\.0\.1 port \d+($| rejected)/;

const serveArgs = ["--proxy-protocol", "--trusted-proxy", "127.0.0.1"];

/** `fsd ls` through HAProxy, as a client would run it. */
async function listThrough(port: number): Promise<string[]> {
  const client = await FsdClient.connect("127.0.0.1", port, { timeoutMs: 10_000 });
  try {
    return (await client.list()).map((e) => e.name);
  } finally {
    client.close();
  }
}

Deno.test({
  name: "haproxy: deploy/haproxy.cfg keeps healthy servers UP over several check intervals; " +
    "a killed server goes DOWN and a restarted one comes back UP",
  ...needs("haproxy"),
  async fn() {
    assertTools("haproxy");
    await using dir = await tempDir();
    await Deno.writeTextFile(`${dir.path}/hello.txt`, "hello\n");
    const servers = await Promise.all([0, 1].map(() => spawnServe(dir.path, 0, serveArgs)));
    let restarted: ServeProcess | undefined;
    await using haproxy = await startHaproxy(dir.path, [
      { name: "fsd1", port: servers[0].port },
      { name: "fsd2", port: servers[1].port },
    ]);
    try {
      // Each server sees CHECK_LINE for every check; after CHECKS of them (CHECKS - 1 intervals
      // of deploy/haproxy.cfg's "inter"), both are still UP and no check has failed.
      await Promise.all(
        servers.map((s) => withDeadline(s.waitForLine(CHECK_LINE, CHECKS), "checks", 60_000)),
      );
      const stats = await haproxy.stats();
      for (const name of ["fsd1", "fsd2"]) {
        const stat = stats.get(`fsd_servers/${name}`);
        assert.ok(stat?.status === "UP", `${name}: ${JSON.stringify(stat)}`);
        assert.equal(stat.chkfail, 0, `${name}: failed checks`);
        assert.equal(stat.chkdown, 0, `${name}: went DOWN`);
      }
      assert.ok(!haproxy.lines.some((l) => / is DOWN/.test(l)), haproxy.lines.join("\n"));
      for (const server of servers) {
        assert.ok(!server.lines.some((l) => /PROXY header/.test(l)), server.lines.join("\n"));
      }
      // Clients are served after that, on both servers.
      for (let i = 0; i < 4; i++) {
        assert.ok((await listThrough(haproxy.port)).includes("hello.txt"));
      }
      assert.ok(servers.every((s) => s.lines.some((l) => / via 127\.0\.0\.1 port /.test(l))));

      // Killed: DOWN, and clients go to the other server.
      let since = haproxy.lines.length;
      await servers[0].stop("SIGKILL");
      await waitForStatus(haproxy, "fsd_servers/fsd1", "DOWN", since);
      assert.ok((await listThrough(haproxy.port)).includes("hello.txt"));

      // Restarted on its port (or, if another process took the port meanwhile, on a new one
      // that HAProxy is told about): UP again, and it serves.
      since = haproxy.lines.length;
      restarted = await spawnServe(dir.path, servers[0].port, serveArgs).catch(async () => {
        const fresh = await spawnServe(dir.path, 0, serveArgs);
        await haproxy.command(`set server fsd_servers/fsd1 addr 127.0.0.1 port ${fresh.port}`);
        return fresh;
      });
      await waitForStatus(haproxy, "fsd_servers/fsd1", "UP", since);
      await haproxy.command("disable server fsd_servers/fsd2");
      assert.ok((await listThrough(haproxy.port)).includes("hello.txt"));
      assert.ok(restarted.lines.some((l) => / via 127\.0\.0\.1 port /.test(l)));
    } finally {
      await haproxy.stop();
      for (const server of [...servers, restarted]) await server?.stop();
    }
  },
});

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
    await using dir = await tempDir();
    const shared = randomBytes(1_500_000, seed | 1);
    await Deno.writeFile(`${dir.path}/${SHARED_NAME}`, shared);
    const start = () => spawnServe(dir.path, 0, serveArgs);
    const servers: ServeProcess[] = await Promise.all([start(), start(), start()]);
    let replacement: ServeProcess | undefined;
    try {
      await using haproxy = await startHaproxy(
        dir.path,
        servers.map((s, i) => ({ name: `fsd${i + 1}`, port: s.port })),
      );
      const load = await runLoad({
        port: haproxy.port,
        clients: CLIENTS,
        concurrency: CONCURRENCY,
        attempts: ATTEMPTS,
        seed,
        shared,
        readStored: (name) => Deno.readFile(`${dir.path}/${name}`),
        afterClient: async (done) => {
          if (done !== Math.floor(CLIENTS / 3)) return;
          await servers[1].stop("SIGKILL");
        },
      }).catch(async (error) => {
        // Where each connection went and how it ended (HAProxy's tcplog), and the servers' last words.
        console.log(`  haproxy's last log lines:\n    ${haproxy.lines.slice(-80).join("\n    ")}`);
        console.log(`  haproxy's servers: ${JSON.stringify([...(await haproxy.stats())])}`);
        servers.forEach((s, i) =>
          console.log(`  fsd${i + 1} (port ${s.port}):\n    ${s.lines.slice(-15).join("\n    ")}`)
        );
        throw error;
      });
      // The dead server's unfinished uploads are staging files nobody holds; its restart sweeps
      // them while the others keep serving.
      replacement = await start();
      await checkAfterLoad(dir.path, load, (name) => name.startsWith("haproxy"));
      console.log(describeLoad(CLIENTS, load));
      // Under load a health check may time out and take a server out for a while: that is
      // HAProxy doing its job, and the clients it refused are among the retried failures above.
      for (const line of haproxy.lines.filter((l) => / is DOWN/.test(l))) {
        console.log(`    haproxy: ${line}`);
      }
    } finally {
      for (const server of [...servers, replacement]) await server?.stop();
    }
  },
});

/** The JSON log event of the HTTP request for `name`. */
async function requestEvent(server: ServeProcess, name: string, count: number) {
  const pattern = new RegExp(`"event":"request".*"name":"${name}"`);
  return JSON.parse(await withDeadline(server.waitForLine(pattern, count), "request log"));
}

Deno.test({
  name: "haproxy: HTTP through deploy/haproxy.cfg: fsd sees the client's address " +
    "(X-Forwarded-For from the trusted proxy only); HEAD /.fsd/health checks take a killed server out",
  ...needs("haproxy", "curl"),
  async fn() {
    assertTools("haproxy", "curl");
    await using dir = await tempDir();
    await Deno.writeTextFile(`${dir.path}/hello.txt`, "hello\n");
    const server = await spawnServeWithHttp(dir.path, [...serveArgs, "--log", "json"]);
    await using haproxy = await startHaproxy(dir.path, [
      { name: "fsd1", port: server.port, httpPort: server.httpPort },
    ]);
    try {
      // From 127.0.0.2 through HAProxy on 127.0.0.1, with a forged header of its own.
      const forged = ["--interface", "127.0.0.2", "-H", "X-Forwarded-For: 10.6.6.6"];
      const through = await curl([...forged, `http://127.0.0.1:${haproxy.httpPort}/hello.txt`]);
      assert.equal(through.status, 200, through.stderr);
      assert.equal(through.text, "hello\n");
      assert.equal((await requestEvent(server, "hello.txt", 1)).address, "127.0.0.2");
      // Straight to the server from 127.0.0.2, which is no trusted proxy: its header is ignored.
      const direct = await curl([...forged, `http://127.0.0.1:${server.httpPort}/hello.txt`]);
      assert.equal(direct.status, 200, direct.stderr);
      assert.equal((await requestEvent(server, "hello.txt", 2)).address, "127.0.0.2");
      // The health check is HEAD /.fsd/health, answered 200 while the server lives.
      await withDeadline(server.waitForLine(/"op":"HEAD",.*"status":200/), "check");
      const since = haproxy.lines.length;
      await server.stop("SIGKILL");
      await waitForStatus(haproxy, "fsd_http_servers/fsd1", "DOWN", since);
      const gone = await curl([`http://127.0.0.1:${haproxy.httpPort}/hello.txt`]);
      assert.equal(gone.status, 503); // HAProxy: no server left
    } finally {
      await haproxy.stop();
      await server.stop();
    }
  },
});
