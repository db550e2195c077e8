/**
 * A protocol fuzzer for `fsd serve`: seeded, so any run can be repeated.
 *
 * Each stream is random bytes, or a plausible session (greeting answered,
 * requests, data, acks) with random damage: flipped bits, cut or repeated
 * slices, wrong sizes and block numbers. It is sent in random slices, the
 * write side is closed, and everything the server answers is checked: only
 * whole, valid packets (DAT of at most 65464 bytes, ACK, OACK, ERR with a
 * known code) followed by a close.
 *
 *   deno run --allow-net=127.0.0.1 --allow-read --allow-write tests/fsd/fuzz.ts [--streams N] [--seed S] [--port P]
 *
 * Without --port it starts a server over a temporary directory itself.
 * The TFTP server has its own datagram fuzzer, tests/tftp/tftp_fuzz.ts (same rng).
 */

import { FileServer } from "../../lib/fsd/server.ts";

/** mulberry32: small, fast, and the same sequence for the same seed everywhere. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Random = () => number;
const int = (r: Random, n: number) => Math.floor(r() * n);
const pick = <T>(r: Random, items: readonly T[]) => items[int(r, items.length)];

const encoder = new TextEncoder();
const NAMES = [
  "",
  "seed.txt",
  "sub/inner.bin",
  "sub",
  "missing",
  "../etc/passwd",
  "/etc/passwd",
  "a//b",
  "..",
  ".fsd-upload-x",
  "x".repeat(300),
  "new-%d",
  "sub/new-%d",
  "\u0001",
  "ünï/cødé",
  "\uFEFFbom",
  "a\u202Eb",
  "a\u200Bb\u2028",
];

/** Logins the fuzzer tries; FUZZ_ACCOUNT is the one that works on a server seeded for it. */
export const FUZZ_ACCOUNT = { user: "fuzz", password: "fuzzpass" };
const LOGINS: string[][][] = [
  [["user", FUZZ_ACCOUNT.user], ["password", FUZZ_ACCOUNT.password]],
  [["user", FUZZ_ACCOUNT.user], ["password", "wrong"]],
  [["user", "nobody"], ["password", FUZZ_ACCOUNT.password]],
  [["user", "x".repeat(900)], ["password", "y".repeat(900)]],
  [["user", FUZZ_ACCOUNT.user]],
  [["password", "p"]],
  [["user", FUZZ_ACCOUNT.user], ["password", FUZZ_ACCOUNT.password], ["blksize", "512"]],
  [["user", "\u00ff\u0001"], ["password", ""]],
];

function u16(n: number): number[] {
  return [(n >> 8) & 0xff, n & 0xff];
}

function randomBytes(r: Random, n: number): number[] {
  return Array.from({ length: n }, () => int(r, 256));
}

