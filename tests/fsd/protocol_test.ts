import assert from "node:assert/strict";
import { ErrorCode, ProtocolError } from "../../lib/store/errors.ts";
import {
  encodeAck,
  encodeData,
  encodeDrq,
  encodeError,
  encodeOptions,
  encodeRequest,
  nextBlock,
  Opcode,
  type Packet,
  PacketDecoder,
} from "../../lib/fsd/codec.ts";
import { wire } from "../support/raw_client.ts";

const bytes = (...b: number[]) => new Uint8Array(b);

function decodeAll(decoder: PacketDecoder): Packet[] {
  const out: Packet[] = [];
  for (let p = decoder.next(); p; p = decoder.next()) {
    // DAT data is a view into the decoder's buffer: copy before feeding more.
    out.push(p.op === Opcode.DAT ? { ...p, data: p.data.slice() } : p);
  }
  return out;
}

function illegal(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    return e instanceof ProtocolError && e.code === ErrorCode.ILLEGAL_OPERATION &&
      pattern.test(e.message);
  });
}

Deno.test("encoders produce the documented layouts", () => {
  assert.deepEqual(encodeRequest(Opcode.RRQ, "a/b"), bytes(0, 1, 97, 47, 98, 0));
  assert.deepEqual(encodeRequest(Opcode.WRQ, "x"), bytes(0, 2, 120, 0));
  assert.deepEqual(encodeData(258, bytes(9, 8)), bytes(0, 3, 1, 2, 0, 2, 9, 8));
  assert.deepEqual(encodeAck(65535), bytes(0, 4, 255, 255));
  assert.deepEqual(encodeError(6, "no"), bytes(0, 5, 0, 6, 110, 111, 0));
  assert.deepEqual(encodeDrq(), bytes(0, 6));
  // and they agree with the hand-built packets the other tests use
  assert.deepEqual(encodeRequest(Opcode.RRQ, "é"), wire.rrq("é"));
  assert.deepEqual(encodeData(7, bytes(1, 2, 3)), wire.dat(7, bytes(1, 2, 3)));
  assert.deepEqual(encodeError(1, "x"), wire.err(1, "x"));
});

Deno.test("block numbers wrap from 65535 to 0", () => {
  assert.deepEqual(nextBlock(1), 2);
  assert.deepEqual(nextBlock(65534), 65535);
  assert.deepEqual(nextBlock(65535), 0);
  assert.deepEqual(nextBlock(0), 1);
});

const SAMPLE = wire.concat(
  wire.rrq("dir/file.txt"),
  wire.wrq("new"),
  wire.dat(1, new Uint8Array(512).fill(7)),
  wire.dat(2, new Uint8Array(0)),
  wire.ack(65535),
  wire.err(1, "file not found: x"),
  wire.drq(),
);

const SAMPLE_PACKETS: Packet[] = [
  { op: Opcode.RRQ, name: new TextEncoder().encode("dir/file.txt") },
  { op: Opcode.WRQ, name: new TextEncoder().encode("new") },
  { op: Opcode.DAT, block: 1, data: new Uint8Array(512).fill(7) },
  { op: Opcode.DAT, block: 2, data: new Uint8Array(0) },
  { op: Opcode.ACK, block: 65535 },
  { op: Opcode.ERR, code: 1, message: "file not found: x" },
  { op: Opcode.DRQ },
];

Deno.test("decoder: packets packed into one read", () => {
  const decoder = new PacketDecoder();
  decoder.push(SAMPLE);
  assert.deepEqual(decodeAll(decoder), SAMPLE_PACKETS);
  assert.deepEqual(decoder.buffered, 0);
});

Deno.test("decoder: packets split byte by byte", () => {
  const decoder = new PacketDecoder();
  const got: Packet[] = [];
  for (const byte of SAMPLE) {
    decoder.push(bytes(byte));
    got.push(...decodeAll(decoder));
  }
  assert.deepEqual(got, SAMPLE_PACKETS);
});

Deno.test("decoder: every split into two reads gives the same packets", () => {
  for (let cut = 0; cut <= SAMPLE.length; cut++) {
    const decoder = new PacketDecoder();
    decoder.push(SAMPLE.subarray(0, cut));
    const got = decodeAll(decoder);
    decoder.push(SAMPLE.subarray(cut));
    got.push(...decodeAll(decoder));
    assert.deepEqual(got, SAMPLE_PACKETS, `cut at ${cut}`);
  }
});

