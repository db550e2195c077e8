/**
 * A command run from source with too narrow a permission for a local path
 * (LOCAL, -o DIR, -r's directory, a --pcap FILE, serve's DIR, an accounts
 * file) says which flag is missing and exits 1: Deno is asked first, so it
 * never prompts, even on a terminal, where it otherwise would.
 */

import assert from "node:assert/strict";
import { MAIN } from "../support/cli.ts";
import { tempDir } from "../support/files.ts";
import { PROMPT, PtyLine } from "../support/pty.ts";
import { startServer } from "../support/server.ts";
import { needs } from "../support/tools.ts";

Deno.test({
  name:
    "permissions: a missing --allow-read or --allow-write for a local path is fsd's message on a terminal, never Deno's prompt",
  ...needs("script"),
  fn: async () => {
    await using server = await startServer();
    await Deno.writeTextFile(`${server.root}/f`, "hello\n");
    await using dir = await tempDir();
    const t = dir.path;
    await using other = await tempDir();
    const u = other.path;
    await Deno.writeTextFile(`${t}/up`, "up\n");
    const port = String(server.port);
    const net = "--allow-net=127.0.0.1";
    const cases: [string[], string[], RegExp][] = [
      [[net], ["get", "127.0.0.1", port, "f", `${t}/x`], /cannot read \S+\/x: needs --allow-read=/],
      [
        [net, `--allow-read=${t}`],
        ["get", "127.0.0.1", port, "f", `${t}/x`],
        /cannot write \S+: needs --allow-write=/,
      ],
      [[net], ["get", "127.0.0.1", port, "f", "-o", `${t}/d`], /needs --allow-read=\S+\/d /],
      [[net], ["get", "-r", "127.0.0.1", port, ".", `${t}/r`], /needs --allow-read=\S+\/r /],
      [[net], ["put", "127.0.0.1", port, `${t}/up`], /cannot read \S+\/up: needs --allow-read=/],
      [[net], ["put", "-r", "127.0.0.1", port, t], /cannot read \S+: needs --allow-read=/],
      [
        [net],
        ["get", "127.0.0.1", port, "f", "-", "--pcap", `${t}/p.pcap`],
        /cannot write \S+\/p\.pcap: needs --allow-write=\S+\/p\.pcap /,
      ],
      [[net], ["serve", t, "0", "--host", "127.0.0.1"], /cannot read \S+: needs --allow-read=/],
      [[], ["user", "list", `${t}/users`], /cannot read \S+\/users: needs --allow-read=/],
      [
        [net, `--allow-read=${t}`, `--allow-write=${t}`],
        ["serve", t, "0", "--host", "127.0.0.1", "--users", `${u}/users`],
        /cannot read \S+\/users: needs --allow-read=\S+\/users /,
      ],
      [[net], ["echo", "serve", "0", "--login", `${u}/users`], /needs --allow-read=\S+\/users /],
      [
        [net],
        ["proxy", "0", "127.0.0.1", port, "--pcap", `${t}/p.pcap`],
        /--allow-write=\S+p\.pcap /,
      ],
      [[net], ["ls", "127.0.0.1", port, "--ca", `${u}/ca.pem`], /needs --allow-read=\S+\/ca\.pem /],
    ];
    for (const [permissions, args, message] of cases) {
      const line = [Deno.execPath(), "run", "--quiet", ...permissions, MAIN, ...args]
        .map((word) => `'${word}'`).join(" ");
      await using pty = new PtyLine(line, { cwd: t, env: { NO_COLOR: "1" } });
      const code = await pty.finish(20_000, args.join(" "));
      const shown = `fsd ${args.join(" ")}:\n${pty.output}`;
      assert.doesNotMatch(pty.output, PROMPT, shown);
      assert.match(pty.output, new RegExp(`^fsd: .*${message.source}`, "m"), shown);
      assert.equal(code, 1, shown);
    }
    assert.deepEqual([...Deno.readDirSync(t)].map((entry) => entry.name), ["up"]);
  },
});
