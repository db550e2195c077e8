/**
 * The smallest lock-step TFTP server on Deno whose waits block the thread in
 * the C library's recvfrom (Deno's FFI) instead of Deno's event loop: it
 * answers each RRQ on 127.0.0.1 PORT with FILE (whatever name is asked),
 * at blksize 65464 (an OACK), one transfer at a time, `--rounds N` of them.
 * With `--read-after` it reads each block once its ACK came (as a simple
 * server does); by default it reads the next block while the ACK is on its
 * way. What fsd's sender threads were measured against (docs/PERFORMANCE.md,
 * "session 35"):
 *
 *   deno run --allow-ffi --allow-read bench/tftp_server_floor.ts PORT FILE [--rounds N] [--read-after]
 *
 * beside `curl -s --tftp-blksize 65464 -o /dev/null tftp://127.0.0.1:PORT/x`
 * against tftpd-hpa and fsd, interleaved. Linux with glibc, IPv4.
 */

const [portText, path] = Deno.args;
const rounds = Number(Deno.args[Deno.args.indexOf("--rounds") + 1] || 100);
const readAfter = Deno.args.includes("--read-after");
const BLOCK = 65464;

const libc = Deno.dlopen("libc.so.6", {
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  sendto: { parameters: ["i32", "buffer", "usize", "i32", "buffer", "u32"], result: "isize" },
  recvfrom: { parameters: ["i32", "buffer", "usize", "i32", "buffer", "buffer"], result: "isize" },
  close: { parameters: ["i32"], result: "i32" },
}).symbols;

/** A UDP socket bound to 127.0.0.1 `port`. */
function bound(port: number): number {
  const fd = libc.socket(2, 2, 0);
  const address = new Uint8Array(16);
  new DataView(address.buffer).setUint16(0, 2, true);
  new DataView(address.buffer).setUint16(2, port);
  address.set([127, 0, 0, 1], 4);
  if (libc.bind(fd, address, 16) !== 0) throw new Error(`cannot bind port ${port}`);
  return fd;
}

const text = (s: string) => [...new TextEncoder().encode(s), 0];
const oack = new Uint8Array([0, 6, ...text("blksize"), ...text(String(BLOCK))]);
const packets = [new Uint8Array(4 + BLOCK), new Uint8Array(4 + BLOCK)];
for (const packet of packets) packet[1] = 3;
const request = new Uint8Array(65536);
const ack = new Uint8Array(516);
const client = new Uint8Array(16);
const from = new Uint8Array(16);
const length = new Uint32Array(1);
const lengthBytes = new Uint8Array(length.buffer);

const listening = bound(Number(portText));
for (let round = 0; round < rounds; round++) {
  length[0] = 16;
  const n = Number(libc.recvfrom(listening, request, 65536n, 0, client, lengthBytes));
  if (n < 2 || request[1] !== 1) continue;
  const file = Deno.openSync(path);
  const fill = (packet: Uint8Array) => {
    let filled = 0;
    while (filled < BLOCK) {
      const got = file.readSync(packet.subarray(4 + filled));
      if (got === null) break;
      filled += got;
    }
    return filled;
  };
  const fd = bound(0);
  libc.sendto(fd, oack, BigInt(oack.length), 0, client, 16);
  let block = 0;
  let size = BLOCK; // of the block last sent (the transfer ends with a short one)
  let next = 0; // bytes of the block read ahead
  for (;;) {
    length[0] = 16;
    const got = Number(libc.recvfrom(fd, ack, 516n, 0, from, lengthBytes));
    if (got < 4 || ack[1] !== 4) break;
    if ((ack[2] << 8 | ack[3]) !== (block & 0xffff)) continue; // a duplicate
    if (block > 0 && size < BLOCK) break;
    block++;
    const packet = packets[block & 1];
    size = readAfter || block === 1 ? fill(packet) : next;
    packet[2] = (block >> 8) & 0xff;
    packet[3] = block & 0xff;
    libc.sendto(fd, packet, BigInt(4 + size), 0, client, 16);
    if (!readAfter && size === BLOCK) next = fill(packets[(block + 1) & 1]);
  }
  file.close();
  libc.close(fd);
}
libc.close(listening);
