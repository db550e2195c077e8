/** lib/net/udp.ts: one UDP socket on Deno.listenDatagram, with clean bind errors. */

import assert from "node:assert/strict";
import { bindUdp, bindUdpInRange, UdpBindError } from "../../lib/net/udp.ts";
import { ListenError } from "../../lib/net/listen.ts";

Deno.test("bindUdp: a datagram there and back, received into a reused buffer", async () => {
  const a = await bindUdp("127.0.0.1", 0);
  const b = await bindUdp("127.0.0.1", 0);
  try {
    assert.equal(a.local.hostname, "127.0.0.1");
    assert.ok(a.local.port > 0);
    const buffer = new Uint8Array(65_536);
    const big = new Uint8Array(60_000).fill(7);
    a.send(big, b.local); // not awaited: the hot path's way
    const [bytes, from] = await b.receive(buffer);
    assert.equal(bytes.buffer, buffer.buffer);
    assert.equal(bytes.length, 60_000);
    assert.deepEqual(from, a.local);
    assert.equal(await b.send(new Uint8Array([1, 2, 3]), from), 3);
    const [back] = await a.receive();
    assert.deepEqual([...back], [1, 2, 3]);
  } finally {
    a.close();
    b.close();
  }
});

Deno.test("bindUdp: close is idempotent, a waiting receive rejects, a later send is dropped", async () => {
  const socket = await bindUdp("127.0.0.1", 0);
  const waiting = socket.receive();
  socket.close();
  socket.close();
  await assert.rejects(waiting);
  assert.equal(socket.closed, true);
  assert.equal(await socket.send(new Uint8Array(1), { hostname: "127.0.0.1", port: 9 }), 0);
  await assert.rejects(socket.receive());
});

Deno.test("bindUdp: a taken port is a UdpBindError (a ListenError) naming the port", async () => {
  const socket = await bindUdp("127.0.0.1", 0);
  try {
    const error = await bindUdp("127.0.0.1", socket.local.port).catch((e) => e);
    assert.ok(error instanceof UdpBindError);
    assert.ok(error instanceof ListenError);
    assert.match(error.message, new RegExp(`port ${socket.local.port}`));
    const ranged = await bindUdpInRange("127.0.0.1", [socket.local.port, socket.local.port])
      .catch((e) => e);
    assert.ok(ranged instanceof UdpBindError);
    assert.match(ranged.message, /no free port/);
  } finally {
    socket.close();
  }
});

Deno.test("bindUdp: without --allow-net, one clean line naming the flag, no prompt, no NotCapable", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const probe = `${dir}/probe.ts`;
    const udp = new URL("../../lib/net/udp.ts", import.meta.url).href;
    await Deno.writeTextFile(
      probe,
      `import { bindUdp } from "${udp}";\n` +
        `try { await bindUdp("127.0.0.1", 0); } catch (e) { console.log(e.name + ": " + e.message); }\n`,
    );
    for (const flags of [["--unstable-net"], []]) {
      const output = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--quiet",
          "--no-prompt",
          "--no-config",
          ...flags,
          `--allow-read=${dir}`,
          probe,
        ],
        stdin: "null",
        env: { NO_COLOR: "1" },
      }).output();
      const text = new TextDecoder().decode(output.stdout).trim();
      assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
      assert.equal(
        text,
        flags.length
          ? "UdpBindError: cannot bind UDP 127.0.0.1 port 0: needs --allow-net=127.0.0.1"
          : "UdpBindError: cannot bind UDP 127.0.0.1 port 0: needs Deno's --unstable-net flag",
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
