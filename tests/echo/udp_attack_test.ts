/**
 * UDP under attack: the echo servers and the UDP relay against forged
 * sources (a raw socket, root only), loops between servers, amplification
 * and a third party writing to a relayed client's upstream port.
 */

import assert from "node:assert/strict";
import { refusedSource, startUdpEcho, type UdpEchoServer } from "../../lib/echo/udp_server.ts";
import { UdpRelay, type UdpRelayEvent } from "../../lib/relay/udp_relay.ts";
import { assertTools, needs } from "../support/tools.ts";
import { runFsd } from "../support/cli.ts";
import { text } from "../support/files.ts";
import { withDeadline } from "../support/raw_client.ts";

const FORGE = new URL("../support/udp_forge.py", import.meta.url).pathname;

/** Sends one datagram from a forged source (a raw socket). */
async function forge(from: [string, number], to: [string, number], payload: string) {
  const hex = Array.from(text.encode(payload), (b) => b.toString(16).padStart(2, "0")).join("");
  const out = await new Deno.Command("python3", {
    args: [FORGE, from[0], String(from[1]), to[0], String(to[1]), hex],
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, text.decode(out.stderr));
}

/** An echo server whose log lines can be awaited. */
async function echoServer(
  mode: "echo" | "upper" | "ceil" | "broadcast",
  maxMembers?: number,
  idleMs?: number,
) {
  const lines: string[] = [];
  const waiters: { pattern: RegExp; resolve: () => void }[] = [];
  const server = await startUdpEcho({
    port: 0,
    hostname: "127.0.0.1",
    mode,
    maxMembers,
    idleMs,
    log(line) {
      lines.push(line);
      for (const w of [...waiters]) {
        if (w.pattern.test(line)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve();
        }
      }
    },
  });
  const logged = (pattern: RegExp, what: string) =>
    withDeadline(
      lines.some((l) => pattern.test(l))
        ? Promise.resolve()
        : new Promise<void>((resolve) => waiters.push({ pattern, resolve })),
      what,
      5000,
    );
  return Object.assign(server, { lines, logged, [Symbol.asyncDispose]: () => server.close() });
}

/** A client socket on loopback that sends to and reads from `server`. */
function client(hostname = "127.0.0.1") {
  const socket = Deno.listenDatagram({ transport: "udp", hostname, port: 0 });
  return {
    socket,
    port: (socket.addr as Deno.NetAddr).port,
    send: (bytes: Uint8Array | string, port: number, to = "127.0.0.1") =>
      socket.send(typeof bytes === "string" ? text.encode(bytes) : bytes, {
        transport: "udp",
        hostname: to,
        port,
      }),
    receive: async (what = "a reply") => (await withDeadline(socket.receive(), what, 5000))[0],
    [Symbol.dispose]: () => socket.close(),
  };
}

/** A probe answered: the server is alive and answers strangers. */
async function probe(server: UdpEchoServer, reply: string) {
  using c = client();
  await c.send("probe", server.port);
  assert.equal(text.decode(await c.receive()), reply);
}

Deno.test("udp echo: the rules on sources (own port, ports below 1024)", () => {
  const local = { hostname: "0.0.0.0", port: 7000 };
  assert.equal(refusedSource({ hostname: "127.0.0.1", port: 7000 }, local), true);
  assert.equal(refusedSource({ hostname: "10.9.8.9", port: 7000 }, local), true);
  assert.equal(refusedSource({ hostname: "127.0.0.1", port: 7 }, local), true);
  assert.equal(refusedSource({ hostname: "127.0.0.1", port: 1023 }, local), true);
  assert.equal(refusedSource({ hostname: "127.0.0.1", port: 40000 }, local), false);
});

Deno.test({
  name: "udp echo: a datagram forged from the server's own address and port is not answered",
  ...needs("raw-sockets"),
  async fn() {
    assertTools("raw-sockets");
    await using server = await echoServer("upper");
    await forge(["127.0.0.1", server.port], ["127.0.0.1", server.port], "loop");
    await server.logged(/not answered: the server's own port/, "the refusal");
    await probe(server, "PROBE");
    assert.equal(server.stats.sent, 1, "only the probe was answered");
  },
});

Deno.test({
  name: "udp echo: a datagram forged from port 7 (a classic echo) is not answered",
  ...needs("raw-sockets"),
  async fn() {
    assertTools("raw-sockets");
    await using server = await echoServer("echo");
    await forge(["127.0.0.1", 7], ["127.0.0.1", server.port], "hello");
    await server.logged(/port 7: not answered: a port below 1024/, "the refusal");
    await probe(server, "probe");
    assert.equal(server.stats.sent, 1);
  },
});

Deno.test({
  name: "udp echo: a datagram forged between an echo and an upper server stops ping-ponging",
  ...needs("raw-sockets"),
  async fn() {
    assertTools("raw-sockets");
    await using a = await echoServer("echo");
    await using b = await echoServer("upper");
    // b answers a, a echoes to b, ...: each server sees the other as one source.
    await forge(["127.0.0.1", a.port], ["127.0.0.1", b.port], "ping");
    await withDeadline(
      Promise.race([
        a.logged(/over \d+ datagrams\/s/, "a"),
        b.logged(/over \d+ datagrams\/s/, "b"),
      ]),
      "the loop cut",
      5000,
    );
    // Once one datagram of the loop is dropped, the loop is over: probes move the counts by one each.
    await probe(a, "probe");
    await probe(b, "PROBE");
    const before = a.stats.sent + b.stats.sent;
    await probe(a, "probe");
    await probe(b, "PROBE");
    assert.equal(a.stats.sent + b.stats.sent, before + 2, "nothing but the probes is sent");
  },
});

Deno.test("udp echo: --ceil answers at most 64 bytes more than it was sent (no amplifier)", async () => {
  await using server = await echoServer("ceil");
  using c = client();
  // Control characters are escaped six-fold in the "not a number" reply.
  await c.send(new Uint8Array(10_000).fill(1), server.port);
  const reply = await c.receive();
  assert.ok(reply.length <= 10_064, `reply of ${reply.length} bytes`);
  assert.match(text.decode(reply.subarray(0, 21)), /^error: not a number: /);
});

Deno.test("udp chat: at most 32 members; the next is told the room is full", async () => {
  await using server = await echoServer("broadcast");
  const members = Array.from({ length: 33 }, () => client());
  try {
    for (const [i, m] of members.entries()) {
      await m.send("hi", server.port);
      const welcome = text.decode(await m.receive(`welcome ${i}`));
      if (i < 32) assert.match(welcome, /^\* welcome, you are \d+/);
      else assert.equal(welcome, "* the room is full (32 members); try later");
    }
  } finally {
    for (const m of members) m.socket.close();
  }
});

Deno.test("udp chat: a member silent for the idle time leaves, and its seat is free again", async () => {
  // Forged "members" send once and never again: they must not keep their seats.
  await using server = await echoServer("broadcast", 1, 300);
  using silent = client();
  using next = client();
  await silent.send("hi", server.port);
  assert.match(text.decode(await silent.receive("the welcome")), /^\* welcome, you are 1/);
  await next.send("hi", server.port);
  assert.equal(
    text.decode(await next.receive("the refusal")),
    "* the room is full (1 members); try later",
  );
  await server.logged(/^\[1\] silent too long; left$/, "the silent member leaving");
  await next.send("hi", server.port);
  assert.match(text.decode(await next.receive("the welcome")), /^\* welcome, you are 2/);
});

Deno.test("udp chat: a message over 1024 bytes is refused, not fanned out", async () => {
  await using server = await echoServer("broadcast");
  using speaker = client();
  using listener = client();
  await speaker.send("hi", server.port);
  await speaker.receive("speaker's welcome");
  await listener.send("hi", server.port);
  await listener.receive("listener's welcome");
  assert.match(text.decode(await speaker.receive("join notice")), /joined$/);
  assert.match(text.decode(await speaker.receive("the listener's first line")), /^\d+: hi$/);
  await speaker.send(new Uint8Array(60_000).fill(0x41), server.port);
  assert.equal(text.decode(await speaker.receive()), "* message too long: at most 1024 bytes");
  await speaker.send("short", server.port);
  // The next thing the listener gets is the short line: the long one never went out.
  assert.match(text.decode(await listener.receive()), /^\d+: short$/);
});

Deno.test("udp relay: a third party writing to a client's upstream port cannot take it over", async () => {
  using target = client();
  using user = client();
  using attacker = client("127.0.0.2");
  const events: UdpRelayEvent[] = [];
  let strangerSeen: () => void = () => {};
  const stranger = new Promise<void>((resolve) => strangerSeen = resolve);
  const relay = await UdpRelay.start({
    port: 0,
    hostname: "127.0.0.1",
    targetHost: "127.0.0.1",
    targetPort: target.port,
    log(event) {
      events.push(event);
      if (event.event === "stranger") strangerSeen();
    },
  });
  try {
    await user.send("one", relay.addr.port);
    const [first, upstream] = await withDeadline(target.socket.receive(), "one", 5000);
    assert.equal(text.decode(first), "one");
    // The attacker learns the upstream port (here: from the target) and writes to it.
    await attacker.send("evil", (upstream as Deno.NetAddr).port);
    await withDeadline(stranger, "the stranger noticed", 5000);
    await user.send("two", relay.addr.port);
    const [second] = await withDeadline(target.socket.receive(), "two at the target", 5000);
    assert.equal(text.decode(second), "two");
    const seen = events.find((e) => e.event === "stranger");
    assert.ok(seen && seen.event === "stranger" && seen.address === "127.0.0.2");
  } finally {
    await relay.close();
  }
});

Deno.test("udp without --allow-net: one clean line, exit 1, no stack trace", async () => {
  for (
    const args of [
      ["echo", "serve", "0", "--udp"],
      ["proxy", "0", "127.0.0.1", "9", "--udp"],
      ["echo", "127.0.0.1", "9", "--udp", "hi"],
    ]
  ) {
    const result = await runFsd([], args);
    assert.equal(result.code, 1, args.join(" "));
    assert.match(result.stderr, /^fsd: .*--allow-net=/, args.join(" "));
    assert.equal(result.stderr.trim().split("\n").length, 1, result.stderr);
  }
});

Deno.test("udp chat: a flood's fan-out stops at the server's send budget (4 MiB a second, a burst of 1 MiB)", async () => {
  await using server = await echoServer("broadcast");
  const members = Array.from({ length: 32 }, () => client());
  try {
    for (const [i, m] of members.entries()) {
      await m.send("hi", server.port);
      await m.receive(`welcome ${i}`);
    }
    // 150 messages of 1,000 bytes, each for 31 members: 4.7 MB, past the burst and any refill
    // while they are handled (the server's receive buffer holds them all).
    const [speaker, leaver] = members;
    const message = new Uint8Array(1000).fill(0x41);
    for (let i = 0; i < 150; i++) await speaker.send(message, server.port);
    // Handled in order: once the leaver's "/leave" is logged, every message before it was.
    await leaver.send("/leave", server.port);
    await server.logged(/^\[2\] left$/, "the leave after the flood");
    const { sent, overBudget } = server.stats;
    assert.ok(overBudget > 0, `nothing held back: ${sent} datagrams sent`);
    assert.ok(sent < 150 * 31, `${sent} datagrams sent of ${150 * 31}`);
  } finally {
    for (const m of members) m.socket.close();
  }
});
