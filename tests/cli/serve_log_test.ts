/**
 * `fsd serve` logs each event as a line on stdout; a stdout that goes away
 * (the reader of its pipe quits) loses the lines, never the server.
 */

import assert from "node:assert/strict";
import { MAIN, net, runFsd, rw } from "../support/cli.ts";
import { tempDir } from "../support/files.ts";
import { withDeadline } from "../support/raw_client.ts";

Deno.test("serve: with its stdout closed, the server goes on serving", async () => {
  await using served = await tempDir();
  await using work = await tempDir();
  await Deno.writeTextFile(`${served.path}/a.txt`, "hello");
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--quiet",
      "--no-prompt",
      "--allow-net",
      ...rw(served.path),
      MAIN,
      "serve",
      served.path,
      "0",
      "--host",
      "127.0.0.1",
    ],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  try {
    // The first line says where it listens; then the reader goes away.
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    while (!text.includes("\n")) {
      const { value, done } = await withDeadline(reader.read(), "serve start", 30_000);
      if (done) throw new Error(`serve exited: ${text}`);
      text += value;
    }
    const port = Number(/port (\d+)/.exec(text)![1]);
    await reader.cancel();
    for (const name of ["one.txt", "two.txt"]) {
      // Each request's log line now meets a closed pipe.
      const got = await runFsd([net(port), ...rw(work.path)], [
        "get",
        "127.0.0.1",
        String(port),
        "a.txt",
        `${work.path}/${name}`,
      ]);
      assert.equal(got.code, 0, got.stderr);
      assert.equal(await Deno.readTextFile(`${work.path}/${name}`), "hello");
    }
  } finally {
    child.kill("SIGTERM");
    await child.status;
  }
});
