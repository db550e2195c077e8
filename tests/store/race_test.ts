/**
 * The symlink race of issue 18, item 2: while a loop exchanges DIR/d with a
 * symlink to a directory outside (renameat2 RENAME_EXCHANGE), clients read
 * d/secret and upload d/new-N over fsd/1, TFTP and HTTP. The server runs
 * with exactly the permissions the installed and compiled commands have
 * (README.md's `deno install` line, deno.json's `compile` task: --allow-all,
 * which Deno requires for /proc/self/fd, and --unstable-net); its opens are
 * race-free (lib/store/opened.ts), so it never serves the outside file and
 * never creates anything outside.
 */

import assert from "node:assert/strict";
import type { ByteSink } from "../../lib/bytes/source_sink.ts";
import { bytesSource } from "../../lib/bytes/source_sink.ts";
import { FsdClient } from "../../lib/fsd/client.ts";
import { tftpDownload } from "../../lib/tftp/client.ts";
import { MAIN, runFsd, spawnFsd, spawnReady } from "../support/cli.ts";
import { isRoot } from "../support/cluster.ts";
import { tempDir } from "../support/files.ts";
import { readmeInstallLine } from "../support/pty.ts";
import { assertTools, needs } from "../support/tools.ts";

const SECONDS = 3;
const EXCHANGE = new URL("../support/fixtures/exchange.py", import.meta.url).pathname;

/** A sink that keeps what it gets as text. */
function textSink(): ByteSink & { text(): string } {
  const chunks: Uint8Array[] = [];
  return {
    write(bytes) {
      chunks.push(bytes.slice());
      return Promise.resolve(bytes.length);
    },
    text: () => new TextDecoder().decode(new Uint8Array(chunks.flatMap((c) => [...c]))),
  };
}

/**
 * The permission flags of a `deno install|compile|run ... main.ts` line
 * (--unstable-lazy-dynamic-imports only changes when modules load: not one).
 */
const permissionFlags = (line: string) =>
  line.split(/\s+/).filter((word) =>
    /^--(allow|deny|unstable)-/.test(word) && word !== "--unstable-lazy-dynamic-imports"
  ).sort();

/** What the installed and compiled commands run with; the README and deno.json must agree. */
async function shippedPermissions(): Promise<string[]> {
  const config = JSON.parse(await Deno.readTextFile(new URL("../../deno.json", import.meta.url)));
  const installed = permissionFlags(await readmeInstallLine());
  assert.deepEqual(permissionFlags(config.tasks.compile), installed);
  return installed;
}

async function layout() {
  const dir = await tempDir();
  const root = `${dir.path}/root`;
  const outside = `${dir.path}/outside`;
  await Deno.mkdir(`${root}/d`, { recursive: true });
  await Deno.mkdir(outside);
  await Deno.writeTextFile(`${root}/d/secret`, "inside\n");
  await Deno.writeTextFile(`${outside}/secret`, "OUTSIDE\n");
  await Deno.symlink(outside, `${root}/l`);
  return { dir, root, outside, [Symbol.asyncDispose]: () => dir[Symbol.asyncDispose]() };
}

