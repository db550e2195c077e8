/**
 * The floor of TFTP in lock-step on Deno's UDP (issue 20 item 1; not part of
 * CI): the smallest TFTP server and client on `Deno.listenDatagram` (one
 * reused receive buffer, sends not awaited, blocks of zeros from memory, no
 * files, no deadlines), timed beside tftpd-hpa, curl and fsd on the same
 * downloads. What fsd's rows lose against these is fsd's; what these lose
 * against the C programs is Deno's per-datagram cost (an async op and an
 * event-loop turn where C sleeps in recvfrom).
 *
 *   deno run --allow-net=127.0.0.1 --allow-read --allow-write --allow-run bench/tftp_floor.ts [--mb 200] [--rounds 3]
 *
 * `--serve MIB` and `--get PORT` run one side alone (the driver spawns them).
 */

import { parseArgs } from "node:util";
import {
  bestOfRounds,
  curlTftpGet,
  fsdServe,
  MAIN,
  type Row,
  service,
  startTftpd,
} from "./support.ts";

const { values } = parseArgs({
  options: {
    mb: { type: "string", default: "200" },
    rounds: { type: "string", default: "3" },
    serve: { type: "string" },
    get: { type: "string" },
    blksize: { type: "string", default: "65464" },
  },
});

const ANY = { transport: "udp" as const, hostname: "127.0.0.1", port: 0 };

/** One download of `mib` MiB of zeros per request, lock-step, at the block size asked. */
async function floorServer(mib: number): Promise<void> {
  const listener = Deno.listenDatagram(ANY);
  console.log(`floor server on port ${(listener.addr as Deno.NetAddr).port}`);
  const request = new Uint8Array(1024);
  for (;;) {
    const [bytes, from] = await listener.receive(request);
    const parts = new TextDecoder().decode(bytes.subarray(2)).split("\0");
    const asked = parts.indexOf("blksize");
    const blockSize = asked > 0 ? Number(parts[asked + 1]) : 512;
    const conn = Deno.listenDatagram(ANY);
    const peer = from;
    const ack = new Uint8Array(64);
    if (asked > 0) {
      conn.send(new TextEncoder().encode(`\0\x06blksize\0${blockSize}\0`), peer);
      await conn.receive(ack);
    }
    const packet = new Uint8Array(4 + blockSize);
    packet[1] = 3;
    const blocks = Math.floor(mib * 1024 * 1024 / blockSize) + 1;
    for (let block = 1; block <= blocks; block++) {
      packet[2] = (block >> 8) & 0xff;
      packet[3] = block & 0xff;
      conn.send(block === blocks ? packet.subarray(0, 4) : packet, peer);
      await conn.receive(ack);
    }
    conn.close();
  }
}

/** Downloads from 127.0.0.1:`port` at `blockSize`, lock-step, bytes dropped; prints the bytes. */
async function floorClient(port: number, blockSize: number): Promise<void> {
  const conn = Deno.listenDatagram(ANY);
  const buffer = new Uint8Array(65536);
  const ack = new Uint8Array([0, 4, 0, 0]);
  conn.send(
    new TextEncoder().encode(`\0\x01f\0octet\0blksize\0${blockSize}\0`),
    { transport: "udp", hostname: "127.0.0.1", port },
  );
  let bytes = 0;
  for (;;) {
    const [datagram, from] = await conn.receive(buffer);
    const peer = from;
    if (datagram[1] === 6) { // OACK
      conn.send(ack, peer);
      continue;
    }
    ack[2] = datagram[2];
    ack[3] = datagram[3];
    conn.send(ack, peer);
    bytes += datagram.length - 4;
    if (datagram.length - 4 < blockSize) break;
  }
  await new Promise((resolve) => setTimeout(resolve, 10)); // the last ACK leaves
  conn.close();
  console.log(`${bytes} bytes`);
}

async function drive(mib: number, rounds: number, blockSize: number): Promise<void> {
  const root = await Deno.makeTempDir();
  const file = `${root}/f`;
  await Deno.writeFile(file, new Uint8Array(mib * 1024 * 1024));
  const tftpd = await startTftpd(root);
  const self = new URL(import.meta.url).pathname;
  const floor = await service(
    Deno.execPath(),
    ["run", "--allow-net=127.0.0.1", self, "--serve", String(mib)],
    /floor server on port (\d+)/,
  );
  const fsd = await fsdServe(root, ["--tftp-only", "--tftp", "0"], undefined, {
    permissions: ["--allow-net", `--allow-read=${root}`],
    ready: /TFTP server listening on \S+ UDP port (\d+)/,
  });
  const curl = (port: number) => curlTftpGet(port, "f", blockSize);
  const floorGet = (port: number) =>
    [Deno.execPath(), [
      "run",
      "--allow-net=127.0.0.1",
      self,
      "--get",
      String(port),
      "--blksize",
      String(blockSize),
    ]] as const;
  const fsdGet = (port: number) =>
    [Deno.execPath(), [
      "run",
      "--quiet",
      "--allow-net",
      MAIN,
      "get",
      "--blksize",
      String(blockSize),
      "--window",
      "1",
      `tftp://127.0.0.1:${port}/f`,
      "-",
    ]] as const;
  const emptyDeno = [Deno.execPath(), ["eval", "0"]] as const;
  const rows: Row[] = [
    ["curl from tftpd-hpa", curl(tftpd.port)],
    ["curl from the Deno floor server", curl(floor.port)],
    ["curl from fsd serve --tftp-only", curl(fsd.port)],
    ["the Deno floor client from tftpd-hpa", floorGet(tftpd.port)],
    ["fsd get (window 1) from tftpd-hpa", fsdGet(tftpd.port)],
    ["an empty deno eval (start-up, subtract from the Deno clients)", emptyDeno],
  ];
  let best: Map<string, number>;
  try {
    best = await bestOfRounds(rows, rounds);
  } finally {
    await floor.stop();
    await fsd.stop();
    await tftpd.stop();
    await Deno.remove(root, { recursive: true });
  }
  const blocks = Math.ceil(mib * 1024 * 1024 / blockSize);
  console.log(
    `TFTP lock-step floor: ${mib} MiB at blksize ${blockSize} (${blocks} round trips), best of ${rounds}`,
  );
  for (const [what, ms] of best) {
    console.log(`  ${what}: ${ms.toFixed(0)} ms, ${(ms * 1000 / blocks).toFixed(1)} µs per block`);
  }
}

if (values.serve) await floorServer(Number(values.serve));
else if (values.get) await floorClient(Number(values.get), Number(values.blksize));
else await drive(Number(values.mb), Number(values.rounds), Number(values.blksize));
