/**
 * TFTP test helpers: an in-process TFTP server over a temporary directory,
 * and a raw UDP peer whose packets are built by hand from RFC 1350 and 2347
 * (not from lib/tftp/codec.ts), so tests check the bytes on the wire.
 */

import dgram from "node:dgram";
import { TftpServer, type TftpServerConfig } from "../../lib/tftp/server.ts";
import { withDeadline } from "./raw_client.ts";
import { type LoggedServer, startLogged } from "./server.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export type TestTftp = LoggedServer<TftpServer>;

/** A TFTP server on 127.0.0.1 port 0 with a short retransmission timeout; its log waits have a deadline. */
export async function startTftp(config: Partial<TftpServerConfig> = {}): Promise<TestTftp> {
  const started = await startLogged(config.root, (root, log) =>
    TftpServer.start({
      root,
      port: 0,
      hostname: "127.0.0.1",
      timeoutMs: 200,
      retries: 3,
      ...config,
      log,
    }));
  const { waitForLog } = started;
  started.waitForLog = (pattern) => withDeadline(waitForLog(pattern), `log ${pattern}`);
  return started;
}

// ---- packets by hand ----

function u16(n: number): number[] {
  return [(n >> 8) & 0xff, n & 0xff];
}

function join(...parts: (number[] | Uint8Array)[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

function z(text: string | Uint8Array): Uint8Array {
  return join(typeof text === "string" ? encoder.encode(text) : text, [0]);
}

export const tftp = {
  rrq: (name: string | Uint8Array, mode = "octet", ...options: string[]) =>
    join(u16(1), z(name), z(mode), ...options.map(z)),
  wrq: (name: string | Uint8Array, mode = "octet", ...options: string[]) =>
    join(u16(2), z(name), z(mode), ...options.map(z)),
  data: (block: number, data: Uint8Array) => join(u16(3), u16(block), data),
  ack: (block: number) => new Uint8Array(u16(4).concat(u16(block))),
  error: (code: number, message: string) => join(u16(5), u16(code), z(message)),
  join,
};

export type Parsed =
  | { op: "DATA"; block: number; data: Uint8Array }
  | { op: "ACK"; block: number }
  | { op: "ERROR"; code: number; message: string }
  | { op: "OACK"; options: Record<string, string> }
  | { op: "?"; bytes: Uint8Array };

export function parse(b: Uint8Array): Parsed {
  const op = (b[0] << 8) | b[1];
  if (op === 3) return { op: "DATA", block: (b[2] << 8) | b[3], data: b.slice(4) };
  if (op === 4) return { op: "ACK", block: (b[2] << 8) | b[3] };
  if (op === 5) {
    const end = b.indexOf(0, 4);
    return { op: "ERROR", code: (b[2] << 8) | b[3], message: decoder.decode(b.subarray(4, end)) };
  }
  if (op === 6) {
    const parts = decoder.decode(b.subarray(2)).split("\0").slice(0, -1);
    const options: Record<string, string> = {};
    for (let i = 0; i + 1 < parts.length; i += 2) options[parts[i]] = parts[i + 1];
    return { op: "OACK", options };
  }
  return { op: "?", bytes: b };
}

export interface Received {
  packet: Parsed;
  port: number;
}

/** A UDP socket on 127.0.0.1 that sends what a test wants and queues what comes back. */
export class RawPeer implements AsyncDisposable {
  readonly #socket: dgram.Socket;
  readonly #queue: Received[] = [];
  #waiter: (() => void) | undefined;

  private constructor(socket: dgram.Socket) {
    this.#socket = socket;
    socket.on("message", (bytes: Uint8Array, info: dgram.RemoteInfo) => {
      this.#queue.push({ packet: parse(new Uint8Array(bytes)), port: info.port });
      this.#waiter?.();
    });
  }

  /** A peer on `address` (another loopback address is another client). */
  static async open(address = "127.0.0.1"): Promise<RawPeer> {
    const socket = dgram.createSocket("udp4");
    await new Promise<void>((resolve) => socket.bind(0, address, () => resolve()));
    return new RawPeer(socket);
  }

  get port(): number {
    return this.#socket.address().port;
  }

  send(bytes: Uint8Array, port: number): Promise<void> {
    return new Promise((resolve) => this.#socket.send(bytes, port, "127.0.0.1", () => resolve()));
  }

  /** The next datagram; fails the test after `ms` (default 5 s). */
  async receive(ms = 5000): Promise<Received> {
    const got = await this.receiveOrNull(ms);
    if (!got) throw new Error(`nothing received in ${ms} ms`);
    return got;
  }

  /** The next datagram, or null after `ms`. */
  async receiveOrNull(ms: number): Promise<Received | null> {
    if (this.#queue.length === 0) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#waiter = resolve;
        timer = setTimeout(resolve, ms);
      });
      clearTimeout(timer);
      this.#waiter = undefined;
    }
    return this.#queue.shift() ?? null;
  }

  /** Receives and checks for ERROR `code`; returns its message. */
  async expectError(code: number): Promise<string> {
    const { packet } = await this.receive();
    if (packet.op !== "ERROR" || packet.code !== code) {
      throw new Error(`expected ERROR ${code}, got ${JSON.stringify(packet)}`);
    }
    return packet.message;
  }

  close(): void {
    this.#socket.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return new Promise((resolve) => this.#socket.close(() => resolve()));
  }
}

/** Downloads `name` in lock-step with a raw peer (options as given); returns data and the server's TID. */
export async function rawDownload(
  port: number,
  name: string,
  ...options: string[]
): Promise<{ data: Uint8Array; blocks: number[]; oack?: Record<string, string> }> {
  await using peer = await RawPeer.open();
  await peer.send(tftp.rrq(name, "octet", ...options), port);
  const parts: Uint8Array[] = [];
  const blocks: number[] = [];
  let blockSize = 512;
  let oack: Record<string, string> | undefined;
  for (;;) {
    const { packet, port: tid } = await peer.receive();
    if (packet.op === "OACK") {
      oack = packet.options;
      if (oack.blksize) blockSize = Number(oack.blksize);
      await peer.send(tftp.ack(0), tid);
      continue;
    }
    if (packet.op !== "DATA") throw new Error(`expected DATA, got ${JSON.stringify(packet)}`);
    if (blocks.length === 0 || blocks.at(-1) !== packet.block) {
      parts.push(packet.data);
      blocks.push(packet.block);
    }
    await peer.send(tftp.ack(packet.block), tid);
    if (packet.data.length < blockSize) return { data: join(...parts), blocks, oack };
  }
}

/** A sysctl's value, such as net.core.rmem_max (Deno reads /proc/sys only with --allow-all: `cat` does). */
export async function sysctl(name: string): Promise<number> {
  const path = `/proc/sys/${name.replaceAll(".", "/")}`;
  const out = await new Deno.Command("cat", { args: [path], stdout: "piped" }).output();
  return Number(new TextDecoder().decode(out.stdout));
}
