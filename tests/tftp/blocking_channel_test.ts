/**
 * lib/net/blocking_udp.ts and lib/tftp/blocking_channel.ts: a TFTP client's
 * channel whose waits block its thread through the C library (Deno's FFI),
 * with UdpChannel's rules, and the event loop still turning while it waits.
 * `deno task test` grants --allow-ffi for these.
 */

import assert from "node:assert/strict";
import { bindUdp } from "../../lib/net/udp.ts";
import { BlockingChannel } from "../../lib/tftp/blocking_channel.ts";
import { encodeData, encodeError, parsePacket } from "../../lib/tftp/codec.ts";
import { sysctl } from "../support/tftp.ts";

const HOST = "127.0.0.1";

function requireFfi(): void {
  assert.equal(
    Deno.permissions.querySync({ name: "ffi" }).state,
    "granted",
    "run with --allow-ffi, as deno task test does",
  );
}

Deno.test("BlockingChannel: datagrams both ways; the server's port is learned from its first answer, another port gets ERROR 5, a quiet deadline is null", async () => {
  requireFfi();
  const requests = await bindUdp(HOST, 0); // the server's request port
  const transfer = await bindUdp(HOST, 0); // its port for this transfer
  const stranger = await bindUdp(HOST, 0);
  const channel = BlockingChannel.open(HOST, { hostname: HOST, port: requests.local.port });
  assert.ok(channel, "offered: Linux, --allow-ffi, --allow-net and an IP address");
  try {
    channel.send(new Uint8Array([0, 1, 102, 0, 111, 99, 116, 101, 116, 0]));
    const [request, client] = await requests.receive();
    assert.deepEqual([...request.subarray(0, 2)], [0, 1]);
    assert.deepEqual(client, channel.socket.local);

    await transfer.send(encodeData(1, new Uint8Array(60_000).fill(9)), client);
    const first = await channel.receive(channel.now() + 5_000);
    assert.ok(first);
    assert.equal(first.length, 60_004);
    assert.deepEqual(channel.peer, transfer.local, "the answer's port is the transfer's");

    await stranger.send(encodeData(2, new Uint8Array([6])), client);
    await transfer.send(encodeData(2, new Uint8Array([7])), client);
    const second = await channel.receive(channel.now() + 5_000);
    assert.ok(second);
    assert.deepEqual(parsePacket(second), { op: 3, block: 2, data: new Uint8Array([7]) });
    const [refusal] = await stranger.receive();
    assert.deepEqual(parsePacket(refusal), { op: 5, code: 5, message: "Unknown transfer ID" });

    // An ERROR from a stranger is never answered (no ERROR ping-pong between transfers).
    await stranger.send(encodeError(5, "Unknown transfer ID"), client);
    assert.equal(await channel.receive(channel.now() + 60), null, "nothing from the peer");
    channel.send(new Uint8Array([0, 4, 0, 2]));
    const [ack, from] = await transfer.receive();
    assert.deepEqual([...ack], [0, 4, 0, 2]);
    assert.deepEqual(from, client);
  } finally {
    channel.close();
    requests.close();
    transfer.close();
    stranger.close();
  }
  assert.equal(channel.closed, true);
  assert.equal(await channel.receive(channel.now() + 1_000), null, "closed: null at once");
});

Deno.test("BlockingChannel: while it waits, the event loop turns: a datagram a timer sends 300 ms into the wait arrives in it, and a close from a timer ends it", async () => {
  requireFfi();
  const server = await bindUdp(HOST, 0);
  const channel = BlockingChannel.open(HOST, { hostname: HOST, port: server.local.port })!;
  try {
    channel.send(new Uint8Array([0, 1, 0]));
    const [, client] = await server.receive();
    // Without turns the timer would run only after the wait gave up (null at its deadline).
    const timer = setTimeout(() => server.send(encodeData(1, new Uint8Array([1])), client), 300);
    const got = await channel.receive(channel.now() + 10_000);
    clearTimeout(timer);
    assert.ok(got, "the timer's datagram came within the wait");
    assert.deepEqual(parsePacket(got), { op: 3, block: 1, data: new Uint8Array([1]) });

    const closer = setTimeout(() => channel.close(), 300);
    assert.equal(await channel.receive(channel.now() + 10_000), null);
    clearTimeout(closer);
    assert.equal(channel.closed, true);
  } finally {
    channel.close();
    server.close();
  }
});

Deno.test("BlockingChannel: not offered for a host name (Deno's socket resolves it) nor without --allow-net for the peer", () => {
  requireFfi();
  assert.equal(BlockingChannel.open("0.0.0.0", { hostname: "lab1.invalid", port: 69 }), undefined);
  // The test runs with --allow-net for loopback and 0.0.0.0 only.
  assert.equal(BlockingChannel.open("0.0.0.0", { hostname: "192.0.2.1", port: 69 }), undefined);
});

