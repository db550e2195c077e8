/**
 * An independent client in another language: tests/support/interop/fsd1_client.py,
 * written from docs/PROTOCOL.md alone (Python's standard library), runs its
 * rule checks against the real `fsd serve` process.
 */

import assert from "node:assert/strict";
import { spawnServe } from "../support/cli.ts";
import { tempDir } from "../support/files.ts";
import { assertTools, needs } from "../support/tools.ts";

Deno.test({
  name: "interop: an independent Python client finds every fsd/1 rule it checks holding",
  ...needs("python3"),
  async fn() {
    assertTools("python3");
    await using dir = await tempDir();
    await using server = await spawnServe(dir.path);
    const script = new URL("../support/interop/fsd1_client.py", import.meta.url).pathname;
    const out = await new Deno.Command("python3", {
      args: [script, "127.0.0.1", String(server.port), dir.path],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const report = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, report);
    assert.match(report, /^7 passed, 0 failed$/m);
  },
});
