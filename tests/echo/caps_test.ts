/**
 * Caps on the lab servers that had none (issue 18, item 11): `fsd echo
 * serve` and `fsd proxy` count connections (--max-clients, --max-per-ip)
 * and close the silent ones (--idle-timeout), as `fsd serve` does.
 */

import assert from "node:assert/strict";
import { startEchoServer } from "../../lib/echo/server.ts";
import { Relay, type RelayEvent } from "../../lib/relay/relay.ts";
import { runFsd } from "../support/cli.ts";
import { text } from "../support/files.ts";
import { withDeadline } from "../support/raw_client.ts";

/** Reads until the peer closes; what came. */
async function readToEnd(conn: Deno.Conn): Promise<string> {
  const chunks: string[] = [];
  const buffer = new Uint8Array(4096);
  for (;;) {
    const n = await conn.read(buffer).catch(() => null);
    if (n === null) return chunks.join("");
    chunks.push(text.decode(buffer.subarray(0, n)));
  }
}

async function echo(port: number, conn: Deno.Conn, line: string): Promise<string> {
  await conn.write(text.encode(line + "\n"));
  const buffer = new Uint8Array(256);
  const n = await withDeadline(conn.read(buffer), `reply on ${port}`, 5000);
  return text.decode(buffer.subarray(0, n ?? 0));
}

Deno.test("caps: echo serve refuses connections past --max-clients with a line, then serves again", async () => {
  const logs: string[] = [];
  let firstClosed: () => void = () => {};
  const closed = new Promise<void>((resolve) => firstClosed = resolve);
  const server = await startEchoServer({
    port: 0,
    hostname: "127.0.0.1",
    mode: "upper",
    maxClients: 2,
    log(line) {
      logs.push(line);
      if (/^\[1\] closed/.test(line)) firstClosed();
    },
  });
  try {
    const a = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    const b = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    assert.equal(await echo(server.port, a, "a"), "A\n");
    assert.equal(await echo(server.port, b, "b"), "B\n");
    const c = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    assert.equal(
      await withDeadline(readToEnd(c), "the refusal", 5000),
      "error: server busy: serving 2 connections, its limit\n",
    );
    c.close();
    a.close();
    // Once a has gone, a new client is served.
    await withDeadline(closed, "a's close logged", 5000);
    const d = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    assert.equal(await echo(server.port, d, "d"), "D\n");
    d.close();
    b.close();
    assert.ok(logs.some((l) => /^\[3\] refused: server busy/.test(l)), logs.join("\n"));
  } finally {
    await server.close();
  }
});

Deno.test("caps: echo serve --max-per-ip counts one address", async () => {
  const server = await startEchoServer({
    port: 0,
    hostname: "127.0.0.1",
    mode: "echo",
    maxPerIp: 1,
  });
  try {
    const a = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    assert.equal(await echo(server.port, a, "x"), "x\n");
    const b = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    assert.equal(
      await withDeadline(readToEnd(b), "the refusal", 5000),
      "error: too many connections from 127.0.0.1: at most 1\n",
    );
    b.close();
    a.close();
  } finally {
    await server.close();
  }
});

Deno.test("caps: echo serve closes a silent connection after --idle-timeout, and says so", async () => {
  const logs: string[] = [];
  const server = await startEchoServer({
    port: 0,
    hostname: "127.0.0.1",
    mode: "broadcast",
    idleTimeoutMs: 300,
    log: (line) => logs.push(line),
  });
  try {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    const got = await withDeadline(readToEnd(conn), "the idle close", 5000);
    assert.match(got, /^\* welcome/);
    conn.close();
  } finally {
    await server.close();
  }
  assert.ok(logs.some((l) => /^\[1\] closed: idle for 0\.3 s$/.test(l)), logs.join("\n"));
});

Deno.test("caps: proxy refuses past --max-per-ip and closes silent connections", async () => {
  const target = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const conn of target) held.push(conn);
  })();
  const events: RelayEvent[] = [];
  const relay = Relay.start({
    port: 0,
    hostname: "127.0.0.1",
    targetHost: "127.0.0.1",
    targetPort: target.addr.port,
    maxPerIp: 1,
    idleTimeoutMs: 300,
    log: (event) => events.push(event),
  });
  try {
    const a = await Deno.connect({ hostname: "127.0.0.1", port: relay.addr.port });
    const b = await Deno.connect({ hostname: "127.0.0.1", port: relay.addr.port });
    assert.equal(await withDeadline(readToEnd(b), "the refused one closed", 5000), "");
    // a says nothing: the relay closes it after the idle timeout.
    assert.equal(await withDeadline(readToEnd(a), "the silent one closed", 5000), "");
    a.close();
    b.close();
  } finally {
    await relay.close();
    target.close();
    await accepting.catch(() => {});
    for (const conn of held) conn.close();
  }
  assert.ok(
    events.some((e) =>
      e.event === "refused" && /too many connections from 127\.0\.0\.1/.test(e.reason)
    ),
  );
  assert.ok(events.some((e) => e.event === "close" && e.reason === "idle for 0.3 s"));
});

Deno.test("caps: the limit flags of echo serve and proxy, from the command line", async () => {
  const busy = await runFsd([], ["echo", "serve", "0", "--udp", "--max-clients", "5"]);
  assert.equal(busy.code, 2);
  assert.match(busy.stderr, /--max-clients applies to TCP servers/);
  const bad = await runFsd([], ["proxy", "0", "127.0.0.1", "9", "--idle-timeout", "-1"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /invalid --idle-timeout: -1/);
  const client = await runFsd([], ["echo", "127.0.0.1", "9", "--max-per-ip", "3", "hi"]);
  assert.equal(client.code, 2);
  assert.match(client.stderr, /--max-per-ip is an option of the server/);
});

Deno.test("caps: a chat line is encoded once for all the room's members, not once per member", async () => {
  // Counts the server's encodings of the flood's lines ("ID: flood-N"), in this process.
  const encode = TextEncoder.prototype.encode;
  let encodings = 0;
  TextEncoder.prototype.encode = function (input?: string) {
    if (input !== undefined && /^\d+: flood-/.test(input)) encodings++;
    return encode.call(this, input);
  };
  const server = await startEchoServer({ port: 0, hostname: "127.0.0.1", mode: "broadcast" });
  const members: Deno.Conn[] = [];
  try {
    for (let i = 0; i < 20; i++) {
      members.push(await Deno.connect({ hostname: "127.0.0.1", port: server.port }));
    }
    const [listener] = members;
    const sender = members[19];
    let heard = "";
    const buffer = new Uint8Array(4096);
    const hear = async (pattern: RegExp) => {
      while (!pattern.test(heard)) {
        const n = await listener.read(buffer);
        if (n === null) throw new Error(`the room closed; heard: ${heard}`);
        heard += text.decode(buffer.subarray(0, n));
      }
    };
    await withDeadline(hear(/\* 20 joined/), "every join", 5000);
    const lines = Array.from({ length: 50 }, (_, i) => `flood-${i}\n`).join("");
    await sender.write(text.encode(lines));
    await withDeadline(hear(/20: flood-49\n/), "the last line", 5000);
    assert.equal(encodings, 50, "each line encoded once for the 19 members who hear it");
  } finally {
    TextEncoder.prototype.encode = encode;
    for (const member of members) member.close();
    await server.close();
  }
});