/** One packet, mostly well-formed, sometimes not. */
function packet(r: Random, stream: number): number[] {
  const name = () => encoder.encode(pick(r, NAMES).replace("%d", String(stream)));
  switch (int(r, 14)) {
    case 0:
      return [...u16(1), ...name(), 0];
    case 1:
      return [...u16(2), ...name(), 0];
    case 2:
    case 3: {
      const size = pick(r, [0, 1, 100, 511, 512, 512, 513, 1000, 65535]);
      const real = r() < 0.8 ? Math.min(size, 600) : int(r, 600);
      return [
        ...u16(3),
        ...u16(pick(r, [0, 1, 1, 2, 3, 65535, int(r, 65536)])),
        ...u16(size),
        ...randomBytes(r, real),
      ];
    }
    case 4:
    case 5:
      return [...u16(4), ...u16(pick(r, [0, 1, 1, 2, 3, 4, 65535, int(r, 65536)]))];
    case 6:
      return [...u16(5), ...u16(int(r, 10)), ...encoder.encode("err"), ...(r() < 0.8 ? [0] : [])];
    case 7:
      return u16(6);
    case 8:
      return [...u16(int(r, 65536)), ...randomBytes(r, int(r, 8))];
    case 9:
      // SUM (integrity): opcode 9 and a digest, or less
      return r() < 0.5 ? randomBytes(r, int(r, 4)) : [...u16(9), ...randomBytes(r, int(r, 40))];
    case 10: {
      // OPT, usually followed by a request in the same packet list
      const pairs = [["blksize", pick(r, ["8", "512", "1000", "65464", "7", "70000", "x"])], [
        "windowsize",
        pick(r, ["1", "4", "64", "1000", "0"]),
      ], ["tsize", pick(r, ["0", "100", "99999999999"])]].slice(0, 1 + int(r, 3));
      // The extension's other options (integrity, kind, resume, mkdir, digests, eager, pipeline),
      // valid or not.
      if (r() < 0.5) {
        pairs.push([
          pick(r, [
            "sha256",
            "crc32",
            "kind",
            "mtime",
            "offset",
            "mkdir",
            "digests",
            "eager",
            "pipeline",
          ]),
          pick(r, ["0", "1", "2", "3", "100", "99999999999999999", "-1", "x"]),
        ]);
      }
      const body = pairs.flatMap(([k, v]) => [...encoder.encode(k), 0, ...encoder.encode(v), 0]);
      return [...u16(7), ...u16(pairs.length), ...body];
    }
    case 11: {
      // A login (servers with accounts): right, wrong, overlong, or with extra pairs
      const pairs = pick(r, LOGINS);
      const body = pairs.flatMap(([k, v]) => [...encoder.encode(k), 0, ...encoder.encode(v), 0]);
      return [...u16(7), ...u16(pairs.length), ...body];
    }
    default:
      return [...u16(4), ...u16(int(r, 3))];
  }
}

const V2_SIGNATURE = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];
const V1_LINES = [
  "PROXY TCP4 203.0.113.7 127.0.0.1 40000 10000\r\n",
  "PROXY TCP6 2001:db8::7 ::1 40000 10000\r\n",
  "PROXY UNKNOWN\r\n",
  "PROXY TCP4 999.0.0.1 127.0.0.1 1 2\r\n",
  "PROXY TCP4 1.2.3.4 5.6.7.8 65536 1\r\n",
  `PROXY ${"X".repeat(120)}\r\n`,
  "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",
];

/** A PROXY protocol header (v1 or v2), valid or not, for servers run with --proxy-protocol. */
export function makeProxyHeader(r: Random): number[] {
  if (r() < 0.4) return [...encoder.encode(pick(r, V1_LINES))];
  const family = pick(r, [0x11, 0x21, 0x00, 0x31, 0x12, 0x41, int(r, 256)]);
  const length = pick(r, [12, 36, 0, 216, 11, 2049, 65535, int(r, 300)]);
  const body = randomBytes(r, Math.min(length, 300));
  const command = pick(r, [0x21, 0x20, 0x22, 0x11, int(r, 256)]);
  return [...V2_SIGNATURE, command, family, ...u16(length), ...body];
}