Deno.test("decoder: reading straight into reserve() and commit()", () => {
  const decoder = new PacketDecoder();
  const got: Packet[] = [];
  for (let at = 0; at < SAMPLE.length; at += 100) {
    const chunk = SAMPLE.subarray(at, at + 100);
    decoder.reserve(chunk.length).set(chunk);
    decoder.commit(chunk.length);
    got.push(...decodeAll(decoder));
  }
  assert.deepEqual(got, SAMPLE_PACKETS);
});

Deno.test("decoder: memory stays bounded over a long stream", () => {
  const decoder = new PacketDecoder();
  const frame = wire.dat(1, new Uint8Array(512));
  const view = decoder.reserve();
  const capacity = view.length;
  for (let i = 0; i < 10_000; i++) {
    decoder.push(frame.subarray(0, 300));
    decodeAll(decoder);
    decoder.push(frame.subarray(300));
    assert.deepEqual(decodeAll(decoder).length, 1);
  }
  assert.deepEqual(decoder.reserve().length, capacity);
});

Deno.test("decoder: a DAT larger than 512 bytes is illegal as soon as its header arrives", () => {
  const decoder = new PacketDecoder();
  decoder.push(bytes(0, 3, 0, 1, 2, 1)); // size 513, no data yet
  illegal(() => decoder.next(), /data block too large: 513/);
});

Deno.test("decoder: a larger block size is accepted when configured", () => {
  const decoder = new PacketDecoder({ maxDataSize: 65464 });
  decoder.push(wire.dat(1, new Uint8Array(65464)));
  const packet = decoder.next();
  assert.deepEqual(packet?.op === Opcode.DAT && packet.data.length, 65464);
});

Deno.test("decoder: unknown opcodes are illegal", () => {
  for (const op of [0, 9, 255, 256, 65535]) {
    const decoder = new PacketDecoder();
    decoder.push(bytes(op >> 8, op & 0xff, 0, 0));
    illegal(() => decoder.next(), new RegExp(`unknown opcode: ${op}$`));
  }
});

Deno.test("decoder: a string without its zero byte is illegal once longer than the limit", () => {
  const decoder = new PacketDecoder({ maxStringBytes: 16 });
  decoder.push(wire.concat([0, 1], new Uint8Array(16).fill(97)));
  assert.deepEqual(decoder.next(), undefined); // could still end
  decoder.push(bytes(97));
  illegal(() => decoder.next(), /file name too long/);

  const err = new PacketDecoder({ maxStringBytes: 16 });
  err.push(wire.concat([0, 5, 0, 0], new Uint8Array(17).fill(97)));
  illegal(() => err.next(), /error message too long/);
});

Deno.test("decoder: a string of exactly the limit is accepted", () => {
  const decoder = new PacketDecoder({ maxStringBytes: 16 });
  decoder.push(wire.rrq("a".repeat(16)));
  assert.deepEqual(decoder.next()?.op, Opcode.RRQ);
});

Deno.test("decoder: incomplete packets wait for more bytes", () => {
  for (
    const partial of [
      bytes(0),
      bytes(0, 3, 0),
      bytes(0, 3, 0, 1, 0, 5, 1),
      bytes(0, 4, 0),
      bytes(0, 5, 0, 1, 65),
    ]
  ) {
    const decoder = new PacketDecoder();
    decoder.push(partial);
    assert.deepEqual(decoder.next(), undefined);
    assert.deepEqual(decoder.buffered, partial.length);
  }
});

Deno.test("decoder: OPT and OACK carry counted name/value pairs, in any split", () => {
  const opt = encodeOptions(Opcode.OPT, [["blksize", "1024"], ["windowsize", "8"], ["tsize", "0"]]);
  assert.deepEqual(
    opt,
    wire.concat(
      [0, 7, 0, 3],
      new TextEncoder().encode("blksize\x001024\x00windowsize\x008\x00tsize\x000\x00"),
    ),
  );
  for (let cut = 0; cut <= opt.length; cut++) {
    const decoder = new PacketDecoder();
    decoder.push(opt.subarray(0, cut));
    const early = decoder.next();
    decoder.push(opt.subarray(cut));
    const packet = early ?? decoder.next();
    assert.deepEqual(packet, {
      op: Opcode.OPT,
      options: [["blksize", "1024"], ["windowsize", "8"], ["tsize", "0"]],
    });
  }
  const oack = new PacketDecoder();
  oack.push(encodeOptions(Opcode.OACK, [["BlkSize", "512"]]));
  assert.deepEqual(oack.next(), { op: Opcode.OACK, options: [["blksize", "512"]] }); // names are case-insensitive
  for (const count of [0, 17]) {
    const bad = new PacketDecoder();
    bad.push(new Uint8Array([0, 7, 0, count]));
    illegal(() => bad.next(), new RegExp(`OPT with ${count} options`));
  }
});
