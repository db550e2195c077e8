/**
 * Where a lock-step TFTP server's time goes between its file and its
 * datagrams (issue 20, the curl row; not part of CI): the smallest lock-step
 * servers on `Deno.listenDatagram`, each reading the file its own way, beside
 * tftpd-hpa, all downloaded by curl (`--tftp-blksize`, lock-step) to
 * /dev/null, interleaved rounds; best and median wall times.
 *
 * - `zeros`: no file at all (bench/tftp_floor.ts's floor server);
 * - `direct`: `readSync` straight into the datagram (fsd's server on local
 *   file systems with --allow-all: lib/tftp/blocks.ts);
 * - `chunked`: fsd's ChunkedReader, 1 MiB reads on Deno's I/O threads, each
 *   block copied out (fsd's server otherwise);
 * - `chunked-sync`: the same chunks read synchronously;
 * - `in-place`: 16-block chunks read on Deno's threads, each block sent from
 *   the chunk with its header written over the 4 bytes before it (no copy;
 *   safe only in lock-step, where the block before is acknowledged);
 * - `per-block`: `read` (async) straight into the datagram, a hand-off each.
 *
 *   deno run --allow-net=127.0.0.1 --allow-read --allow-write --allow-run bench/tftp_reads.ts [--mb 1024] [--blksize 65464] [--rounds 8]
 *
 * `--serve MODE FILE` runs one server alone (the driver spawns them).
 */

import { parseArgs } from "node:util";
import { ChunkedReader } from "../lib/bytes/chunked.ts";
import {
  curlTftpGet,
  printTimes,
  type Row,
  service,
  startTftpd,
  timesOfRounds,
} from "./support.ts";

const MODES = ["zeros", "direct", "chunked", "chunked-sync", "in-place", "per-block"] as const;
type Mode = typeof MODES[number];

const { values } = parseArgs({
  options: {
    mb: { type: "string", default: "1024" },
    blksize: { type: "string", default: "65464" },
    rounds: { type: "string", default: "8" },
    serve: { type: "string", multiple: true },
  },
  allowPositionals: true,
  strict: false,
});

const ANY = { transport: "udp" as const, hostname: "127.0.0.1", port: 0 };
/** One download: its socket, the client, the file, the block size granted, a buffer for ACKs. */
interface Lane {
  conn: Deno.DatagramConn;
  peer: Deno.Addr;
  file: Deno.FsFile;
  blockSize: number;
  ack: Uint8Array;
}

/** Serves FILE to each request, lock-step at the block size asked, reading it as `mode` says. */
async function serve(mode: Mode, path: string): Promise<void> {
  const listener = Deno.listenDatagram(ANY);
  console.log(`${mode} server on port ${(listener.addr as Deno.NetAddr).port}`);
  const request = new Uint8Array(1024);
  for (;;) {
    const [bytes, peer] = await listener.receive(request);
    const parts = new TextDecoder().decode(bytes.subarray(2)).split("\0");
    const asked = parts.indexOf("blksize");
    const blockSize = asked > 0 ? Number(parts[asked + 1]) : 512;
    const conn = Deno.listenDatagram(ANY);
    const ack = new Uint8Array(64);
    if (asked > 0) {
      conn.send(new TextEncoder().encode(`\0\x06blksize\0${blockSize}\0`), peer);
      await conn.receive(ack);
    }
    const file = await Deno.open(path);
    try {
      const lane = { conn, peer, file, blockSize, ack };
      if (mode === "in-place") await sendInPlace(lane);
      else await sendBlocks(mode, lane);
    } finally {
      file.close();
      conn.close();
    }
  }
}

