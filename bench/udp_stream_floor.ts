/**
 * The floor of a windowed download on Deno's UDP (issue 20 item 1, the
 * windows row; not part of CI): the smallest sender and receiver on
 * `Deno.listenDatagram` that move N MiB of 65464-byte blocks of zeros (no
 * files, no TFTP parsing), in two ways:
 *
 * - `lockstep W`: RFC 7440's windows: W blocks, then wait for the ACK of the
 *   window's last block before the next window (what fsd's TFTP does now);
 * - `sliding W K`: up to W blocks in flight; the receiver acknowledges every
 *   K-th block and the last; each ACK slides the window on (go-back-N after
 *   20 ms without progress).
 *
 * Timed beside curl from tftpd-hpa (the issue's baseline for the 2.0x goal),
 * whole processes, start-up included (an empty `deno eval` row shows it).
 *
 *   deno run --allow-net=127.0.0.1 --allow-read --allow-write --allow-run bench/udp_stream_floor.ts [--mb 1024] [--rounds 3]
 *
 * `--wide` adds windows past the default receive buffer (212992 bytes here), for
 * a run with `net.core.rmem_default` raised: they show what the buffer costs.
 *
 * `--send` and `--receive PORT MODE W K` run one side alone (the driver spawns them).
 */

import dgram from "node:dgram";
import { parseArgs } from "node:util";
import { bestOfRounds, type Row, service, startTftpd } from "./support.ts";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    mb: { type: "string", default: "1024" },
    rounds: { type: "string", default: "3" },
    send: { type: "boolean", default: false },
    receive: { type: "string" },
    wide: { type: "boolean", default: false },
  },
});

const BLOCK = 65464;
const ANY = { transport: "udp" as const, hostname: "127.0.0.1", port: 0 };

/** Serves each request `MIB W K sliding|lockstep` (text) from a port of its own. */
async function sender(): Promise<void> {
  const listener = Deno.listenDatagram(ANY);
  console.log(`floor sender on port ${(listener.addr as Deno.NetAddr).port}`);
  const request = new Uint8Array(256);
  for (;;) {
    const [bytes, peer] = await listener.receive(request);
    const [mib, w, , mode] = new TextDecoder().decode(bytes).split(" ");
    await stream(Number(mib), Number(w), mode === "sliding", peer);
  }
}

async function stream(mib: number, w: number, sliding: boolean, peer: Deno.Addr): Promise<void> {
  const conn = Deno.listenDatagram(ANY);
  const total = Math.floor(mib * 1024 * 1024 / BLOCK) + 1; // the last one is short
  // A ring of packets, so that no buffer changes while a send of it may be pending.
  const ring = Array.from({ length: w + 2 }, () => new Uint8Array(4 + BLOCK));
  const send = (n: number) => {
    const packet = ring[n % ring.length];
    new DataView(packet.buffer).setUint32(0, n);
    conn.send(n === total ? packet.subarray(0, 4) : packet, peer);
  };
  let acked = 0;
  let goBacks = 0;
  let wake: (() => void) | undefined;
  const acks = (async () => {
    const buffer = new Uint8Array(64);
    while (acked < total) {
      const [ack] = await conn.receive(buffer);
      const n = new DataView(ack.buffer, ack.byteOffset).getUint32(0);
      if (n > acked) {
        acked = n;
        wake?.();
      }
    }
  })();
  let next = 1;
  let quiet = 0; // go-backs in a row without progress: a receiver gone ends the stream
  while (acked < total && quiet < 50) {
    if (sliding) {
      while (next <= total && next - acked <= w) send(next++);
    } else if (next === acked + 1) {
      const end = Math.min(total, acked + w);
      while (next <= end) send(next++);
    }
    const before = acked;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 20);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    wake = undefined;
    if (acked === before && acked < total) { // lost: go back
      next = acked + 1;
      quiet++;
      goBacks++;
    } else quiet = 0;
  }
  conn.close();
  await acks.catch(() => {});
  console.error(`floor sender: ${total} blocks, ${goBacks} go-backs`);
}

/**
 * The receiving side's bookkeeping, whatever the socket: takes each datagram,
 * acknowledges each in-order `every`-th block and the last (`ack` gets the
 * 4-byte ACK to send), says where it is on a gap; true once the last arrived.
 */
function inOrderAcker(every: number, ack: (packet: Uint8Array) => void) {
  const packet = new Uint8Array(4);
  const view = new DataView(packet.buffer);
  let expected = 1;
  let last = 0;
  const state = { bytes: 0, take };
  function take(datagram: Uint8Array): boolean {
    const n = new DataView(datagram.buffer, datagram.byteOffset).getUint32(0);
    const end = datagram.length < 4 + BLOCK;
    if (n === expected) {
      expected++;
      state.bytes += datagram.length - 4;
      if (end || n - last >= every) {
        last = n;
        view.setUint32(0, n);
        ack(packet);
      }
      return end;
    }
    if (n > expected) { // a gap: say where we are
      view.setUint32(0, expected - 1);
      ack(packet);
    }
    return false;
  }
  return state;
}

