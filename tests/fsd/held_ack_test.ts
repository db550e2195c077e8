/**
 * The client's held last ACK (lib/fsd/packet_conn.ts `writeSoon`): the ACK
 * that ends a download (and the greeting) goes out in the same socket write
 * as the next request, which a server (a strict fsd/1 one too) reads as two
 * packets one after the other; with no request after it, it still goes out
 * on its own.
 */

import assert from "node:assert/strict";
import { FsdClient } from "../../lib/fsd/client.ts";
import { MemorySink } from "../../lib/bytes/source_sink.ts";
import { Opcode, opcodeName, PacketDecoder } from "../../lib/fsd/codec.ts";
import type { ConnTap } from "../../lib/fsd/packet_conn.ts";
import { randomBytes } from "../support/files.ts";
import { startServer } from "../support/server.ts";

/** Each socket write of the client, as the opcode names of the packets in it (ACK with its block). */
function writesTap(): { tap: ConnTap; writes: string[][] } {
  const writes: string[][] = [];
  const tap: ConnTap = {
    sent(bytes) {
      const decoder = new PacketDecoder();
      decoder.push(bytes.slice());
      const names: string[] = [];
      for (let packet = decoder.next(); packet; packet = decoder.next()) {
        names.push(packet.op === Opcode.ACK ? `ACK ${packet.block}` : opcodeName(packet.op));
      }
      writes.push(names);
    },
    received() {},
    closed() {},
  };
  return { tap, writes };
}

for (const fsd1Only of [false, true]) {
  const label = fsd1Only ? "a strict fsd/1 server (--fsd1)" : "a server with the extension";
  Deno.test(`held ACK: the last ACK and the next request go out in one write, and ${label} serves each`, async () => {
    await using ctx = await startServer({ fsd1Only });
    const a = randomBytes(600, 1); // two blocks in fsd/1
    const b = randomBytes(1024, 2); // three: the last one empty
    await Deno.writeFile(`${ctx.root}/a`, a);
    await Deno.writeFile(`${ctx.root}/b`, b);
    const { tap, writes } = writesTap();
    const client = await FsdClient.connect("127.0.0.1", ctx.port, { tap });
    try {
      const params = fsd1Only ? undefined : { blockSize: 1000, windowSize: 4 };
      const intoA = new MemorySink();
      await client.download("a", intoA, { params });
      const intoB = new MemorySink();
      await client.download("b", intoB, { params });
      assert.deepEqual(intoA.bytes(), a);
      assert.deepEqual(intoB.bytes(), b);
      const request = fsd1Only ? ["RRQ"] : ["OPT", "RRQ"];
      const lastOfA = fsd1Only ? 2 : 1;
      // The greeting's ACK with the first request, a's last ACK with the second.
      assert.deepEqual(writes[0], ["ACK 1", ...request]);
      assert.ok(
        writes.some((w) => w.join() === [`ACK ${lastOfA}`, ...request].join()),
        `a's last ACK and b's request in one write: ${JSON.stringify(writes)}`,
      );
    } finally {
      client.close();
    }
    // b's last ACK went out with the close: the server tells both files sent, none failed.
    await ctx.waitForLog(/RRQ "a": sent file, 600 bytes/);
    await ctx.waitForLog(/RRQ "b": sent file, 1024 bytes/);
    await ctx.waitForLog(/closed by the client/);
    assert.ok(!ctx.logs.some((l) => /fail|error/i.test(l)), ctx.logs.join("\n"));
  });
}

Deno.test("held ACK: with no request after a download, its last ACK still goes out by itself", async () => {
  await using ctx = await startServer();
  await Deno.writeFile(`${ctx.root}/a`, randomBytes(700, 3));
  const client = await FsdClient.connect("127.0.0.1", ctx.port);
  try {
    await client.download("a", new MemorySink());
    // The server ends the transfer only on its last ACK; the connection stays open meanwhile.
    await ctx.waitForLog(/RRQ "a": sent file, 700 bytes/);
    assert.equal(client.closed, false);
  } finally {
    client.close();
  }
});
