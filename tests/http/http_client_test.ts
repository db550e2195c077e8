/**
 * fsd's own client against the HTTP face: get, put and ls with http://
 * URLs and their documented permissions; get from a plain HTTP server too.
 */

import assert from "node:assert/strict";
import { runFsd } from "../support/cli.ts";
import { randomBytes, tempDir } from "../support/files.ts";
import { assertTools, needs } from "../support/tools.ts";
import { hexDigest, serveHttp } from "../support/http.ts";

Deno.test("http client: get (--json, -o, --continue, --sha256), put, ls as over fsd/1", async () => {
  await using served = await tempDir();
  await using local = await tempDir();
  const data = randomBytes(400_000, 7);
  await Deno.mkdir(`${served.path}/dir`);
  await Deno.writeFile(`${served.path}/dir/data.bin`, data);
  await Deno.writeTextFile(`${served.path}/dir/small.txt`, "small\n");
  await using server = await serveHttp(served.path);
  const base = `http://127.0.0.1:${server.port}`;
  const permissions = [
    `--allow-net=127.0.0.1:${server.port}`,
    `--allow-read=${local.path}`,
    `--allow-write=${local.path}`,
  ];
  const got = await runFsd(permissions, [
    "get",
    `${base}/dir/data.bin`,
    `${local.path}/data.bin`,
    "--json",
  ]);
  assert.equal(got.code, 0, got.stderr);
  assert.deepEqual(await Deno.readFile(`${local.path}/data.bin`), data);
  const report = JSON.parse(got.stdout);
  assert.equal(report.outcome, "ok");
  assert.equal(report.bytes, 400_000);
  // Never replaced without --force.
  const again = await runFsd(permissions, [
    "get",
    `${base}/dir/data.bin`,
    `${local.path}/data.bin`,
  ]);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /file exists: .*--force/);
  // -o DIR with several URLs.
  await Deno.mkdir(`${local.path}/many`);
  const many = await runFsd(permissions, [
    "get",
    `${base}/dir/small.txt`,
    `${base}/dir/data.bin`,
    "-o",
    `${local.path}/many`,
  ]);
  assert.equal(many.code, 0, many.stderr);
  assert.equal(await Deno.readTextFile(`${local.path}/many/small.txt`), "small\n");
  // --continue picks up .fsd-partial-NAME (kept with the server's mtime) with a Range.
  const mtime = (await Deno.stat(`${served.path}/dir/data.bin`)).mtime!;
  await Deno.writeFile(`${local.path}/.fsd-partial-resumed.bin`, data.subarray(0, 150_000));
  await Deno.utime(`${local.path}/.fsd-partial-resumed.bin`, mtime, mtime);
  const resumed = await runFsd(permissions, [
    "get",
    `${base}/dir/data.bin`,
    `${local.path}/resumed.bin`,
    "--continue",
    "--sha256",
    await hexDigest(data),
    "--json",
  ]);
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.equal(JSON.parse(resumed.stdout).bytes, 250_000);
  assert.deepEqual(await Deno.readFile(`${local.path}/resumed.bin`), data);
  // A wrong --sha256 keeps nothing.
  const wrong = await runFsd(permissions, [
    "get",
    `${base}/dir/data.bin`,
    `${local.path}/wrong.bin`,
    "--sha256",
    "0".repeat(64),
  ]);
  assert.equal(wrong.code, 1);
  assert.match(wrong.stderr, /SHA-256 mismatch/);
  assert.ok(!(await Deno.stat(`${local.path}/wrong.bin`).catch(() => undefined)));
  // put to a directory URL takes each file's name; an existing name is refused (409, exit 1).
  await Deno.writeTextFile(`${local.path}/a.txt`, "a\n");
  const put = await runFsd(permissions, [
    "put",
    `${base}/dir/`,
    `${local.path}/a.txt`,
    `${local.path}/data.bin`,
  ]);
  assert.equal(put.code, 1);
  assert.match(
    put.stderr,
    /failed: .*data.bin: server said 409: file already exists: dir\/data.bin/,
  );
  assert.equal(await Deno.readTextFile(`${served.path}/dir/a.txt`), "a\n");
  const missing = await runFsd(permissions, ["get", `${base}/dir/nope.txt`, `${local.path}/n`]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /^fsd: server said 404: file not found: dir\/nope.txt/m);
  // ls over HTTP prints what ls over fsd/1 prints.
  const ls = await runFsd(permissions, ["ls", `${base}/dir`, "--json"]);
  assert.equal(ls.code, 0, ls.stderr);
  const names = ls.stdout.trim().split("\n").map((line) => JSON.parse(line).name);
  assert.deepEqual(names, ["a.txt", "data.bin", "small.txt"]);
});

Deno.test({
  name: "http client: fsd get from a plain HTTP server (python3 -m http.server)",
  ...needs("python3"),
  fn: async () => {
    assertTools("python3");
    await using served = await tempDir();
    await using local = await tempDir();
    const data = randomBytes(90_000, 8);
    await Deno.writeFile(`${served.path}/plain.bin`, data);
    await using python = await startPython(served.path);
    const got = await runFsd([
      `--allow-net=127.0.0.1:${python.port}`,
      `--allow-read=${local.path}`,
      `--allow-write=${local.path}`,
    ], ["get", `http://127.0.0.1:${python.port}/plain.bin`, `${local.path}/plain.bin`]);
    assert.equal(got.code, 0, got.stderr);
    assert.deepEqual(await Deno.readFile(`${local.path}/plain.bin`), data);
  },
});

const PYTHON_SERVER = `
import functools, http.server, sys
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[1])
handler.log_message = lambda *args: None
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
print("python http port", server.server_address[1], flush=True)
server.serve_forever()
`;

/** python3 serving `dir` on a port of its choosing, read back from its first line. */
async function startPython(dir: string) {
  const child = new Deno.Command("python3", {
    args: ["-u", "-c", PYTHON_SERVER, dir],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!/port (\d+)\n/.test(text)) {
    const { value, done } = await reader.read();
    if (done) break;
    text += value;
  }
  reader.releaseLock();
  const port = Number(/port (\d+)/.exec(text)![1]);
  return {
    port,
    async [Symbol.asyncDispose]() {
      child.kill();
      await child.status;
      await child.stdout.cancel().catch(() => {});
    },
  };
}
