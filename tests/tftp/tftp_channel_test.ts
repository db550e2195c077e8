/**
 * TFTP's block logic over an in-memory DatagramChannel pair (no sockets, no
 * timers: time jumps when both ends wait): loss, duplication, reordering,
 * the Sorcerer's Apprentice case and giving up, deterministic.
 */

import assert from "node:assert/strict";
import { bytesSource, MemorySink } from "../../lib/bytes/source_sink.ts";
import { dally, receiveFile, sendFile } from "../../lib/tftp/blocks.ts";
import { type Fate, MemoryChannel } from "../../lib/tftp/channel.ts";
import { encodeAck, Opcode, parsePacket } from "../../lib/tftp/codec.ts";
import { randomBytes } from "../support/files.ts";

type FateOf = (bytes: Uint8Array, index: number) => Fate;

/** Sends `size` bytes from end a to end b with these fates; returns what b got and what each end sent. */
async function move(
  size: number,
  params: { blockSize: number; windowSize: number },
  fates: { a?: FateOf; b?: FateOf } = {},
) {
  const [sender, receiver] = MemoryChannel.pair(fates);
  const data = randomBytes(size, size);
  const sink = new MemorySink();
  const config = { params: { ...params, timeoutMs: 1000 }, retries: 5 };
  let finished = -1;
  try {
    const [sent, received] = await Promise.all([
      sendFile(sender, bytesSource(data), config).finally(() => {
        finished = sender.now();
        sender.close();
      }),
      (async () => {
        const received = await receiveFile(receiver, sink, { ...config, reply: encodeAck(0) });
        await dally(receiver, received.finalAck, 1000); // a lost last ACK is answered again
        return received;
      })().finally(() => receiver.close()),
    ]);
    assert.equal(sent, size);
    assert.equal(received.bytes, size);
    assert.deepEqual(sink.bytes(), data);
  } finally {
    sender.close();
    receiver.close();
  }
  const blocks = (end: MemoryChannel) =>
    end.sent.map((b) => parsePacket(b, 65464)).map((p) => "block" in p ? p.block : -1);
  return { data: blocks(sender), acks: blocks(receiver), now: finished };
}

