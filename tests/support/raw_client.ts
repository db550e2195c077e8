/** A raw fsd/1 client written from docs/PROTOCOL.md (not from lib/, so tests check the bytes on the wire), packets built by hand, deadlines for reads, and fake servers that misbehave. */

const encoder = new TextEncoder();
const decoder = new TextDecoder();

// ---- packets, built by hand from docs/PROTOCOL.md ----

function u16(n: number): number[] {
  return [(n >> 8) & 0xff, n & 0xff];
}

function bytesOf(text: string | Uint8Array): Uint8Array {
  return typeof text === "string" ? encoder.encode(text) : text;
}

function concat(...parts: (number[] | Uint8Array)[]): Uint8Array {
  const total = parts.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

function optionPacket(opcode: number, pairs: Record<string, string>): Uint8Array {
  const entries = Object.entries(pairs);
  const strings = entries.flatMap(([name, value]) => [bytesOf(name), [0], bytesOf(value), [0]]);
  return concat(u16(opcode), u16(entries.length), ...strings);
}

export const wire = {
  rrq: (name: string | Uint8Array) => concat(u16(1), bytesOf(name), [0]),
  wrq: (name: string | Uint8Array) => concat(u16(2), bytesOf(name), [0]),
  dat: (block: number, data: Uint8Array, size = data.length) =>
    concat(u16(3), u16(block), u16(size), data),
  ack: (block: number) => concat(u16(4), u16(block)),
  err: (code: number, message: string) => concat(u16(5), u16(code), encoder.encode(message), [0]),
  drq: () => concat(u16(6)),
  /** OPT: 7, the number of pairs, then each name and value zero-terminated. */
  opt: (pairs: Record<string, string>) => optionPacket(7, pairs),
  oack: (pairs: Record<string, string>) => optionPacket(8, pairs),
  concat,
};

export type RawPacket =
  | { op: "RRQ" | "WRQ"; name: string }
  | { op: "DAT"; block: number; data: Uint8Array }
  | { op: "ACK"; block: number }
  | { op: "ERR"; code: number; message: string }
  | { op: "DRQ" }
  | { op: "OPT" | "OACK"; options: Record<string, string> }
  | { op: "?"; opcode: number };

/** How long a raw read may wait before the test fails instead of hanging. */
const RAW_READ_DEADLINE_MS = 10_000;

/** A client that sends whatever bytes a test wants and parses what comes back. */
export class RawClient implements AsyncDisposable {
  readonly conn: Deno.TcpConn;
  #buffer: Uint8Array = new Uint8Array(0);
  #eof = false;

  private constructor(conn: Deno.TcpConn) {
    this.conn = conn;
  }

  static async connect(port: number): Promise<RawClient> {
    return new RawClient(await Deno.connect({ hostname: "127.0.0.1", port }));
  }

  /** A raw client on a connection made elsewhere (TLS, another source address). */
  static over(conn: Deno.Conn): RawClient {
    return new RawClient(conn as Deno.TcpConn);
  }

  /** Connects and answers the greeting; returns its text. */
  static async greeted(port: number): Promise<RawClient> {
    const client = await RawClient.connect(port);
    await client.answerGreeting();
    return client;
  }

  /** Reads the greeting (DAT 1) and answers ACK 1. */
  async answerGreeting(): Promise<void> {
    const greeting = await this.read();
    if (greeting?.op !== "DAT" || greeting.block !== 1) {
      throw new Error(`expected greeting DAT 1, got ${JSON.stringify(greeting)}`);
    }
    await this.send(wire.ack(1));
  }

  async send(...packets: Uint8Array[]): Promise<void> {
    const bytes = concat(...packets);
    let written = 0;
    while (written < bytes.length) written += await this.conn.write(bytes.subarray(written));
  }

  /** The next packet, or null once the server has closed the connection. */
  async read(): Promise<RawPacket | null> {
    for (;;) {
      const packet = this.#parse();
      if (packet) return packet;
      if (this.#eof) {
        if (this.#buffer.length > 0) {
          throw new Error(`connection closed mid-packet: ${this.#buffer}`);
        }
        return null;
      }
      const chunk = new Uint8Array(65536);
      const n = await withDeadline(this.conn.read(chunk).catch(() => null), "read");
      if (n === null) this.#eof = true;
      else this.#buffer = concat(this.#buffer, chunk.subarray(0, n));
    }
  }

  /** Reads one packet and checks it is ERR `code`. */
  async expectError(code: number): Promise<string> {
    const packet = await this.read();
    if (packet?.op !== "ERR" || packet.code !== code) {
      throw new Error(`expected ERR ${code}, got ${describe(packet)}`);
    }
    return packet.message;
  }

  /** Checks that the server closed the connection (and sent nothing more). */
  async expectClosed(): Promise<void> {
    const packet = await this.read();
    if (packet !== null) {
      throw new Error(`expected the connection to be closed, got ${describe(packet)}`);
    }
  }

  /** Downloads `name` in lock-step; returns the data and the block numbers seen. */
  async download(name: string): Promise<{ data: Uint8Array; blocks: number[] }> {
    await this.send(wire.rrq(name));
    return await this.receiveBlocks();
  }

  async receiveBlocks(): Promise<{ data: Uint8Array; blocks: number[] }> {
    const parts: Uint8Array[] = [];
    const blocks: number[] = [];
    for (;;) {
      const packet = await this.read();
      if (packet?.op !== "DAT") throw new Error(`expected DAT, got ${describe(packet)}`);
      parts.push(packet.data);
      blocks.push(packet.block);
      await this.send(wire.ack(packet.block));
      if (packet.data.length < 512) return { data: concat(...parts), blocks };
    }
  }

  /** Uploads `data` as `name` in lock-step. */
  async upload(name: string, data: Uint8Array): Promise<void> {
    await this.send(wire.wrq(name));
    await this.expectAck(0);
    let block = 1;
    for (let at = 0;; at += 512) {
      const chunk = data.subarray(at, at + 512);
      await this.send(wire.dat(block, chunk));
      await this.expectAck(block);
      if (chunk.length < 512) return;
      block = (block + 1) & 0xffff;
    }
  }

  /** Reads one packet and checks it is OACK; returns its pairs. */
  async expectOack(): Promise<Record<string, string>> {
    const packet = await this.read();
    if (packet?.op !== "OACK") throw new Error(`expected OACK, got ${describe(packet)}`);
    return packet.options;
  }

  /** Asks for a listing of the root and returns its text: the connection still serves. */
  async listRoot(): Promise<string> {
    await this.send(wire.drq());
    return decoder.decode((await this.receiveBlocks()).data);
  }

  async expectAck(block: number): Promise<void> {
    const packet = await this.read();
    if (packet?.op !== "ACK" || packet.block !== block) {
      throw new Error(`expected ACK ${block}, got ${describe(packet)}`);
    }
  }

  close(): void {
    try {
      this.conn.close();
    } catch {
      // already closed
    }
  }

  [Symbol.asyncDispose](): Promise<void> {
    this.close();
    return Promise.resolve();
  }

  #parse(): RawPacket | null {
    const b = this.#buffer;
    if (b.length < 2) return null;
    const op = (b[0] << 8) | b[1];
    const take = (n: number) => {
      this.#buffer = b.slice(n);
    };
    const stringEnd = (from: number) => b.indexOf(0, from);
    switch (op) {
      case 1:
      case 2: {
        const end = stringEnd(2);
        if (end < 0) return null;
        take(end + 1);
        return { op: op === 1 ? "RRQ" : "WRQ", name: decoder.decode(b.subarray(2, end)) };
      }
      case 3: {
        if (b.length < 6) return null;
        const size = (b[4] << 8) | b[5];
        if (b.length < 6 + size) return null;
        take(6 + size);
        return { op: "DAT", block: (b[2] << 8) | b[3], data: b.slice(6, 6 + size) };
      }
      case 4:
        if (b.length < 4) return null;
        take(4);
        return { op: "ACK", block: (b[2] << 8) | b[3] };
      case 5: {
        if (b.length < 4) return null;
        const end = stringEnd(4);
        if (end < 0) return null;
        take(end + 1);
        return { op: "ERR", code: (b[2] << 8) | b[3], message: decoder.decode(b.subarray(4, end)) };
      }
      case 6:
        take(2);
        return { op: "DRQ" };
      case 7:
      case 8: {
        if (b.length < 4) return null;
        const strings: string[] = [];
        let at = 4;
        while (strings.length < ((b[2] << 8) | b[3]) * 2) {
          const end = stringEnd(at);
          if (end < 0) return null;
          strings.push(decoder.decode(b.subarray(at, end)));
          at = end + 1;
        }
        take(at);
        const options: Record<string, string> = {};
        for (let i = 0; i < strings.length; i += 2) options[strings[i]] = strings[i + 1];
        return { op: op === 7 ? "OPT" : "OACK", options };
      }
      default:
        take(b.length);
        return { op: "?", opcode: op };
    }
  }
}

