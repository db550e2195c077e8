/**
 * The UDP relay and TFTP's transfer ports: each port the target answers
 * from gets a port of the relay's own (its mirror), so a client's requests
 * go to the target's request port and its acknowledgements to the transfer
 * they belong to, as without the relay. A tftp-hpa session of several
 * `get`s through `fsd proxy --udp`; a third party at a mirror; the bound on
 * mirrors.
 */

import assert from "node:assert/strict";
import { UdpRelay, type UdpRelayEvent } from "../../lib/relay/udp_relay.ts";
import { spawnFsd } from "../support/cli.ts";
import { tempDir, text } from "../support/files.ts";
import { withDeadline } from "../support/raw_client.ts";
import { assertTools, needs } from "../support/tools.ts";

/** A UDP socket on loopback that sends text and awaits datagrams with their source port. */
function peer(hostname = "127.0.0.1") {
  const socket = Deno.listenDatagram({ transport: "udp", hostname, port: 0 });
  return {
    port: (socket.addr as Deno.NetAddr).port,
    send: (message: string, port: number) =>
      socket.send(text.encode(message), { transport: "udp", hostname: "127.0.0.1", port }),
    /** The next datagram: its text and the port it came from. */
    async receive(what: string): Promise<{ message: string; port: number }> {
      const [bytes, from] = await withDeadline(socket.receive(), what, 5000);
      return { message: text.decode(bytes), port: (from as Deno.NetAddr).port };
    },
    [Symbol.dispose]: () => socket.close(),
  };
}

async function relayTo(targetPort: number, log?: (event: UdpRelayEvent) => void) {
  const relay = await UdpRelay.start({
    port: 0,
    hostname: "127.0.0.1",
    targetHost: "127.0.0.1",
    targetPort,
    log,
  });
  return Object.assign(relay, { [Symbol.asyncDispose]: () => relay.close() });
}

Deno.test("udp relay: each transfer port of the target's gets a port of the relay's; a second request goes to the request port", async () => {
  using request = peer();
  using transfer1 = peer();
  using transfer2 = peer();
  using client = peer();
  await using relay = await relayTo(request.port);

  await client.send("request 1", relay.addr.port);
  const first = await request.receive("request 1 at the target");
  assert.equal(first.message, "request 1");
  const upstream = first.port;

  await transfer1.send("data 1", upstream);
  const data1 = await client.receive("data 1 at the client");
  assert.equal(data1.message, "data 1");
  assert.notEqual(data1.port, relay.addr.port, "a transfer port answers from a mirror");
  await client.send("ack 1", data1.port);
  assert.equal((await transfer1.receive("ack 1 at transfer 1")).message, "ack 1");

  // The client's next request, from the same port, as tftp-hpa sends it: to the request port.
  await client.send("request 2", relay.addr.port);
  assert.equal((await request.receive("request 2 at the request port")).message, "request 2");
  await transfer2.send("data 2", upstream);
  const data2 = await client.receive("data 2 at the client");
  assert.equal(data2.message, "data 2");
  assert.ok(data2.port !== data1.port && data2.port !== relay.addr.port, "a mirror of its own");
  await client.send("ack 2", data2.port);
  assert.equal((await transfer2.receive("ack 2 at transfer 2")).message, "ack 2");

  // The previous transfer is still reachable (its last retransmissions), and the request port
  // answers from the relay's own port.
  await client.send("late ack 1", data1.port);
  assert.equal((await transfer1.receive("late ack 1")).message, "late ack 1");
  await request.send("from the request port", upstream);
  const plain = await client.receive("an answer from the request port");
  assert.deepEqual(plain, { message: "from the request port", port: relay.addr.port });
});

Deno.test("udp relay: a third party writing to a mirror is not relayed", async () => {
  using request = peer();
  using transfer = peer();
  using client = peer();
  using attacker = peer("127.0.0.2");
  let strangerSeen: (event: UdpRelayEvent) => void = () => {};
  const stranger = new Promise<UdpRelayEvent>((resolve) => strangerSeen = resolve);
  await using relay = await relayTo(request.port, (event) => {
    if (event.event === "stranger") strangerSeen(event);
  });
  await client.send("request", relay.addr.port);
  const { port: upstream } = await request.receive("the request");
  await transfer.send("data", upstream);
  const { port: mirror } = await client.receive("data at the client");

  await attacker.send("evil", mirror);
  const seen = await withDeadline(stranger, "the stranger logged", 5000);
  assert.ok(seen.event === "stranger" && seen.address === "127.0.0.2");
  await client.send("ack", mirror);
  assert.equal((await transfer.receive("the client's ack")).message, "ack", "not the attacker's");
});

Deno.test("udp relay: a client keeps two mirrors; a third transfer port closes the oldest", async () => {
  using request = peer();
  using client = peer();
  await using relay = await relayTo(request.port);
  await client.send("request", relay.addr.port);
  const { port: upstream } = await request.receive("the request");
  const mirrors: number[] = [];
  for (let i = 0; i < 3; i++) {
    using transfer = peer();
    await transfer.send(`data ${i}`, upstream);
    const got = await client.receive(`data ${i}`);
    assert.equal(got.message, `data ${i}`);
    mirrors.push(got.port);
  }
  assert.equal(new Set(mirrors).size, 3);
  // The oldest mirror's port is free again: its socket is closed. The newer two are held.
  const reuse = (port: number) =>
    Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port }).close();
  reuse(mirrors[0]);
  for (const port of mirrors.slice(1)) assert.throws(() => reuse(port), Deno.errors.AddrInUse);
});

Deno.test({
  name: "udp relay: a tftp-hpa session of three gets through fsd proxy --udp",
  ...needs("tftp-hpa"),
  fn: async () => {
    assertTools("tftp-hpa");
    await using served = await tempDir();
    await using local = await tempDir();
    await Deno.writeTextFile(`${served.path}/a`, "first file\n");
    await Deno.writeTextFile(`${served.path}/b`, "second file, longer\n".repeat(100));
    await using server = await spawnFsd(
      ["serve", served.path, "0", "--host", "127.0.0.1", "--tftp-only"],
      ["--allow-net", `--allow-read=${served.path}`, `--allow-write=${served.path}`],
      /^TFTP server listening on /,
    );
    await using proxy = await spawnFsd(
      ["proxy", "--udp", "0", "127.0.0.1", String(server.port), "--host", "127.0.0.1"],
      ["--allow-net"],
      /^UDP proxy listening on /,
    );
    // One session, as a person types it; the second get is sent from the first's port. Before
    // each transfer port had a mirror, it went to the first transfer's port and was never answered.
    const child = new Deno.Command("timeout", {
      args: ["20", "tftp", "-m", "octet", "127.0.0.1", String(proxy.port)],
      cwd: local.path,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const stdin = child.stdin.getWriter();
    await stdin.write(text.encode("get a\nget b\nget a a2\nquit\n"));
    await stdin.close();
    const out = await child.output();
    const said = text.decode(out.stdout) + text.decode(out.stderr);
    assert.equal(out.code, 0, said);
    assert.equal(await Deno.readTextFile(`${local.path}/a`), "first file\n", said);
    assert.equal(await Deno.readTextFile(`${local.path}/b`), "second file, longer\n".repeat(100));
    assert.equal(await Deno.readTextFile(`${local.path}/a2`), "first file\n", said);
    assert.doesNotMatch(said, /timed out|error/i);
  },
});