Deno.test({
  name:
    "race: a directory exchanged with a symlink to outside is never followed (fsd/1, TFTP and HTTP, the installed permissions)",
  ...needs("python3"),
  fn: async () => {
    assertTools("python3");
    const shipped = await shippedPermissions();
    assert.deepEqual(shipped, ["--allow-all", "--unstable-net"]);
    await using f = await layout();
    await using server = await spawnFsd(
      ["serve", f.root, "0", "--host", "127.0.0.1", "--tftp", "0", "--http", "0"],
      Deno.env.get("RACE_PERMISSIONS")?.split(" ") ?? shipped,
      /^HTTP server listening on /, // the last start line
    );
    const portOf = (start: string) =>
      Number(/port (\d+)/.exec(server.lines.find((l) => l.startsWith(start))!)![1]);
    const [fsdPort, tftpPort] = [portOf("File"), portOf("TFTP")];
    const http = `http://127.0.0.1:${server.port}`;
    const exchanger = new Deno.Command("python3", {
      args: [EXCHANGE, `${f.root}/d`, `${f.root}/l`, String(SECONDS)],
      stdout: "piped",
    }).spawn();
    const out = exchanger.stdout.pipeThrough(new TextDecoderStream()).getReader();
    assert.equal((await out.read()).value?.trim(), "ready");
    const deadline = Date.now() + SECONDS * 1000;
    const counts = {
      reads: 0,
      leaks: 0,
      uploads: 0,
      tftpReads: 0,
      tftpLeaks: 0,
      httpReads: 0,
      httpLeaks: 0,
      httpUploads: 0,
    };
    const errors = new Map<string, number>();
    const failed = (error: unknown) => {
      const message = String(error).slice(0, 60);
      errors.set(message, (errors.get(message) ?? 0) + 1);
    };
    const fsd1 = async (worker: number) => {
      let client = await FsdClient.connect("127.0.0.1", fsdPort);
      try {
        for (let n = 0; Date.now() < deadline && n < 100_000; n++) {
          if (client.closed) client = await FsdClient.connect("127.0.0.1", fsdPort);
          const sink = textSink();
          await client.download("d/secret", sink).then(() => counts.reads++, failed);
          if (sink.text().includes("OUTSIDE")) counts.leaks++;
          if (client.closed) client = await FsdClient.connect("127.0.0.1", fsdPort);
          const up = `d/new-${worker}-${n}`;
          await client.upload(up, bytesSource(new TextEncoder().encode("x")))
            .then(() => counts.uploads++, failed);
        }
      } finally {
        client.close();
      }
    };
    const tftp = async () => {
      for (let n = 0; Date.now() < deadline && n < 100_000; n++) {
        const sink = textSink();
        await tftpDownload(
          { hostname: "127.0.0.1", port: tftpPort, timeoutMs: 2000, retransmitMs: 200 },
          "d/secret",
          sink,
        ).then(() => counts.tftpReads++, failed);
        if (sink.text().includes("OUTSIDE")) counts.tftpLeaks++;
      }
    };
    const web = async () => {
      for (let n = 0; Date.now() < deadline && n < 100_000; n++) {
        const read = await fetch(`${http}/d/secret`);
        const text = await read.text();
        if (read.ok) counts.httpReads++;
        else failed(`HTTP ${read.status} ${text}`);
        if (text.includes("OUTSIDE")) counts.httpLeaks++;
        const put = await fetch(`${http}/d/web-${n}`, { method: "PUT", body: "x" });
        const reply = await put.text();
        if (put.ok) counts.httpUploads++;
        else failed(`HTTP ${put.status} ${reply}`);
      }
    };
    await Promise.all([fsd1(1), fsd1(2), tftp(), web()]);
    let rest = "";
    for (let chunk; !(chunk = await out.read()).done;) rest += chunk.value;
    const swaps = Number(rest.trim());
    assert.ok((await exchanger.status).success);
    const outsideNow = (await Array.fromAsync(Deno.readDir(f.outside))).map((e) => e.name);
    const report = JSON.stringify({ ...counts, swaps, outsideNow, errors: [...errors] });
    // The attack ran: the names swapped, and reads got through between the swaps.
    assert.ok(
      swaps >= 100 && counts.reads > 0 && counts.tftpReads > 0 && counts.httpReads > 0,
      report,
    );
    assert.equal(counts.leaks, 0, report);
    assert.equal(counts.tftpLeaks, 0, report);
    assert.equal(counts.httpLeaks, 0, report);
    assert.deepEqual(outsideNow, ["secret"], report);
  },
});

Deno.test("race: without race-free opens, serve refuses a DIR other users can write into", async () => {
  await using f = await layout();
  await Deno.chmod(`${f.root}/d`, 0o777);
  const refused = await runFsd(
    ["--allow-net=127.0.0.1", `--allow-read=${f.root}`, `--allow-write=${f.root}`],
    ["serve", f.root, "0", "--host", "127.0.0.1"],
  );
  assert.equal(refused.code, 1, refused.stdout);
  assert.match(refused.stderr, /d is writable by other users \(mode 0777\)/);
});

Deno.test({
  name:
    "race: without race-free opens, serve refuses a directory under DIR owned by another user (its owner could swap it)",
  // chown to another user needs root, as the test machine's and CI's runs are (a root server:
  // directories must then be root's own).
  ignore: Deno.build.os !== "linux" || !isRoot(),
  fn: async () => {
    await using f = await layout();
    await Deno.chown(`${f.root}/d`, 65534, 65534);
    const flags = ["--allow-net=127.0.0.1", `--allow-read=${f.root}`, `--allow-write=${f.root}`];
    const refused = await runFsd(flags, ["serve", f.root, "0", "--host", "127.0.0.1"]);
    assert.equal(refused.code, 1, refused.stdout);
    assert.match(
      refused.stderr,
      /d is owned by another user \(uid 65534; the server runs as uid \d+\)/,
    );
    // Nothing is left of the probe that found the server's uid.
    assert.deepEqual((await Array.fromAsync(Deno.readDir(f.root))).map((e) => e.name).sort(), [
      "d",
      "l",
    ]);
    // Mode 0755 and owned by the server's own user: the same tree is served.
    await Deno.chown(`${f.root}/d`, 0, 0);
    await using served = await spawnFsd(
      ["serve", f.root, "0", "--host", "127.0.0.1"],
      flags,
      /^File server listening on /,
    );
    assert.ok(served.port > 0);
  },
});

Deno.test("race: a directory made by a client is never group- or world-writable, whatever the umask", async () => {
  await using f = await layout();
  // under umask 000, a mkdir without a mode would leave 0777: a directory StrictModes never saw
  await using server = await spawnReady("sh", [
    "-c",
    'umask 000; exec "$0" "$@"',
    Deno.execPath(),
    "run",
    "--quiet",
    "--no-prompt",
    "--allow-net=127.0.0.1",
    `--allow-read=${f.root}`,
    `--allow-write=${f.root}`,
    MAIN,
    "serve",
    f.root,
    "0",
    "--host",
    "127.0.0.1",
  ], /^File server listening on /);
  const client = await FsdClient.connect("127.0.0.1", server.port);
  try {
    await client.makeDirectory("made");
  } finally {
    client.close();
  }
  assert.equal((await Deno.lstat(`${f.root}/made`)).mode! & 0o777, 0o755);
});
