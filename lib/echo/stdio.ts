/**
 * The echo client with no MESSAGE: stdin to the server, what comes back to
 * stdout, as nc does. TCP byte for byte; UDP one datagram per line.
 */

import { closeQuietly, sameBytes, writeAll } from "../bytes/source_sink.ts";
import type { EchoTap, UdpChannel } from "./client.ts";

const utf8 = new TextDecoder();

export interface Reader {
  read(p: Uint8Array): Promise<number | null>;
  /** Called when the server has closed: stop waiting for input (a terminal). */
  cancel?(): void;
}
export interface Writer {
  write(p: Uint8Array): Promise<number>;
}

/** TCP byte for byte: `input` to the server (then our half-close), the server's bytes to `output` until it closes. */
export async function pipeTcp(
  hostname: string,
  port: number,
  input: Reader,
  output: Writer,
  tap?: EchoTap,
): Promise<void> {
  const conn = await Deno.connect({ hostname, port });
  conn.setNoDelay(true);
  const ends = { local: (conn.localAddr as Deno.NetAddr).port, remote: port };
  try {
    const down = copy(conn, output, (b) => tap?.received(b, ends)).finally(() => input.cancel?.());
    await copy(input, conn, (b) => tap?.sent(b, ends));
    await conn.closeWrite().catch(() => {});
    await down;
  } finally {
    closeQuietly(conn);
    tap?.closed();
  }
}

async function copy(from: Reader, to: Writer, seen: (bytes: Uint8Array) => void): Promise<void> {
  const buffer = new Uint8Array(64 * 1024);
  for (;;) {
    const n = await from.read(buffer).catch(() => null);
    if (n === null) return;
    seen(buffer.subarray(0, n));
    await writeAll(to, buffer.subarray(0, n));
  }
}

/** Largest UDP payload over IPv4. */
const MAX_DATAGRAM = 65507;

/**
 * UDP from a terminal or a pipe: each line of `input` (with its newline) is
 * one datagram, and each datagram that comes is written to `output` as it
 * came, plus a newline when it has none and is not our own bytes echoed
 * back (text answers and chat messages). In a chat room the session says
 * "/leave" when it ends: a chat server answers our first datagram with a
 * welcome, so "/leave" goes unless the first answer was something else
 * (also when it has not been read yet, as when Ctrl-C comes right away).
 */
export class UdpSession {
  #channel: UdpChannel;
  /** What the first datagram from the server said: undefined until one came. */
  #chat: boolean | undefined;
  #sent = false;
  #left = false;

  constructor(channel: UdpChannel) {
    this.#channel = channel;
  }

  /** Runs until `input` has ended and nothing came for `quietMs`. */
  async run(input: Reader, output: Writer, quietMs: number): Promise<void> {
    let inputDone = false;
    // Our datagrams without a newline, the last few: their echo must not gain one.
    const unterminated: Uint8Array[] = [];
    const printing = (async () => {
      for (;;) {
        const datagram = await this.#channel.receiveBytes(quietMs);
        if (datagram === null) {
          if (inputDone) return;
          continue;
        }
        const text = utf8.decode(datagram.subarray(0, 64));
        this.#chat ??= text.startsWith("* welcome, you are ");
        await writeAll(output, datagram);
        const echoed = unterminated.findIndex((sent) => sameBytes(datagram, sent));
        if (echoed >= 0) unterminated.splice(echoed, 1);
        else if (datagram.at(-1) !== 0x0a) await writeAll(output, new Uint8Array([0x0a]));
      }
    })();
    for await (const piece of datagrams(input)) {
      if (piece.at(-1) !== 0x0a) unterminated.push(piece);
      if (unterminated.length > 8) unterminated.shift();
      this.#sent = true; // before the send completes: Ctrl-C may come while it does
      await this.#channel.sendBytes(piece);
    }
    inputDone = true;
    await printing;
    await this.leave();
  }

  /** Tells a chat room we are gone (once; nothing for servers known to be no chat room). */
  async leave(): Promise<void> {
    if (this.#chat === false || !this.#sent || this.#left) return;
    this.#left = true;
    await this.#channel.send("/leave").catch(() => {});
  }
}

/** `input` cut after each newline, and into pieces no larger than a datagram. */
async function* datagrams(input: Reader): AsyncGenerator<Uint8Array> {
  const buffer = new Uint8Array(MAX_DATAGRAM);
  let used = 0;
  for (;;) {
    const n = await input.read(buffer.subarray(used)).catch(() => null);
    if (n === null) break;
    used += n;
    let start = 0;
    for (let newline = buffer.indexOf(0x0a, start); newline >= 0 && newline < used;) {
      yield buffer.slice(start, newline + 1);
      start = newline + 1;
      newline = buffer.subarray(0, used).indexOf(0x0a, start);
    }
    buffer.copyWithin(0, start, used);
    used -= start;
    if (used === buffer.length) {
      yield buffer.slice();
      used = 0;
    }
  }
  if (used > 0) yield buffer.slice(0, used);
}