/** Lock-step from two packets: the next block is read while the ACK of this one travels. */
async function sendBlocks(mode: Mode, { conn, peer, file, blockSize, ack }: Lane): Promise<void> {
  const packets = [new Uint8Array(4 + blockSize), new Uint8Array(4 + blockSize)];
  for (const packet of packets) packet[1] = 3;
  const size = (await file.stat()).size;
  const source = mode === "chunked-sync"
    ? { regularFile: true, read: (b: Uint8Array) => Promise.resolve(file.readSync(b)) }
    : { regularFile: true, read: (b: Uint8Array) => file.read(b) };
  const reader = new ChunkedReader(source);
  let zeros = size;
  const load = async (block: number): Promise<number> => {
    const packet = packets[block & 1];
    packet[2] = (block >> 8) & 0xff;
    packet[3] = block & 0xff;
    const data = packet.subarray(4);
    if (mode === "zeros") {
      const n = Math.min(zeros, blockSize);
      zeros -= n;
      return n;
    }
    if (mode === "direct") return file.readSync(data) ?? 0;
    if (mode === "per-block") return (await file.read(data)) ?? 0;
    return await reader.fill(data);
  };
  try {
    for (let block = 1, n = await load(1);; block++) {
      conn.send(packets[block & 1].subarray(0, 4 + n), peer);
      const acked = conn.receive(ack);
      const next = n === blockSize ? await load(block + 1) : -1;
      await acked;
      if (next < 0) return;
      n = next;
    }
  } finally {
    await reader.finish();
  }
}

/** Lock-step from 16-block chunks, each block's header written in front of it in the chunk. */
async function sendInPlace({ conn, peer, file, blockSize, ack }: Lane): Promise<void> {
  const blocks = 16;
  const chunks = [0, 1].map(() => new Uint8Array(4 + blocks * blockSize));
  const fill = async (chunk: Uint8Array) => {
    let filled = 0;
    while (filled < blocks * blockSize) {
      const n = await file.read(chunk.subarray(4 + filled, 4 + blocks * blockSize));
      if (n === null) break;
      filled += n;
    }
    return filled;
  };
  let current = 0;
  let have = await fill(chunks[0]);
  let ahead = fill(chunks[1]);
  try {
    for (let block = 1;;) {
      const chunk = chunks[current];
      for (let i = 0; i < blocks; i++, block++) {
        const start = 4 + i * blockSize;
        const n = Math.max(0, Math.min(blockSize, have - i * blockSize));
        chunk.set([0, 3, (block >> 8) & 0xff, block & 0xff], start - 4);
        conn.send(chunk.subarray(start - 4, start + n), peer);
        await conn.receive(ack);
        if (n < blockSize) return;
      }
      have = await ahead;
      current ^= 1;
      ahead = fill(chunks[current ^ 1]);
    }
  } finally {
    await ahead;
  }
}

async function drive(): Promise<void> {
  const mib = Number(values.mb);
  const blockSize = Number(values.blksize);
  const root = await Deno.makeTempDir({ prefix: "fsd-tftp-reads-" });
  const file = await Deno.open(`${root}/f`, { write: true, create: true });
  const chunk = new Uint8Array(1024 * 1024).map((_, i) => (i * 131 + 7) & 0xff);
  for (let i = 0; i < mib; i++) await file.write(chunk);
  file.close();
  const self = new URL(import.meta.url).pathname;
  const servers = await Promise.all(MODES.map((mode) =>
    service(
      Deno.execPath(),
      ["run", "--allow-net=127.0.0.1", `--allow-read=${root}`, self, "--serve", mode, `${root}/f`],
      /server on port (\d+)/,
    )
  ));
  const tftpd = await startTftpd(root).catch(() => undefined);
  const curl = (port: number) => curlTftpGet(port, "f", blockSize);
  const rows: Row[] = MODES.map((
    mode,
    i,
  ) => [`curl from the ${mode} server`, curl(servers[i].port)]);
  if (tftpd) rows.unshift(["curl from tftpd-hpa", curl(tftpd.port)]);
  else console.log("note: tftpd-hpa missing (apt-get install tftpd-hpa): its row skipped");
  try {
    const times = await timesOfRounds(rows, Number(values.rounds));
    console.log(
      `TFTP lock-step reads: ${mib} MiB at blksize ${blockSize}, ${values.rounds} interleaved rounds`,
    );
    printTimes(times);
  } finally {
    for (const server of servers) await server.stop();
    await tftpd?.stop();
    await Deno.remove(root, { recursive: true });
  }
}

if (values.serve) {
  const [mode, path] = Deno.args.slice(Deno.args.indexOf("--serve") + 1);
  if (!(MODES as readonly string[]).includes(mode)) throw new Error(`no mode ${mode}`);
  await serve(mode as Mode, path);
} else await drive();
