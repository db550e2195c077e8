/**
 * The window logic of lib/fsd/window.ts over an in-memory channel: windows
 * of every size, block numbers wrapping past 65535, a last window that ends
 * early, and the exact ACKs a receiver sends. No sockets.
 */

import assert from "node:assert/strict";
import { bytesSource, MemorySink } from "../../lib/bytes/source_sink.ts";
import { encodeData, encodeOptions, Opcode } from "../../lib/fsd/codec.ts";
import { MemoryEnd } from "../../lib/fsd/transport.ts";
import { receiveFile, sendFile } from "../../lib/fsd/window.ts";
import { dropFreeBuffers, freeBufferBytes } from "../../lib/bytes/pool.ts";
import { DIGEST_SIZES, hasherFor, hashingSink, hashingSource } from "../../lib/bytes/sha256.ts";
import { DigestCheck } from "../../lib/fsd/integrity.ts";
import type { TransferParams } from "../../lib/fsd/negotiation.ts";

function pattern(length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = (i * 31 + (i >> 9)) & 0xff;
  return bytes;
}

/** Sends `data` from one end to the other with `params`; returns what arrived and the ACK blocks sent. */
async function transfer(data: Uint8Array, params: TransferParams) {
  const [sender, receiver] = MemoryEnd.pair();
  const sink = new MemorySink();
  const [sent, received] = await Promise.all([
    sendFile(sender, bytesSource(data), { params }),
    receiveFile(receiver, sink, { params }),
  ]);
  const acks = receiver.writes.map((bytes) => {
    assert.equal(bytes.length, 4);
    assert.equal((bytes[0] << 8) | bytes[1], Opcode.ACK);
    return (bytes[2] << 8) | bytes[3];
  });
  sender.close();
  receiver.close();
  return { sent, received, bytes: sink.bytes(), acks };
}

Deno.test("window: every window size from 1 to 9 moves a file byte-exact, one ACK per window", async () => {
  const blockSize = 16;
  const data = pattern(blockSize * 20 + 5); // 21 blocks, the last one short
  for (let windowSize = 1; windowSize <= 9; windowSize++) {
    const result = await transfer(data, { blockSize, windowSize });
    assert.equal(result.sent, data.length);
    assert.equal(result.received, data.length);
    assert.deepEqual(result.bytes, data);
    const expected: number[] = [];
    for (let block = windowSize; block < 21; block += windowSize) expected.push(block);
    expected.push(21); // the short last block is always acknowledged
    assert.deepEqual(result.acks, expected, `window ${windowSize}`);
  }
});

Deno.test("window: a window that straddles the last block ends with the short block's ACK", async () => {
  // 10 full blocks and an empty 11th: the window of 4 holds blocks 9, 10, 11 only.
  const data = pattern(8 * 10);
  const result = await transfer(data, { blockSize: 8, windowSize: 4 });
  assert.deepEqual(result.bytes, data);
  assert.deepEqual(result.acks, [4, 8, 11]);
});

Deno.test("window: block numbers wrap from 65535 to 0 and the transfer goes on", async () => {
  const blockSize = 8;
  const blocks = 65536 + 3; // past the wrap
  const data = pattern(blocks * blockSize - 1);
  const result = await transfer(data, { blockSize, windowSize: 64 });
  assert.deepEqual(result.bytes, data);
  assert.equal(result.acks.at(-1), blocks % 65536);
  assert.ok(result.acks.includes(0), "an ACK of block 0 after the wrap");
});

Deno.test("window: a receiver refuses a DAT with the wrong block number", async () => {
  const [sender, receiver] = MemoryEnd.pair();
  const receiving = receiveFile(receiver, new MemorySink());
  await sender.write(encodeData(2, new Uint8Array([1, 2, 3]))); // DAT 2 where 1 is due
  await assert.rejects(receiving, /wrong block number: got DAT 2, expected DAT 1/);
  sender.close();
  receiver.close();
});

