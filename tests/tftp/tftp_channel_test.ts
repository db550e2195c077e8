/**
 * TFTP's block logic over an in-memory DatagramChannel pair (no sockets, no
 * timers: time jumps when both ends wait): loss, duplication, reordering,
 * the Sorcerer's Apprentice case and giving up, deterministic.
 */

import assert from "node:assert/strict";
import {
  type ByteSource,
  bytesSource,
  fileSource,
  MemorySink,
} from "../../lib/bytes/source_sink.ts";
import { dally, receiveFile, sendFile } from "../../lib/tftp/blocks.ts";
import { type Fate, MemoryChannel } from "../../lib/tftp/channel.ts";
import { encodeAck, Opcode, parsePacket } from "../../lib/tftp/codec.ts";
import { randomBytes, tempDir } from "../support/files.ts";

type FateOf = (bytes: Uint8Array, index: number) => Fate;

/** Sends `size` bytes from end a to end b with these fates; returns what b got and what each end sent. */
async function move(
  size: number,
  params: { blockSize: number; windowSize: number; ackEvery?: number },
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

Deno.test("memory: sliding (ackevery): each block once, an ACK every K-th block and the last, the next block out as each ACK comes", async () => {
  const one = await move(4096, { blockSize: 512, windowSize: 3, ackEvery: 1 });
  assert.deepEqual(one.data, [1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.deepEqual(one.acks, [1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.equal(one.now, 0);
  const two = await move(4096, { blockSize: 512, windowSize: 4, ackEvery: 2 });
  assert.deepEqual(two.data, [1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.deepEqual(two.acks, [2, 4, 6, 8, 9]);
  // It slides: each ACK lets one more block go at once (in RFC 7440's windows of 3, blocks 4-6
  // would leave together after ACK 3, and ACK 6 come next).
  const events: string[] = [];
  const log = (bytes: Uint8Array) => {
    const packet = parsePacket(bytes, 512);
    if ("block" in packet) events.push(`${packet.op === Opcode.DATA ? "D" : "A"}${packet.block}`);
    return "pass" as const;
  };
  await move(6 * 512 + 1, { blockSize: 512, windowSize: 3, ackEvery: 1 }, { a: log, b: log });
  assert.equal(events.join(" "), "D1 D2 D3 A1 A2 A3 D4 A4 D5 A5 D6 A6 D7 A7");
});

Deno.test("memory: sliding: a lost block is sent again on the receiver's repeated ACK, with no timeout", async () => {
  // Block 2 (the sender's second send) lost: block 3 shows the gap, the receiver repeats ACK 1.
  const gap = await move(10 * 512 + 10, { blockSize: 512, windowSize: 3, ackEvery: 1 }, {
    a: (_, i) => i === 1 ? "drop" : "pass",
  });
  assert.equal(gap.now, 0, "recovered without waiting for a timeout (virtual time)");
  assert.equal(gap.data.filter((block) => block === 2).length, 2);
  // ACK 1, then block 3 (a gap): ACK 1 repeated; block 2 again: ACK 2.
  assert.deepEqual(gap.acks.slice(0, 3), [1, 1, 2]);
  // An ACK every 2nd block: block 3 shows the gap with block 1 not yet acknowledged, so ACK 1
  // goes twice: the first moves the sender on, the repeat sends block 2 again.
  const pair = await move(10 * 512 + 10, { blockSize: 512, windowSize: 4, ackEvery: 2 }, {
    a: (_, i) => i === 1 ? "drop" : "pass",
  });
  assert.equal(pair.now, 0, "recovered without waiting for a timeout (virtual time)");
  assert.deepEqual(pair.acks.slice(0, 3), [1, 1, 3]);
});

Deno.test("memory: sliding: loss, duplication and reordering both ways still move every byte", async () => {
  for (const [windowSize, ackEvery] of [[3, 1], [8, 2]]) {
    const lossy = await move(40_000, { blockSize: 512, windowSize, ackEvery }, {
      a: (_, i) =>
        i % 7 === 3 ? "drop" : i % 11 === 5 ? "delay" : i % 13 === 2 ? "duplicate" : "pass",
      b: (_, i) => i % 5 === 4 ? "drop" : i % 9 === 1 ? "duplicate" : "pass",
    });
    assert.ok(lossy.data.length > 79);
  }
});

Deno.test("memory: sliding: duplicated ACKs send a window again at most once per block, never a cascade", async () => {
  const blocks = 40;
  const doubled = await move(blocks * 512 - 1, { blockSize: 512, windowSize: 3, ackEvery: 1 }, {
    a: () => "duplicate",
    b: () => "duplicate",
  });
  assert.equal(doubled.now, 0);
  // At most one go-back (a window) for each block acknowledged: bounded, not growing.
  assert.ok(doubled.data.length <= blocks * (1 + 3), `${doubled.data.length} sends`);
});

Deno.test("memory: sliding: a peer repeating one ACK gets the window again once, not once per repeat", async () => {
  const [sender, peer] = MemoryChannel.pair();
  const config = {
    params: { blockSize: 512, windowSize: 3, ackEvery: 1, timeoutMs: 1000 },
    retries: 0,
  };
  const source = bytesSource(new Uint8Array(10 * 512));
  const sending = sendFile(sender, source, config).catch((error: Error) => error);
  // The blocks the peer receives until it has `count`, or until half a timeout passes in silence.
  const blocksIn = async (count: number) => {
    const blocks: number[] = [];
    while (blocks.length < count) {
      const bytes = await peer.receive(peer.now() + 500);
      if (bytes === null) break;
      const packet = parsePacket(bytes, 512);
      blocks.push(packet.op === Opcode.DATA ? packet.block : -1);
    }
    return blocks;
  };
  try {
    assert.deepEqual(await blocksIn(3), [1, 2, 3]);
    peer.send(encodeAck(1));
    assert.deepEqual(await blocksIn(1), [4]);
    for (let i = 0; i < 5; i++) peer.send(encodeAck(1)); // the same ACK, five times more
    assert.deepEqual(await blocksIn(10), [2, 3, 4]);
  } finally {
    sender.close();
    peer.close();
  }
  assert.match(String(await sending), /timed out/);
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

/** What a receiver gets of `source`, sent in blocks of `blockSize` with this window. */
async function received(
  source: ByteSource,
  windowSize: number,
  blockSize = 512,
): Promise<Uint8Array> {
  const [sender, receiver] = MemoryChannel.pair();
  const sink = new MemorySink();
  const config = { params: { blockSize, windowSize, timeoutMs: 1000 }, retries: 1 };
  try {
    await Promise.all([
      sendFile(sender, source, config),
      receiveFile(receiver, sink, { ...config, reply: encodeAck(0) }),
    ]);
  } finally {
    sender.close();
    receiver.close();
  }
  return sink.bytes();
}

Deno.test("memory: a source offering readSync (a file that cannot stall) is read straight into each datagram, short reads resumed, never an async read", async () => {
  const data = randomBytes(4 * 512 + 100, 13);
  let offset = 0;
  const calls: [number, number, number][] = []; // each readSync's length, offset in its buffer, buffer size
  const source = {
    regularFile: true,
    read(): Promise<number | null> {
      throw new Error("an async read: the source offered readSync");
    },
    readSync(buffer: Uint8Array): number | null {
      calls.push([buffer.length, buffer.byteOffset, buffer.buffer.byteLength]);
      if (offset === data.length) return null;
      const n = Math.min(buffer.length, 300, data.length - offset); // short reads
      buffer.set(data.subarray(offset, offset + n));
      offset += n;
      return n;
    },
  };
  assert.deepEqual(await received(source, 2), data);
  // Into the datagram itself (4 header bytes, then 512 of data), the rest of a short read after
  // the first part; the last block ends at the file's end.
  const full: [number, number, number][] = [[512, 4, 516], [212, 304, 516]];
  assert.deepEqual(calls, [...full, ...full, ...full, ...full, [512, 4, 516], [412, 104, 516]]);
});

Deno.test("memory: readSync is not used on a source that is not a regular file (a read there may wait)", async () => {
  const data = randomBytes(3 * 512 + 7, 17);
  const inner = bytesSource(data);
  const source = {
    read: (buffer: Uint8Array) => inner.read(buffer),
    readSync(): number | null {
      throw new Error("readSync on a source that is not a regular file");
    },
  };
  assert.deepEqual(await received(source, 1), data);
});

Deno.test("memory: a file read on Deno's threads (no readSync: a network file system) moves byte for byte, past the switch to 1 MiB chunks", async () => {
  await using dir = await tempDir();
  const data = randomBytes(5 * 1024 * 1024 + 3, 19);
  await Deno.writeFile(`${dir.path}/f`, data);
  for (const windowSize of [1, 4]) {
    using file = await Deno.open(`${dir.path}/f`);
    const source = fileSource(file); // async reads only, as on NFS or without --allow-all
    assert.equal(source.readSync, undefined);
    assert.deepEqual(await received(source, windowSize, 8192), data, `window ${windowSize}`);
  }
});
