/**
 * A fuzzer for fsd's TFTP server: seeded datagrams (random bytes, or
 * requests, DATA, ACK, ERROR and OACK with random damage) sent to the
 * request port and to the transfer ports the server answers from. Every
 * answer must be one whole, valid TFTP packet (DATA of at most 65464
 * bytes, ACK, OACK, or ERROR with a code from 0 to 8), and the server must
 * still serve a clean download afterwards. A stranger, a socket with no
 * transfer of its own, sends ERROR datagrams to the others' transfer ports
 * (issue 18, item 7): RFC 1350 says an ERROR is never answered, so it must
 * hear nothing back.
 *
 *   deno run --allow-net=127.0.0.1 --allow-read --allow-write tests/tftp/tftp_fuzz.ts [--datagrams N] [--seed S]
 *   (or: deno task fuzz --tftp)
 */

import dgram from "node:dgram";
import { parsePacket } from "../../lib/tftp/codec.ts";
import { ProtocolError } from "../../lib/store/errors.ts";
import { TftpServer } from "../../lib/tftp/server.ts";
import { rng } from "../fsd/fuzz.ts";

type Random = () => number;
const int = (r: Random, n: number) => Math.floor(r() * n);
const pick = <T>(r: Random, items: readonly T[]) => items[int(r, items.length)];
const encoder = new TextEncoder();

const NAMES = [
  "seed.bin",
  "../etc/passwd",
  "/etc/passwd",
  "..\\x",
  "",
  "x".repeat(300),
  "new",
  "\uFEFFbom",
  "a\u202Eb",
  "a\u200Bb",
  "a\u2028b",
];
const MODES = ["octet", "netascii", "OCTET", "mail", "", "binary"];
const OPTIONS = [
  "blksize",
  "tsize",
  "timeout",
  "windowsize",
  "ackevery",
  "utimeout",
  "BLKSIZE",
  "multicast",
];
const VALUES = [
  "0",
  "8",
  "7",
  "10",
  "11",
  "255",
  "512",
  "65464",
  "65465",
  "-1",
  "",
  "9".repeat(40),
  "abc",
];

function z(text: string): number[] {
  return [...encoder.encode(text), 0];
}

/** One datagram: plausible, then damaged (bits flipped, cut, grown) about half the time. */
export function makeDatagram(r: Random): Uint8Array {
  const kind = int(r, 7);
  let bytes: number[];
  if (kind === 0) {
    bytes = Array.from({ length: int(r, 80) }, () => int(r, 256));
  } else if (kind <= 2) {
    bytes = [0, kind, ...z(pick(r, NAMES)), ...z(pick(r, MODES))];
    for (let i = int(r, 5); i > 0; i--) bytes.push(...z(pick(r, OPTIONS)), ...z(pick(r, VALUES)));
  } else if (kind === 3) {
    bytes = [
      0,
      3,
      int(r, 256),
      int(r, 256),
      ...Array.from({ length: int(r, 600) }, () => int(r, 256)),
    ];
  } else if (kind === 4) {
    bytes = [0, 4, int(r, 3), int(r, 256)];
  } else if (kind === 5) {
    bytes = [0, 5, 0, int(r, 10), ...z("oops")];
  } else {
    bytes = [0, 6, ...z(pick(r, OPTIONS)), ...z(pick(r, VALUES))];
  }
  if (r() < 0.5) {
    const damage = int(r, 3);
    if (damage === 0 && bytes.length > 0) bytes[int(r, bytes.length)] ^= 1 << int(r, 8);
    if (damage === 1) bytes = bytes.slice(0, int(r, bytes.length + 1));
    if (damage === 2) bytes.push(...Array.from({ length: int(r, 40) }, () => int(r, 256)));
  }
  return new Uint8Array(bytes);
}

/** What is wrong with an answer from the server, or null. */
export function checkAnswer(bytes: Uint8Array): string | null {
  try {
    const packet = parsePacket(bytes);
    if (packet.op === 5 && packet.code > 8) return `ERROR with code ${packet.code}`;
    if (packet.op === 1 || packet.op === 2) return "the server sent a request";
    return null;
  } catch (error) {
    return error instanceof ProtocolError ? `invalid answer: ${error.message}` : String(error);
  }
}