/** Stream `index` of the run seeded with `seed` (after a PROXY header, with `proxyHeader`). */
export function makeStream(seed: number, index: number, proxyHeader = false): Uint8Array {
  const r = rng((seed ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0);
  const header = proxyHeader ? makeProxyHeader(r) : [];
  if (r() < 0.1) return new Uint8Array([...header, ...randomBytes(r, int(r, 200))]);
  const bytes: number[] = [...header, ...(r() < 0.85 ? [...u16(4), ...u16(1)] : [])];
  const count = 1 + int(r, 8);
  for (let i = 0; i < count; i++) bytes.push(...packet(r, index));
  // damage
  const damage = int(r, 5);
  for (let i = 0; i < damage && bytes.length > 0; i++) {
    const at = int(r, bytes.length);
    switch (int(r, 4)) {
      case 0:
        bytes[at] ^= 1 << int(r, 8);
        break;
      case 1:
        bytes.splice(at, 1 + int(r, 8));
        break;
      case 2:
        bytes.splice(at, 0, ...bytes.slice(at, at + 1 + int(r, 16)));
        break;
      default:
        bytes.splice(at, 0, ...randomBytes(r, 1 + int(r, 4)));
    }
  }
  return new Uint8Array(bytes);
}

/**
 * Checks that `bytes` is a sequence of whole, valid server packets; returns
 * a problem or null. Counts what it saw into `tally` ("DAT", "ACK", "ERR 4").
 */
export function checkAnswer(bytes: Uint8Array, tally: Record<string, number> = {}): string | null {
  const count = (what: string) => tally[what] = (tally[what] ?? 0) + 1;
  // SUM's digest is as long as the OACK granted: CRC-32's 4 bytes or SHA-256's 32.
  let sumSize = 0;
  let at = 0;
  while (at < bytes.length) {
    if (bytes.length - at < 4) return `trailing ${bytes.length - at} bytes`;
    const op = (bytes[at] << 8) | bytes[at + 1];
    if (op === 3) {
      if (bytes.length - at < 6) return "cut DAT header";
      const size = (bytes[at + 4] << 8) | bytes[at + 5];
      if (size > 65464) return `DAT of ${size} bytes`;
      if (bytes.length - at < 6 + size) return "cut DAT";
      count("DAT");
      at += 6 + size;
    } else if (op === 4) {
      count("ACK");
      at += 4;
    } else if (op === 8) {
      // OACK: a count, then that many zero-terminated name/value pairs
      const pairs = (bytes[at + 2] << 8) | bytes[at + 3];
      if (pairs < 1 || pairs > 16) return `OACK with ${pairs} options`;
      let next = at + 4;
      const texts: string[] = [];
      for (let i = 0; i < pairs * 2; i++) {
        const zero = bytes.indexOf(0, next);
        if (zero < 0) return "cut OACK";
        texts.push(String.fromCharCode(...bytes.subarray(next, zero)));
        next = zero + 1;
      }
      sumSize = 0;
      for (let i = 0; i < texts.length; i += 2) {
        if (texts[i + 1] !== "1") continue;
        if (texts[i] === "crc32") sumSize = 4;
        if (texts[i] === "sha256") sumSize = 32;
      }
      count("OACK");
      at = next;
    } else if (op === 9) {
      if (sumSize === 0) return "SUM that no OACK granted";
      if (bytes.length - at < 2 + sumSize) return "cut SUM";
      count("SUM");
      at += 2 + sumSize;
    } else if (op === 5) {
      const code = (bytes[at + 2] << 8) | bytes[at + 3];
      if (code > 8) return `ERR code ${code}`; // 8: the options extension's "option refused"
      const zero = bytes.indexOf(0, at + 4);
      if (zero < 0) return "ERR without its zero byte";
      count(`ERR ${code}`);
      at = zero + 1;
    } else {
      return `server sent opcode ${op}`;
    }
  }
  return null;
}

export interface FuzzReport {
  seed: number;
  streams: number;
  bytesSent: number;
  bytesReceived: number;
  /** Server packets seen, by kind: "DAT", "ACK", "ERR 2", ... */
  answers: Record<string, number>;
  failures: string[];
  ms: number;
}

/** Sends `streams` streams to 127.0.0.1:`port`, `concurrency` at a time. */
export async function fuzz(
  port: number,
  options: {
    seed: number;
    streams: number;
    concurrency?: number;
    first?: number;
    /** Start each stream with a PROXY header, valid or damaged (a --proxy-protocol server). */
    proxyHeader?: boolean;
  },
): Promise<FuzzReport> {
  const started = performance.now();
  const report: FuzzReport = {
    seed: options.seed,
    streams: 0,
    bytesSent: 0,
    bytesReceived: 0,
    answers: {},
    failures: [],
    ms: 0,
  };
  let next = options.first ?? 0;
  const end = next + options.streams;
  const worker = async () => {
    while (next < end) {
      const index = next++;
      const problem = await runStream(port, options.seed, index, report, options.proxyHeader);
      report.streams++;
      if (problem) report.failures.push(`seed ${options.seed} stream ${index}: ${problem}`);
    }
  };
  await Promise.all(Array.from({ length: options.concurrency ?? 32 }, worker));
  report.ms = performance.now() - started;
  return report;
}

async function runStream(
  port: number,
  seed: number,
  index: number,
  report: FuzzReport,
  proxyHeader = false,
): Promise<string | null> {
  const stream = makeStream(seed, index, proxyHeader);
  const r = rng(seed + index);
  let conn: Deno.TcpConn;
  try {
    conn = await Deno.connect({ hostname: "127.0.0.1", port });
  } catch (error) {
    return `cannot connect: ${(error as Error).message}`;
  }
  const received: Uint8Array[] = [];
  const reading = (async () => {
    const buffer = new Uint8Array(65536);
    for (;;) {
      const n = await conn.read(buffer).catch(() => null);
      if (n === null) return;
      received.push(buffer.slice(0, n));
    }
  })();
  try {
    for (let at = 0; at < stream.length;) {
      const size = 1 + int(r, 64);
      await conn.write(stream.subarray(at, at + size));
      at += size;
    }
    report.bytesSent += stream.length;
    await conn.closeWrite();
  } catch {
    // the server closed first (a violation ends the connection): fine
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  const answered = await Promise.race([
    reading.then(() => true),
    new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), 10_000)),
  ]);
  clearTimeout(timer);
  try {
    conn.close();
  } catch {
    // closed
  }
  await reading;
  const total = received.reduce((n, b) => n + b.length, 0);
  report.bytesReceived += total;
  if (!answered) return "no close within 10 s after the stream ended";
  const all = new Uint8Array(total);
  let offset = 0;
  for (const part of received) {
    all.set(part, offset);
    offset += part.length;
  }
  const problem = checkAnswer(all, report.answers);
  return problem
    ? `${problem} (stream ${JSON.stringify(Array.from(stream.subarray(0, 64)))})`
    : null;
}