Deno.test("window: the SUM goes out in the same write as the last block, CRC-32 and SHA-256", async () => {
  for (const checksum of ["crc32", "sha256"] as const) {
    // 4 full 65464-byte blocks fill a batch (256 KiB); the short 5th and the SUM end the last write.
    const params = { blockSize: 65464, windowSize: 8 };
    const data = pattern(65464 * 4 + 100);
    const [sender, receiver] = MemoryEnd.pair();
    const sent = hasherFor(checksum, data.length);
    const got = hasherFor(checksum, data.length);
    const sink = new MemorySink();
    await Promise.all([
      sendFile(sender, hashingSource(bytesSource(data), sent), {
        params,
        digest: () => sent.digest(),
      }),
      receiveFile(receiver, hashingSink(sink, got), {
        params,
        sum: new DigestCheck(checksum, got, "server"),
      }),
    ]);
    assert.deepEqual(sink.bytes(), data);
    const last = sender.writes.at(-1)!;
    const sum = last.subarray(last.length - 2 - DIGEST_SIZES[checksum]);
    assert.equal((sum[0] << 8) | sum[1], Opcode.SUM, checksum);
    assert.equal(
      sender.writes.length,
      2,
      `${checksum}: the full batch, then the last block with its SUM`,
    );
    assert.equal(
      last.length,
      6 + 100 + sum.length,
      "DAT 5 (a 6-byte header, 100 bytes), then the SUM",
    );
    sent.close();
    got.close();
    sender.close();
    receiver.close();
  }
});

Deno.test("window: a lead (an eager read's OACK) shares the first write with the blocks that fit beside it, else goes alone first", async () => {
  const data = pattern(2500); // blocks of 1000, 1000 and 500 bytes
  const lead = encodeOptions(Opcode.OACK, [["blksize", "1000"], ["eager", "1"]]);
  const cases = [
    // A window of 4: the lead and all three blocks in one write (it displaces the 4th's room).
    { windowSize: 4, writes: [lead.length + 3 * 6 + 2500] },
    // A window of 1: a batch holds one block, and no room is left beside it for the lead.
    { windowSize: 1, writes: [lead.length, 1006, 1006, 506] },
  ];
  for (const { windowSize, writes } of cases) {
    const params = { blockSize: 1000, windowSize };
    const [sender, receiver] = MemoryEnd.pair();
    const sink = new MemorySink();
    const [, received] = await Promise.all([
      sendFile(sender, bytesSource(data), { params, lead }),
      (async () => {
        // The receiver reads the lead first, as a client reads the OACK.
        const oack = await receiver.readPacket();
        assert.ok(oack?.op === Opcode.OACK && oack.options.length === 2);
        return await receiveFile(receiver, sink, { params });
      })(),
    ]);
    assert.equal(received, 2500);
    assert.deepEqual(sink.bytes(), data);
    assert.deepEqual(sender.writes.map((w) => w.length), writes, `window ${windowSize}`);
    sender.close();
    receiver.close();
  }
});

Deno.test("window: with a lead, a batch of 64 KiB blocks is still one the pool keeps for the next file", async () => {
  const params = { blockSize: 65464, windowSize: 16 };
  const lead = encodeOptions(Opcode.OACK, [["blksize", "65464"], ["eager", "1"]]);
  dropFreeBuffers();
  const [sender, receiver] = MemoryEnd.pair();
  await Promise.all([
    sendFile(sender, bytesSource(pattern(1000)), { params, lead }),
    (async () => {
      await receiver.readPacket();
      await receiveFile(receiver, new MemorySink(), { params });
    })(),
  ]);
  sender.close();
  receiver.close();
  // 4 frames of 65470 bytes and the SUM's room: kept (the pool keeps up to 256 KiB), so a
  // thousand small files do not allocate a batch each.
  assert.ok(freeBufferBytes() >= 4 * 65470, `free: ${freeBufferBytes()}`);
  dropFreeBuffers();
});