Deno.test("BlockingUdp: a receive buffer asked for is granted up to net.core.rmem_max, doubled, and read back", async () => {
  requireFfi();
  const peer = { hostname: HOST, port: 9 };
  const rmemMax = await sysctl("net.core.rmem_max");
  const rmemDefault = await sysctl("net.core.rmem_default");
  const plain = BlockingChannel.open(HOST, peer)!;
  const asked = BlockingChannel.open(HOST, peer, { receiveBuffer: 1 << 20 })!;
  try {
    assert.equal(plain.receiveBuffer, rmemDefault);
    assert.equal(asked.receiveBuffer, 2 * Math.min(1 << 20, rmemMax));
  } finally {
    plain.close();
    asked.close();
  }
});

Deno.test("BlockingUdp: receiveNow takes a datagram already there, and returns null at once when none is", async () => {
  requireFfi();
  const peer = await bindUdp(HOST, 0);
  const channel = BlockingChannel.open(HOST, { hostname: HOST, port: peer.local.port })!;
  try {
    const into = new Uint8Array(100);
    assert.equal(channel.socket.receiveNow(into), null, "nothing there: no wait");
    channel.send(new Uint8Array([0, 1, 0]));
    const [, client] = await peer.receive();
    await peer.send(new Uint8Array([0, 3, 0, 1, 42]), client);
    // The datagram is on its way through loopback: take it the moment it is there.
    let got: ReturnType<typeof channel.socket.receiveNow> = null;
    for (let i = 0; i < 1_000_000 && !got; i++) got = channel.socket.receiveNow(into);
    assert.ok(got);
    assert.deepEqual([...got[0]], [0, 3, 0, 1, 42]);
    assert.deepEqual(got[1], peer.local);
    assert.equal(channel.socket.receiveNow(into), null, "taken once");
  } finally {
    channel.close();
    peer.close();
  }
});

Deno.test("BlockingChannel: a wait spins first only while answers come within the spin: a slow one turns it off, a fast one on again", async () => {
  requireFfi();
  const server = await bindUdp(HOST, 0);
  const channel = BlockingChannel.open(HOST, { hostname: HOST, port: server.local.port })!;
  try {
    assert.equal(channel.spinning, true, "a new channel spins");
    channel.send(new Uint8Array([0, 1, 0]));
    const [, client] = await server.receive();
    const timer = setTimeout(() => server.send(encodeData(1, new Uint8Array([1])), client), 30);
    assert.ok(await channel.receive(channel.now() + 10_000));
    clearTimeout(timer);
    assert.equal(channel.spinning, false, "an answer 30 ms late: no spin for the next wait");
    // An answer already there is taken by the blocking call at once, which turns the spin on (on
    // a loaded machine one such call may still be slower than the spin: a few tries).
    for (let block = 2; block < 50 && !channel.spinning; block++) {
      await server.send(encodeData(block, new Uint8Array([block])), client);
      const got = await channel.receive(channel.now() + 10_000);
      assert.deepEqual(parsePacket(got!), { op: 3, block, data: new Uint8Array([block]) });
    }
    assert.equal(channel.spinning, true, "fast answers: it spins again");
  } finally {
    channel.close();
    server.close();
  }
});

Deno.test("BlockingChannel: datagrams that keep coming, each taken by the spin, still let the event loop turn", async () => {
  requireFfi();
  const channel = BlockingChannel.open(HOST, { hostname: HOST, port: 9 })!;
  // A flood from another process for up to 3 s, to the channel's port, from a port it then learns.
  const flood = new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      "--unstable-net",
      `const s = Deno.listenDatagram({ transport: "udp", hostname: "${HOST}", port: 0 });
       const to = { transport: "udp", hostname: "${HOST}", port: ${channel.socket.local.port} };
       const data = new Uint8Array([0, 3, 0, 1, 7]);
       const end = performance.now() + 3000;
       const batch = Array.from({ length: 64 });
       while (performance.now() < end) await Promise.all(batch.map(() => s.send(data, to)));`,
    ],
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  try {
    // A client's channel learns its peer's port from the first answer: the flood's.
    let turned = false;
    const timer = setTimeout(() => turned = true, 0);
    let received = 0;
    const started = performance.now();
    while (!turned && performance.now() - started < 2_500) {
      if (await channel.receive(channel.now() + 2_000)) received++;
    }
    clearTimeout(timer);
    assert.ok(turned, `the timer ran while datagrams kept coming (${received} received)`);
    assert.ok(received > 0, "datagrams came");
  } finally {
    flood.kill();
    await flood.status;
    channel.close();
  }
});
