/**
 * Failures at the top level, the same for every command: a taken port gives
 * the lab's message from serve, proxy and echo alike; an address that is not
 * this machine's names the host; expected failures are one line, and
 * FSD_DEBUG=1 adds the stack and the chain of causes.
 */

import assert from "node:assert/strict";
import { runFsd } from "../support/cli.ts";
import { tempDir } from "../support/files.ts";

function oneLine(stderr: string, pattern: RegExp): void {
  const lines = stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, `one line expected: ${stderr}`);
  assert.match(lines[0], pattern);
}

Deno.test("errors: a taken port is 'Unable to bind to port N. Sorry!' for serve, proxy and echo", async () => {
  await using dir = await tempDir();
  using blocker = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = blocker.addr.port;
  const net = "--allow-net=127.0.0.1";
  const runs = [
    await runFsd([net, `--allow-read=${dir.path}`, `--allow-write=${dir.path}`], [
      "serve",
      dir.path,
      String(port),
      "--host",
      "127.0.0.1",
    ]),
    await runFsd([net], ["proxy", String(port), "127.0.0.1", "9", "--host", "127.0.0.1"]),
    await runFsd([net], ["echo", "serve", String(port), "--host", "127.0.0.1"]),
  ];
  for (const run of runs) {
    assert.equal(run.code, 1, run.stderr);
    oneLine(run.stderr, new RegExp(`^fsd: Unable to bind to port ${port}\\. Sorry! \\(.+\\)$`));
  }
});

Deno.test("errors: an address that is not this machine's names the host, not the port", async () => {
  await using dir = await tempDir();
  // 192.0.2.1 (TEST-NET-1) is never a local address; binding fails before any packet is sent.
  const host = "192.0.2.1";
  const serve = await runFsd(
    [`--allow-net=${host}`, `--allow-read=${dir.path}`, `--allow-write=${dir.path}`],
    ["serve", dir.path, "10002", "--host", host],
  );
  const proxy = await runFsd([`--allow-net=${host},127.0.0.1`], [
    "proxy",
    "10002",
    "127.0.0.1",
    "9",
    "--host",
    host,
  ]);
  for (const run of [serve, proxy]) {
    assert.equal(run.code, 1, run.stderr);
    oneLine(run.stderr, new RegExp(`^fsd: cannot listen on ${host.replaceAll(".", "\\.")}: `));
    assert.doesNotMatch(run.stderr, /port 10002/);
  }
});

Deno.test("errors: FSD_DEBUG=1 adds the stack and the causes; without it, one line", async () => {
  await using dir = await tempDir();
  using blocker = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const args = ["serve", dir.path, String(blocker.addr.port), "--host", "127.0.0.1"];
  const flags = ["--allow-net=127.0.0.1", `--allow-read=${dir.path}`, `--allow-write=${dir.path}`];
  const plain = await runFsd([...flags, "--allow-env=FSD_DEBUG"], args);
  oneLine(plain.stderr, /^fsd: Unable to bind/);
  const debug = await runFsd([...flags, "--allow-env=FSD_DEBUG"], args, {
    env: { FSD_DEBUG: "1" },
  });
  assert.equal(debug.code, 1);
  assert.match(debug.stderr, /^CommandError: Unable to bind/m);
  assert.match(debug.stderr, /^caused by: ListenError: /m);
  assert.match(debug.stderr, /^caused by: AddrInUse: /m);
  assert.match(debug.stderr, /\n {4}at /, "a stack");
  assert.match(debug.stderr.trimEnd().split("\n").at(-1)!, /^fsd: Unable to bind/);
  // Without the permission to read it, FSD_DEBUG is not read (and nothing prompts).
  const unreadable = await runFsd(flags, args, { env: { FSD_DEBUG: "1" } });
  oneLine(unreadable.stderr, /^fsd: Unable to bind/);
});
