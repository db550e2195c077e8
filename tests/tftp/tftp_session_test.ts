/**
 * One client port, several requests (a tftp-hpa session's `get a`, `get b`):
 * the client's next request, sent right after its last ACK, is served at
 * once, even while the server's transfer has not yet seen that ACK; a
 * request repeated while its transfer runs (by the client or the network)
 * starts no second transfer; and one such request is kept, not a queue.
 */

import assert from "node:assert/strict";
import { RawPeer, startTftp, tftp } from "../support/tftp.ts";

/** The transfers the server started, from its log. */
const started = (logs: string[]) => logs.filter((line) => /TFTP request from/.test(line)).length;

Deno.test("tftp session: the next request from the same port, sent with the last ACK, is answered without a retransmission", async () => {
  await using s = await startTftp();
  await Deno.writeTextFile(`${s.root}/a`, "aaa\n");
  await Deno.writeTextFile(`${s.root}/b`, "bbb\n");
  await using peer = await RawPeer.open();
  for (const [name, body] of [["a", "aaa\n"], ["b", "bbb\n"], ["a", "aaa\n"]]) {
    await peer.send(tftp.rrq(name), s.port);
    const { packet, port } = await peer.receive();
    assert.deepEqual(packet, { op: "DATA", block: 1, data: new TextEncoder().encode(body) });
    // The last ACK and the next request leave together, as a session's next get does: the request
    // may reach the server before its transfer has read the ACK. It is answered all the same,
    // the same file again too, with no retransmission of the request (the test sends none).
    await peer.send(tftp.ack(1), port);
  }
  assert.equal(started(s.logs), 3, s.logs.join("\n"));
});

Deno.test("tftp session: a request repeated while its transfer runs starts no second transfer", async () => {
  // A short timeout: the server's own retransmissions show the time passing (no sleep).
  await using s = await startTftp({ timeoutMs: 300, retries: 5 });
  await Deno.writeFile(`${s.root}/big`, new Uint8Array(3 * 512 + 1).fill(7));
  await using peer = await RawPeer.open();
  await peer.send(tftp.rrq("big"), s.port);
  const first = await peer.receive();
  assert.equal(first.packet.op, "DATA");
  // The request again (the network repeated it), then its transfer goes on only after the server
  // has sent block 1 twice more: well past the request's grace.
  await peer.send(tftp.rrq("big"), s.port);
  for (let again = 0; again < 2; again++) {
    const { packet, port } = await peer.receive();
    assert.deepEqual([packet.op, port], ["DATA", first.port], "block 1 again, from the transfer");
  }
  for (let block = 1; block <= 4; block++) {
    await peer.send(tftp.ack(block), first.port);
    if (block < 4) {
      const { packet } = await peer.receive();
      assert.deepEqual([packet.op, (packet as { block: number }).block], ["DATA", block + 1]);
    }
  }
  await s.waitForLog(/\[1\] .*(done|sent|complete)/i);
  // A turn of the event loop: a request kept for the transfer's end would have started by now.
  assert.equal(await peer.receiveOrNull(0), null, "nothing from a second transfer");
  assert.equal(started(s.logs), 1, s.logs.join("\n"));
});

Deno.test("tftp session: of the requests a port sends while its transfer runs, only the latest is served after it", async () => {
  await using s = await startTftp();
  await Deno.writeFile(`${s.root}/big`, new Uint8Array(2 * 512 + 1).fill(7));
  for (const name of ["a", "b", "c"]) await Deno.writeTextFile(`${s.root}/${name}`, name);
  await using peer = await RawPeer.open();
  await peer.send(tftp.rrq("big"), s.port);
  const first = await peer.receive();
  for (const name of ["a", "b", "c"]) await peer.send(tftp.rrq(name), s.port);
  for (let block = 1; block <= 3; block++) {
    await peer.send(tftp.ack(block), first.port);
    if (block < 3) assert.equal((await peer.receive()).packet.op, "DATA");
  }
  const next = await peer.receive();
  assert.deepEqual(next.packet, { op: "DATA", block: 1, data: new TextEncoder().encode("c") });
  await peer.send(tftp.ack(1), next.port);
  await s.waitForLog(/\[2\] .*(done|sent|complete)/i);
  assert.equal(await peer.receiveOrNull(0), null, "a and b were not served");
  assert.equal(started(s.logs), 2, s.logs.join("\n"));
});
