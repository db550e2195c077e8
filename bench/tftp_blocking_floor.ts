/**
 * The smallest lock-step TFTP download on Deno whose waits block the thread
 * in the C library's recvfrom (Deno's FFI) instead of Deno's event loop: an
 * RRQ for FILE at blksize 65464, each DATA acknowledged, nothing written.
 * It is what showed that the TFTP client's gap to curl was Deno's socket
 * API, not Deno (docs/PERFORMANCE.md, "session 34"):
 *
 *   deno run --allow-ffi bench/tftp_blocking_floor.ts HOST PORT FILE
 *
 * Beside `curl -s --tftp-blksize 65464 -o /dev/null tftp://HOST:PORT/FILE`,
 * whole processes, interleaved. Linux with glibc, IPv4 only.
 */

const [host, portText, file] = Deno.args;
const libc = Deno.dlopen("libc.so.6", {
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  sendto: { parameters: ["i32", "buffer", "usize", "i32", "buffer", "u32"], result: "isize" },
  recvfrom: { parameters: ["i32", "buffer", "usize", "i32", "buffer", "buffer"], result: "isize" },
  close: { parameters: ["i32"], result: "i32" },
}).symbols;

const fd = libc.socket(2, 2, 0); // AF_INET, SOCK_DGRAM
const server = new Uint8Array(16); // sockaddr_in
new DataView(server.buffer).setUint16(0, 2, true);
new DataView(server.buffer).setUint16(2, Number(portText));
host.split(".").forEach((part, i) => server[4 + i] = Number(part));
const text = (s: string) => [...new TextEncoder().encode(s), 0];
const rrq = new Uint8Array([
  0,
  1,
  ...text(file),
  ...text("octet"),
  ...text("blksize"),
  ...text("65464"),
]);
libc.sendto(fd, rrq, BigInt(rrq.length), 0, server, 16);

const buffer = new Uint8Array(65_536);
const from = new Uint8Array(16);
const fromLength = new Uint8Array(new Uint32Array([16]).buffer);
const ack = new Uint8Array([0, 4, 0, 0]);
let bytes = 0;
let expected = 1;
for (;;) {
  const n = Number(libc.recvfrom(fd, buffer, BigInt(buffer.length), 0, from, fromLength));
  if (n < 4) throw new Error(`recvfrom: ${n}`);
  if (buffer[1] === 6) { // OACK: ACK 0 from the transfer's port
    ack[2] = ack[3] = 0;
    libc.sendto(fd, ack, 4n, 0, from, 16);
    continue;
  }
  if (buffer[1] !== 3) throw new Error(`TFTP opcode ${buffer[1]}`);
  if ((buffer[2] << 8 | buffer[3]) !== (expected & 0xffff)) continue; // a duplicate
  bytes += n - 4;
  expected++;
  ack[2] = buffer[2];
  ack[3] = buffer[3];
  libc.sendto(fd, ack, 4n, 0, from, 16);
  if (n - 4 < 65464) break;
}
libc.close(fd);
console.log(`${bytes} bytes`);