/** Receives from 127.0.0.1:`port`; acknowledges each in-order K-th block (lockstep: K = W). */
async function receiver(port: number, mode: string, w: number, k: number): Promise<void> {
  const conn = Deno.listenDatagram(ANY);
  const buffer = new Uint8Array(65536);
  let peer: Deno.Addr | undefined;
  const acker = inOrderAcker(mode === "sliding" ? k : w, (ack) => conn.send(ack, peer!));
  conn.send(
    new TextEncoder().encode(`${values.mb} ${w} ${k} ${mode}`),
    { transport: "udp", hostname: "127.0.0.1", port },
  );
  for (;;) {
    const [datagram, from] = await conn.receive(buffer);
    peer = from;
    if (acker.take(datagram)) break;
  }
  await new Promise((resolve) => setTimeout(resolve, 10)); // the last ACK leaves
  conn.close();
  console.log(`${acker.bytes} bytes`);
}

/** The receiver on node:dgram, whose socket can ask for a larger receive buffer (`bytes`). */
async function nodeReceiver(port: number, w: number, k: number, bytes: number): Promise<void> {
  const socket = dgram.createSocket({ type: "udp4", ...(bytes ? { recvBufferSize: bytes } : {}) });
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", () => resolve()));
  let peer = { port: 0, address: "" };
  const acker = inOrderAcker(k, (ack) => socket.send(ack, peer.port, peer.address));
  await new Promise<void>((resolve) => {
    socket.on("message", (datagram: Uint8Array, from: { port: number; address: string }) => {
      peer = from;
      if (acker.take(datagram)) resolve();
    });
    socket.send(new TextEncoder().encode(`${values.mb} ${w} ${k} sliding`), port, "127.0.0.1");
  });
  await new Promise((resolve) => setTimeout(resolve, 10));
  const buffer = socket.getRecvBufferSize();
  socket.close();
  console.log(`${acker.bytes} bytes, receive buffer ${buffer}`);
}

async function drive(mib: number, rounds: number): Promise<void> {
  const root = await Deno.makeTempDir();
  await Deno.writeFile(`${root}/f`, new Uint8Array(mib * 1024 * 1024));
  const tftpd = await startTftpd(root);
  const self = new URL(import.meta.url).pathname;
  const floor = await service(
    Deno.execPath(),
    ["run", "--allow-net=127.0.0.1", self, "--send"],
    /floor sender on port (\d+)/,
  );
  /** A receiver's command line: `mode` (lockstep, sliding or node), W, K, and node's buffer bytes. */
  const receive = (mode: string, ...numbers: number[]) =>
    [Deno.execPath(), [
      "run",
      "--allow-net=127.0.0.1",
      self,
      "--mb",
      String(mib),
      "--receive",
      String(floor.port),
      mode,
      ...numbers.map(String),
    ]] as const;
  const rows: Row[] = [
    ["curl from tftpd-hpa (blksize 65464, lock-step)", [
      "curl",
      ["-s", "--tftp-blksize", "65464", "-o", "/dev/null", `tftp://127.0.0.1:${tftpd.port}/f`],
    ]],
    ["Deno floor, lockstep window 2", receive("lockstep", 2, 2)],
    ["Deno floor, lockstep window 3", receive("lockstep", 3, 3)],
    ["Deno floor, sliding 3 in flight, ACK every block", receive("sliding", 3, 1)],
    ["Deno floor, sliding 3 in flight, ACK every 2nd", receive("sliding", 3, 2)],
    ["Deno floor, sliding 2 in flight, ACK every block", receive("sliding", 2, 1)],
    ["an empty deno eval (start-up)", [Deno.execPath(), ["eval", "0"]]],
  ];
  rows.push(
    ["node:dgram receiver (default buffer), sliding 3, ACK every block", receive("node", 3, 1, 0)],
    [
      "node:dgram receiver (4 MiB buffer), sliding 3, ACK every block",
      receive("node", 3, 1, 4 << 20),
    ],
  );
  if (values.wide) { // past the default receive buffer: for a machine whose buffer was raised
    rows.push(
      ["Deno floor, lockstep window 8", receive("lockstep", 8, 8)],
      ["Deno floor, sliding 8 in flight, ACK every 2nd", receive("sliding", 8, 2)],
      ["Deno floor, sliding 16 in flight, ACK every 4th", receive("sliding", 16, 4)],
    );
  }
  let best: Map<string, number>;
  try {
    best = await bestOfRounds(rows, rounds);
  } finally {
    await floor.stop();
    await tftpd.stop();
    await Deno.remove(root, { recursive: true });
  }
  const curl = best.values().next().value!;
  console.log(`windowed UDP floor: ${mib} MiB in blocks of ${BLOCK}, best of ${rounds}`);
  for (const [what, ms] of best) {
    console.log(`  ${what}: ${ms.toFixed(0)} ms, ${(curl / ms).toFixed(2)}x curl from tftpd-hpa`);
  }
}

if (values.send) await sender();
else if (values.receive) {
  const [mode, w, k, bytes] = positionals;
  if (mode === "node") {
    await nodeReceiver(Number(values.receive), Number(w), Number(k), Number(bytes));
  } else await receiver(Number(values.receive), mode, Number(w), Number(k));
} else await drive(Number(values.mb), Number(values.rounds));