/**
 * An upload stopped after its first `blocks` blocks of 512 bytes, to be
 * finished later: the server holds its staging file meanwhile.
 */
export async function startUpload(
  port: number,
  name: string,
  data: Uint8Array,
  blocks: number,
): Promise<{ finish(): Promise<void> }> {
  const client = await RawClient.greeted(port);
  await client.send(wire.wrq(name));
  await client.expectAck(0);
  for (let block = 1; block <= blocks; block++) {
    await client.send(wire.dat(block, data.subarray((block - 1) * 512, block * 512)));
    await client.expectAck(block);
  }
  return {
    async finish(): Promise<void> {
      try {
        for (let block = blocks + 1;; block++) {
          const chunk = data.subarray((block - 1) * 512, block * 512);
          await client.send(wire.dat(block, chunk));
          await client.expectAck(block);
          if (chunk.length < 512) return;
        }
      } finally {
        client.close();
      }
    },
  };
}

export function describe(packet: RawPacket | null): string {
  if (packet === null) return "the connection closed";
  if (packet.op === "DAT") return `DAT ${packet.block} (${packet.data.length} bytes)`;
  return JSON.stringify(packet);
}

/** Rejects if `promise` takes longer than the raw-read deadline, so a broken rule fails instead of hanging. */
export async function withDeadline<T>(
  promise: Promise<T>,
  what: string,
  ms = RAW_READ_DEADLINE_MS,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A TCP server on 127.0.0.1 that accepts one connection and runs `script` on
 * it: for playing a misbehaving fsd server. The script's own failures (the
 * client hanging up) are expected and ignored.
 */
