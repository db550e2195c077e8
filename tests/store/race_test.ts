/**
 * The symlink race of issue 18, item 2: while a loop exchanges DIR/d with a
 * symlink to a directory outside (renameat2 RENAME_EXCHANGE), clients read
 * d/secret and upload d/new-N over fsd/1, TFTP and HTTP. A server whose
 * opens are race-free (lib/store/opened.ts: fsd serve with --allow-all,
 * which Deno requires for /proc/self/fd) never serves the outside file and
 * never creates anything outside. It runs with exactly the permissions of
 * what we ship: deno.json's compile task (README's install line is the
 * same, tests/cli/readme_test.ts runs it).
 */

import assert from "node:assert/strict";
import type { ByteSink } from "../../lib/bytes/source_sink.ts";
import { bytesSource } from "../../lib/bytes/source_sink.ts";
import { FsdClient } from "../../lib/fsd/client.ts";
import { tftpDownload } from "../../lib/tftp/client.ts";
import { MAIN, spawnFsd, spawnReady } from "../support/cli.ts";
import { tempDir } from "../support/files.ts";
import { assertTools, needs } from "../support/tools.ts";

const SECONDS = 3;
const EXCHANGE = new URL("../support/fixtures/exchange.py", import.meta.url).pathname;

/** The permission flags of deno.json's compile task: what `./fsd` runs with. */
async function shippedPermissions(): Promise<string[]> {
  const config = JSON.parse(await Deno.readTextFile(new URL("../../deno.json", import.meta.url)));
  return (config.tasks.compile as string).split(" ").filter((w) => /^--(allow|unstable)-/.test(w));
}

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
    "race: a directory exchanged with a symlink to outside is never followed (fsd/1, TFTP and HTTP)",
  ...needs("python3"),
  fn: async () => {
    assertTools("python3");
    await using f = await layout();
    await using server = await spawnFsd(
      ["serve", f.root, "0", "--host", "127.0.0.1", "--tftp", "0", "--http", "0"],
      Deno.env.get("RACE_PERMISSIONS")?.split(" ") ?? await shippedPermissions(),
      /^HTTP server listening on /,
    );
    const portOf = (face: string) =>
      Number(/port (\d+)/.exec(server.lines.find((l) => l.startsWith(face))!)![1]);
    const fsdPort = portOf("File");
    const tftpPort = portOf("TFTP");
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
    const http = async () => {
      const base = `http://127.0.0.1:${server.port}`;
      for (let n = 0; Date.now() < deadline && n < 100_000; n++) {
        try {
          const got = await fetch(`${base}/d/secret`, { signal: AbortSignal.timeout(2000) });
          const text = await got.text();
          if (got.ok) counts.httpReads++;
          if (text.includes("OUTSIDE")) counts.httpLeaks++;
          const put = await fetch(`${base}/d/new-h-${n}`, {
            method: "PUT",
            body: "x",
            signal: AbortSignal.timeout(2000),
          });
          await put.body?.cancel();
          if (put.ok) counts.httpUploads++;
        } catch (error) {
          failed(error);
        }
      }
    };
    await Promise.all([fsd1(1), fsd1(2), tftp(), http()]);
    let rest = "";
    for (let chunk; !(chunk = await out.read()).done;) rest += chunk.value;
    const swaps = Number(rest.trim());
    assert.ok((await exchanger.status).success);
    const outsideNow = (await Array.fromAsync(Deno.readDir(f.outside))).map((e) => e.name);
    const report = JSON.stringify({ ...counts, swaps, outsideNow, errors: [...errors] });
    // The attack ran: the names swapped, and reads got through between the swaps.
    assert.ok(swaps >= 100 && counts.reads > 0 && counts.tftpReads > 0, report);
    assert.ok(counts.httpReads > 0 && counts.uploads + counts.httpUploads > 0, report);
    assert.equal(counts.leaks, 0, report);
    assert.equal(counts.tftpLeaks, 0, report);
    assert.equal(counts.httpLeaks, 0, report);
    assert.deepEqual(outsideNow, ["secret"], report);
  },
});

/** `fsd serve ROOT` with narrow permissions, expected to refuse: killed after 20 s if it starts. */
async function narrowServe(root: string) {
  const output = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--quiet",
      "--no-prompt",
      "--allow-net=127.0.0.1",
      `--allow-read=${root}`,
      `--allow-write=${root}`,
      MAIN,
      "serve",
      root,
      "0",
      "--host",
      "127.0.0.1",
    ],
    stdin: "null",
    signal: AbortSignal.timeout(20_000),
  }).output();
  const text = new TextDecoder();
  return {
    code: output.code,
    stdout: text.decode(output.stdout),
    stderr: text.decode(output.stderr),
  };
}

Deno.test("race: without race-free opens, serve refuses a DIR other users can write into", async () => {
  await using f = await layout();
  await Deno.chmod(`${f.root}/d`, 0o777);
  const refused = await narrowServe(f.root);
  assert.equal(refused.code, 1, refused.stdout);
  assert.match(refused.stderr, /d is writable by other users \(mode 0777\)/);
});

/** Whether the tests run as root (a file made here says, without --allow-sys). */
async function runningAsRoot(): Promise<boolean> {
  const probe = await Deno.makeTempFile();
  try {
    return (await Deno.lstat(probe)).uid === 0;
  } finally {
    await Deno.remove(probe);
  }
}

Deno.test({
  name: "race: without race-free opens, serve refuses a directory under DIR owned by another user",
  ignore: !(await runningAsRoot()),
  fn: async () => {
    await using f = await layout();
    // 0755, but its owner (nobody, not the server's user nor root) can still swap what is in it
    await Deno.chown(`${f.root}/d`, 65534, 65534);
    const refused = await narrowServe(f.root);
    assert.equal(refused.code, 1, refused.stdout);
    assert.match(
      refused.stderr,
      /d is owned by another user \(uid 65534, not the server's or root's\)/,
    );
    // and no probe file is left in DIR
    assert.deepEqual((await Array.fromAsync(Deno.readDir(f.root))).map((e) => e.name).sort(), [
      "d",
      "l",
    ]);
  },
});

Deno.test("race: a directory made by a client is never group- or world-writable, whatever the umask", async () => {
  await using f = await layout();
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
