/**
 * Why race-free opens need --allow-all (issue 18, item 2; docs/SECURITY.md,
 * "Symlink races"): Deno 2.9.6 refuses every path that names a descriptor a
 * program holds (/proc/self/fd/N, /dev/fd/N, /proc/PID/fd/N) unless it runs
 * with --allow-all, even when those paths are granted by name; what it
 * allows with narrow permissions (fstat of the descriptor, O_NOFOLLOW on the
 * last component) cannot tell where an open landed. If a Deno release
 * lets the first route through with narrow permissions, this test fails,
 * and `fsd serve` can make opens race-free with them too (lib/store/opened.ts).
 */

import assert from "node:assert/strict";
import { tempDir } from "../support/files.ts";
import { probe } from "../support/probe.ts";

const PROBE = new URL("../support/fixtures/held_path_probe.ts", import.meta.url).pathname;

function heldProbe(dir: string, permissions: string[]): Promise<Record<string, string>> {
  return probe(PROBE, dir, permissions);
}

Deno.test({
  name: "held path: narrow permissions never name a held descriptor, even granted by name",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    await using dir = await tempDir();
    await Deno.mkdir(`${dir.path}/sub`);
    await Deno.writeTextFile(`${dir.path}/sub/f`, "f");
    const narrow = await heldProbe(dir.path, [
      `--allow-read=${dir.path},/proc/self/fd,/dev/fd,/proc/self`,
      `--allow-write=${dir.path}`,
    ]);
    assert.deepEqual(narrow, {
      "readLink /proc/self/fd/N": "NotCapable",
      "open /proc/self/fd/N/sub/f": "NotCapable",
      "readLink /dev/fd/N": "NotCapable",
      "readLink /proc/PID/fd/N": "NotCapable",
      "fstat N": "ok",
      "open DIR/sub with O_NOFOLLOW": "ok",
    });
    const all = await heldProbe(dir.path, ["--allow-all"]);
    assert.equal(all["readLink /proc/self/fd/N"], "ok");
    assert.equal(all["open /proc/self/fd/N/sub/f"], "ok");
  },
});