/** The files the fuzzer finds on a fresh server. */
export async function seedDirectory(root: string): Promise<void> {
  await Deno.writeTextFile(`${root}/seed.txt`, "seed ".repeat(300));
  await Deno.mkdir(`${root}/sub`, { recursive: true });
  await Deno.writeFile(`${root}/sub/inner.bin`, new Uint8Array(2000).fill(42));
}

if (import.meta.main) {
  const { parseArgs } = await import("node:util");
  const { values } = parseArgs({
    options: { streams: { type: "string" }, seed: { type: "string" }, port: { type: "string" } },
  });
  const seed = values.seed ? Number(values.seed) : Math.floor(Math.random() * 2 ** 31);
  const streams = Number(values.streams ?? 200_000);
  let server: FileServer | undefined;
  let dir: string | undefined;
  let port = Number(values.port ?? 0);
  if (!values.port) {
    dir = await Deno.makeTempDir({ prefix: "fsd-fuzz-" });
    await seedDirectory(dir);
    server = await FileServer.start({
      root: dir,
      port: 0,
      hostname: "127.0.0.1",
      maxPerIp: 0,
      maxClients: 0,
    });
    port = server.addr.port;
  }
  console.log(`fuzzing 127.0.0.1 port ${port}: ${streams} streams, seed ${seed}`);
  const report = await fuzz(port, { seed, streams, concurrency: 64 });
  console.log(
    `${report.streams} streams, ${report.bytesSent} bytes sent, ${report.bytesReceived} received, ` +
      `${report.failures.length} failures, ${(report.ms / 1000).toFixed(1)} s ` +
      `(${Math.round(report.streams / (report.ms / 1000))} streams/s)`,
  );
  console.log(`server answers: ${JSON.stringify(report.answers)}`);
  for (const failure of report.failures.slice(0, 20)) console.log(failure);
  await server?.close();
  if (dir) await Deno.remove(dir, { recursive: true });
  if (report.failures.length > 0) Deno.exit(1);
}