Deno.test("memory: lock-step and windows move every byte, each block once, in no time", async () => {
  const lockStep = await move(5000, { blockSize: 512, windowSize: 1 });
  assert.deepEqual(lockStep.data, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  assert.deepEqual(lockStep.acks, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  assert.equal(lockStep.now, 0);
  const windowed = await move(4096, { blockSize: 512, windowSize: 4 });
  assert.deepEqual(windowed.data, [1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.deepEqual(windowed.acks, [4, 8, 9]);
});

Deno.test("memory: every third DATA and every fourth ACK lost: resent after a timeout", async () => {
  for (const windowSize of [1, 4]) {
    const lossy = await move(20_000, { blockSize: 512, windowSize }, {
      a: (_, i) => i % 3 === 2 ? "drop" : "pass",
      b: (_, i) => i % 4 === 3 ? "drop" : "pass",
    });
    assert.ok(lossy.now >= 1000, "a timeout passed (virtual time)");
  }
});

Deno.test("memory: every datagram duplicated: no block sent twice (no Sorcerer's Apprentice)", async () => {
  for (const windowSize of [1, 4]) {
    const doubled = await move(10_000, { blockSize: 512, windowSize }, {
      a: () => "duplicate",
      b: () => "duplicate",
    });
    // Duplicate ACKs never cause a send: each of the 20 blocks went out exactly once.
    assert.deepEqual(doubled.data, Array.from({ length: 20 }, (_, i) => i + 1));
    assert.equal(doubled.now, 0);
  }
});

Deno.test("memory: DATA reordered inside windows arrives byte for byte", async () => {
  const reordered = await move(30_000, { blockSize: 512, windowSize: 8 }, {
    a: (_, i) => i % 5 === 1 ? "delay" : "pass",
  });
  assert.ok(reordered.data.length >= 59);
});

Deno.test("memory: a silent peer: the sender gives up after its retries, in virtual time", async () => {
  const [sender, receiver] = MemoryChannel.pair();
  receiver.close();
  const config = { params: { blockSize: 512, windowSize: 1, timeoutMs: 1000 }, retries: 3 };
  try {
    await assert.rejects(
      sendFile(sender, bytesSource(new Uint8Array(2000)), config),
      /timed out: no ACK after 4 tries of 1\.0 s/,
    );
    assert.equal(sender.now(), 4000);
    assert.equal(sender.sent.length, 4);
    assert.ok(sender.sent.every((b) => b[1] === Opcode.DATA));
  } finally {
    sender.close();
  }
});

Deno.test("memory: the next window is read while its ACK travels; the ACK goes out before the window's last write", async () => {
  const [sender, receiver] = MemoryChannel.pair();
  const data = randomBytes(4 * 512 + 100, 7);
  const source = bytesSource(data);
  // At each read: how many ACKs the receiver had sent (the sender's reads come before those ACKs).
  const acksAtRead: number[] = [];
  const readAhead = {
    inMemory: true,
    read(buffer: Uint8Array) {
      acksAtRead.push(receiver.sent.length);
      return source.read(buffer);
    },
  };
  // At each block handed to the writer: how many ACKs the receiver had sent (write-behind).
  const acksAtWrite: number[] = [];
  const sink = new MemorySink();
  const config = { params: { blockSize: 512, windowSize: 2, timeoutMs: 1000 }, retries: 1 };
  try {
    await Promise.all([
      sendFile(sender, readAhead, config),
      receiveFile(receiver, sink, {
        ...config,
        reply: encodeAck(0),
        onProgress: () => acksAtWrite.push(receiver.sent.length),
      }),
    ]);
  } finally {
    sender.close();
    receiver.close();
  }
  assert.deepEqual(sink.bytes(), data);
  // Blocks 1-2 are read, sent, then 3-4 read before ACK 2 was sent; 5 before ACK 4.
  assert.deepEqual(acksAtRead.slice(0, 4), [0, 0, 0, 0]);
  // Block 1 written with no ACK out; block 2 (the window's last) after ACK 2; the last block
  // (5, short) before its ACK.
  assert.deepEqual(acksAtWrite, [0, 1, 1, 2, 2]);
});

Deno.test("memory: a client's sink with writeSync gets each block straight from the receive buffer, short writes resumed, never an async write", async () => {
  const [sender, receiver] = MemoryChannel.pair();
  const data = randomBytes(4 * 512 + 100, 11);
  const written: Uint8Array[] = [];
  const calls: number[] = []; // the length each writeSync was given
  const acksAtWrite: number[] = [];
  const sink = {
    write(): Promise<number> {
      throw new Error("an async write: the sink offered writeSync");
    },
    writeSync(bytes: Uint8Array): number {
      calls.push(bytes.length);
      acksAtWrite.push(receiver.sent.length);
      const n = Math.min(bytes.length, 300); // a pipe's short writes
      written.push(bytes.slice(0, n));
      return n;
    },
  };
  const config = { params: { blockSize: 512, windowSize: 2, timeoutMs: 1000 }, retries: 1 };
  try {
    const [, received] = await Promise.all([
      sendFile(sender, bytesSource(data), config),
      receiveFile(receiver, sink, { ...config, reply: encodeAck(0) }),
    ]);
    assert.equal(received.bytes, data.length);
  } finally {
    sender.close();
    receiver.close();
  }
  const joined = new Uint8Array(data.length);
  let offset = 0;
  for (const part of written) {
    joined.set(part, offset);
    offset += part.length;
  }
  assert.equal(offset, data.length);
  assert.deepEqual(joined, data);
  // One call per block, then the rest of each short write: 512 = 300 + 212; the last block 100.
  assert.deepEqual(calls, [512, 212, 512, 212, 512, 212, 512, 212, 100]);
  // Write-behind holds: a window's ACK (2, 4) goes out before its last block is written.
  assert.deepEqual(acksAtWrite, [0, 0, 1, 1, 1, 1, 2, 2, 2]);
});
