/**
 * An upload is flushed to disk before it gets its name (crash safety), and
 * that flush is started behind the network as the file arrives, so the last
 * one has only the tail left (lib/store/staging.ts, FlushBehind).
 */

import assert from "node:assert/strict";
import { FLUSH_BEHIND_BYTES, StagedFile } from "../../lib/store/staging.ts";
import { MAIN, net, runFsd, spawnReady } from "../support/cli.ts";
import { assertSameBytes, randomBytes, tempDir } from "../support/files.ts";
import { assertTools, needs } from "../support/tools.ts";

/** Writes `bytes` to `staged` in 64 KiB pieces, counting each as the server's sink does. */
async function writeCounted(staged: StagedFile, bytes: Uint8Array, every: number): Promise<void> {
  for (let at = 0; at < bytes.length; at += 65536) {
    const piece = bytes.subarray(at, at + 65536);
    let written = 0;
    while (written < piece.length) written += await staged.file.write(piece.subarray(written));
    staged.wrote(piece.length, every);
  }
}

Deno.test("a staged file flushed behind its writes commits whole and leaves no descriptor open", async () => {
  await using dir = await tempDir();
  const bytes = randomBytes(1024 * 1024, 3);
  const staged = await StagedFile.create(`${dir.path}/f`, ".fsd-upload-");
  await writeCounted(staged, bytes, 128 * 1024);
  await staged.commit({ sync: true });
  await staged.discard(); // as every caller's finally does after a commit: nothing left to do
  assertSameBytes(await Deno.readFile(`${dir.path}/f`), bytes, "committed file");
  assert.deepEqual([...Deno.readDirSync(dir.path)].map((e) => e.name), ["f"]);
});

Deno.test("a staged file discarded while a flush is in flight leaves nothing behind", async () => {
  await using dir = await tempDir();
  const staged = await StagedFile.create(`${dir.path}/f`, ".fsd-upload-");
  await writeCounted(staged, randomBytes(512 * 1024, 4), 64 * 1024);
  await staged.discard();
  assert.deepEqual([...Deno.readDirSync(dir.path)], []);
});

Deno.test({
  name: "fsd serve flushes an upload behind the network on a second descriptor, then once more",
  ...needs("strace"),
  async fn() {
    assertTools("strace");
    await using root = await tempDir();
    await using work = await tempDir();
    const log = `${work.path}/strace.log`;
    const bytes = randomBytes(FLUSH_BEHIND_BYTES * 2 + 12345, 5);
    await Deno.writeFile(`${work.path}/big`, bytes);
    const server = await spawnReady("strace", [
      ...["-f", "--seccomp-bpf", "-qq", "-e", "trace=fdatasync,write", "-o", log],
      ...[Deno.execPath(), "run", "--quiet", "--no-prompt", "--allow-net"],
      ...[`--allow-read=${root.path}`, `--allow-write=${root.path}`, MAIN],
      ...["serve", root.path, "0", "--host", "127.0.0.1"],
    ], /^File server listening on /);
    try {
      const put = await runFsd([net(server.port), `--allow-read=${work.path}`], [
        ...["put", "127.0.0.1", String(server.port), `${work.path}/big`, "big"],
      ]);
      assert.equal(put.code, 0, put.stderr);
    } finally {
      // strace outlives a signal while its command runs: end the server, its only child, instead.
      const pid = String(server.child.pid);
      await new Deno.Command("pkill", { args: ["-TERM", "-P", pid] }).output();
      await server.exited();
    }
    assertSameBytes(await Deno.readFile(`${root.path}/big`), bytes, "uploaded file");
    // The calls in the order made; a file write is a large one (the server's socket writes are ACKs).
    const calls = Deno.readTextFileSync(log).split("\n").flatMap((line) => {
      if (/ fdatasync\(\d+/.test(line)) return ["sync"]; // made (its end may be logged apart)
      const size = / write\(\d+, .*, (\d+)(\)| <unfinished)/.exec(line)?.[1];
      return Number(size) >= 4096 ? ["write"] : [];
    });
    const firstSync = calls.indexOf("sync");
    assert.ok(firstSync >= 0, "no fdatasync at all");
    // A flush started while the file was still being written, and the last one after every write.
    assert.ok(calls.lastIndexOf("write") > firstSync, "the only flushes came after the last write");
    assert.equal(calls.at(-1), "sync", "the file was written after its last flush");
  },
});