export function fakeServer(
  script: (conn: Deno.Conn) => Promise<void>,
): { port: number } & AsyncDisposable {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const done = (async () => {
    const conn = await listener.accept();
    try {
      await script(conn);
    } catch {
      // the client went away: what these scripts provoke
    } finally {
      try {
        conn.close();
      } catch {
        // closed by the script
      }
    }
  })();
  let disposed = false;
  return {
    port: listener.addr.port,
    async [Symbol.asyncDispose]() {
      if (disposed) return;
      disposed = true;
      await done;
      listener.close();
    },
  };
}

/** Exactly `n` bytes from `conn`, or null if it closes first. */
export async function readExactly(conn: Deno.Conn, n: number): Promise<Uint8Array | null> {
  const buffer = new Uint8Array(n);
  for (let got = 0; got < n;) {
    const count = await conn.read(buffer.subarray(got)).catch(() => null);
    if (count === null) return null;
    got += count;
  }
  return buffer;
}

/**
 * A fake fsd/1 server for `get 127.0.0.1 PORT big --fsd1`: it greets, sends
 * the first `blocks` full blocks of "big", each after the ACK of the one
 * before, then stalls until `release()`; `midway` resolves once those
 * blocks are acknowledged (the client is mid-transfer, its file staged).
 */
export function stallingDownload(blocks: number) {
  let reached!: () => void;
  const midway = new Promise<void>((resolve) => reached = resolve);
  let release!: () => void;
  const released = new Promise<void>((resolve) => release = resolve);
  const fake = fakeServer(async (conn) => {
    await conn.write(wire.dat(1, encoder.encode("Hello from fake's fileserver")));
    await readExactly(conn, 4 + 2 + "big".length + 1); // ACK 1, RRQ "big"
    for (let block = 1; block <= blocks; block++) {
      await conn.write(wire.dat(block, new Uint8Array(512).fill(block)));
      await readExactly(conn, 4);
    }
    reached();
    await released;
  });
  return {
    port: fake.port,
    midway,
    release,
    async [Symbol.asyncDispose]() {
      release();
      await fake[Symbol.asyncDispose]();
    },
  };
}