export interface TftpFuzzReport {
  datagrams: number;
  answers: number;
  /** ERROR datagrams the stranger sent to transfer ports (none answered). */
  strangerErrors: number;
  failures: string[];
}

/** Sends `datagrams` datagrams from `sockets` sockets; waits `settleMs` for the last answers. */
export async function fuzzTftp(
  port: number,
  options: { seed: number; datagrams: number; sockets?: number; settleMs?: number },
): Promise<TftpFuzzReport> {
  const r = rng(options.seed);
  const report: TftpFuzzReport = { datagrams: 0, answers: 0, strangerErrors: 0, failures: [] };
  const sockets = await Promise.all(
    Array.from({ length: options.sockets ?? 16 }, async () => {
      const socket = dgram.createSocket("udp4");
      const tids = new Set<number>();
      socket.on("message", (bytes: Uint8Array, from: dgram.RemoteInfo) => {
        report.answers++;
        if (from.port !== port) tids.add(from.port);
        const problem = checkAnswer(new Uint8Array(bytes));
        if (problem) report.failures.push(`seed ${options.seed}: ${problem}`);
      });
      await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", () => resolve()));
      return { socket, tids };
    }),
  );
  // Its own random stream: the others' datagrams stay what the seed made them.
  const strangerRandom = rng(options.seed + 1);
  const stranger = dgram.createSocket("udp4");
  stranger.on("message", (_bytes: Uint8Array, from: dgram.RemoteInfo) => {
    report.failures.push(`seed ${options.seed}: port ${from.port} answered a stranger's ERROR`);
  });
  await new Promise<void>((resolve) => stranger.bind(0, "127.0.0.1", () => resolve()));
  for (let i = 0; i < options.datagrams; i++) {
    const ports = sockets.flatMap(({ tids }) => [...tids]);
    if (i % 8 === 7 && ports.length > 0) {
      const error = [0, 5, 0, int(strangerRandom, 9), ...z("stranger")];
      await new Promise<void>((resolve) =>
        stranger.send(
          new Uint8Array(error),
          pick(strangerRandom, ports),
          "127.0.0.1",
          () => resolve(),
        )
      );
      report.strangerErrors++;
    }
    const { socket, tids } = pick(r, sockets);
    const to = tids.size > 0 && r() < 0.5 ? pick(r, [...tids]) : port;
    await new Promise<void>((resolve) =>
      socket.send(makeDatagram(r), to, "127.0.0.1", () => resolve())
    );
    report.datagrams++;
    if (i % 64 === 0) await new Promise((resolve) => setTimeout(resolve, 1));
  }
  await new Promise((resolve) => setTimeout(resolve, options.settleMs ?? 300));
  await Promise.all(
    [...sockets.map(({ socket }) => socket), stranger].map((socket) =>
      new Promise<void>((resolve) => socket.close(() => resolve()))
    ),
  );
  return report;
}

if (import.meta.main) {
  const { parseArgs } = await import("node:util");
  const { values } = parseArgs({
    options: { datagrams: { type: "string" }, seed: { type: "string" } },
  });
  const seed = values.seed ? Number(values.seed) : Math.floor(Math.random() * 2 ** 31);
  const dir = await Deno.makeTempDir({ prefix: "fsd-tftp-fuzz-" });
  await Deno.writeFile(`${dir}/seed.bin`, new Uint8Array(3000).fill(7));
  const server = await TftpServer.start({
    root: dir,
    port: 0,
    hostname: "127.0.0.1",
    timeoutMs: 200,
    retries: 2,
    maxPerIp: 0,
    maxClients: 0,
  });
  const datagrams = Number(values.datagrams ?? 100_000);
  console.log(
    `fuzzing TFTP on 127.0.0.1 port ${server.addr.port}: ${datagrams} datagrams, seed ${seed}`,
  );
  const report = await fuzzTftp(server.addr.port, { seed, datagrams, settleMs: 2000 });
  console.log(
    `${report.datagrams} sent, ${report.answers} answers, ${report.strangerErrors} stranger ERRORs, ${report.failures.length} failures`,
  );
  for (const failure of report.failures.slice(0, 20)) console.log(failure);
  await server.close();
  await Deno.remove(dir, { recursive: true });
  if (report.failures.length > 0) Deno.exit(1);
}
