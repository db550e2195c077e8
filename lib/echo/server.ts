/**
 * Echo servers for socket labs, over TCP (one reply per line) and UDP (one
 * reply per datagram): echo, upper case, ceiling of a number, and a chat
 * room that broadcasts each message to everyone else.
 */

import { readMessages } from "./messages.ts";
import { closeQuietly, writeAll } from "../bytes/source_sink.ts";
import { AcceptLoop } from "../net/accept_loop.ts";
import { listenTcp } from "../net/listen.ts";
import { answer, type EchoMode } from "./answer.ts";
import { startUdpEcho } from "./udp_server.ts";

export { answer, type EchoMode };
import { type LoginLabConfig, serveLogin } from "./login.ts";

export interface EchoServerOptions {
  port: number;
  /** Address to listen on (default 0.0.0.0). */
  hostname?: string;
  udp?: boolean;
  mode: EchoMode;
  /** Chat room: most bytes queued for one slow reader before messages to it are dropped (default 64 KiB). */
  queueBytes?: number;
  /** TCP text modes: a partial line counts as a message after this long without more bytes (default 200 ms). */
  quietMs?: number;
  /** UDP chat room: a peer silent this long leaves the room (default 60 s). */
  udpIdleMs?: number;
  /** UDP chat room: most members at once (default 32). */
  udpMaxMembers?: number;
  log?: (line: string) => void;
  /** TCP: run the login lab (lib/echo/login.ts) on each connection instead of `mode`. */
  login?: LoginLabConfig;
}

export interface EchoServer {
  readonly port: number;
  readonly hostname: string;
  close(): Promise<void>;
}

export async function startEchoServer(options: EchoServerOptions): Promise<EchoServer> {
  if (!options.udp) return startTcp(options);
  return await startUdpEcho({
    port: options.port,
    hostname: options.hostname,
    mode: options.mode,
    idleMs: options.udpIdleMs,
    maxMembers: options.udpMaxMembers,
    log: options.log,
  });
}

// ---- TCP ----

function startTcp(options: EchoServerOptions): EchoServer {
  const log = options.log ?? (() => {});
  const listener = listenTcp({ hostname: options.hostname, port: options.port });
  const conns = new Set<Deno.Conn>();
  const room = options.mode === "broadcast"
    ? new ChatRoom(options.queueBytes ?? 64 * 1024, options.quietMs)
    : undefined;
  const accepting = new AcceptLoop(listener, {
    handle(conn, id) {
      const peer = conn.remoteAddr as Deno.NetAddr;
      log(`[${id}] connection from ${peer.hostname} port ${peer.port}`);
      conns.add(conn);
      return (options.login
        ? serveLogin(conn, peer.hostname, options.login, log)
        : serveOne(conn, id, options, room))
        .catch(() => {})
        .finally(() => {
          conns.delete(conn);
          closeQuietly(conn);
          log(`[${id}] closed`);
        });
    },
  });
  return {
    port: listener.addr.port,
    hostname: listener.addr.hostname,
    async close() {
      accepting.stop();
      for (const conn of conns) closeQuietly(conn);
      await accepting.settled();
    },
  };
}

function serveOne(
  conn: Deno.Conn,
  id: number,
  { mode, quietMs }: EchoServerOptions,
  room?: ChatRoom,
): Promise<void> {
  if (mode === "broadcast") return room!.serve(id, conn);
  return mode === "echo" ? echoBytes(conn) : serveLines(conn, mode, quietMs);
}

/** Plain echo: exactly the bytes that came, as they came (no lines, no text decoding). */
async function echoBytes(conn: Deno.Conn): Promise<void> {
  const buffer = new Uint8Array(64 * 1024);
  for (;;) {
    const n = await conn.read(buffer);
    if (n === null) return;
    await writeAll(conn, buffer.subarray(0, n));
  }
}

/** The text modes: one answer line per message (a line, or what came before a pause). */
async function serveLines(
  conn: Deno.Conn,
  mode: "upper" | "ceil",
  quietMs?: number,
): Promise<void> {
  const encoder = new TextEncoder();
  for await (const line of readMessages(conn, quietMs)) {
    await writeAll(conn, encoder.encode(answer(mode, line) + "\n"));
  }
}

/** Members of a TCP chat room, each with its own bounded queue and writer. */
class ChatRoom {
  #members = new Map<number, Member>();
  constructor(readonly queueBytes: number, readonly quietMs?: number) {}

  async serve(id: number, conn: Deno.Conn): Promise<void> {
    const member = new Member(conn, this.queueBytes);
    this.#say(`* ${id} joined`);
    member.send(`* welcome, you are ${id}; ${this.#members.size} other(s) here`);
    this.#members.set(id, member);
    try {
      for await (const line of readMessages(conn, this.quietMs)) this.#say(`${id}: ${line}`, id);
    } finally {
      this.#members.delete(id);
      member.stop();
      this.#say(`* ${id} left`);
    }
  }

  #say(text: string, from?: number): void {
    for (const [id, member] of this.#members) if (id !== from) member.send(text);
  }
}

class Member {
  #conn: Deno.Conn;
  #limit: number;
  /** Lines encoded as they are queued, so the bound counts bytes. */
  #queue: Uint8Array[] = [];
  #queued = 0;
  #dropped = 0;
  #wake: (() => void) | undefined;
  #stopped = false;
  #encoder = new TextEncoder();

  constructor(conn: Deno.Conn, limit: number) {
    this.#conn = conn;
    this.#limit = limit;
    this.#write();
  }

  /** Queues a line; when the queue is full, the line is dropped and counted. */
  send(text: string): void {
    const line = this.#encoder.encode(text + "\n");
    if (this.#queued + line.length > this.#limit) {
      this.#dropped++;
    } else {
      this.#queue.push(line);
      this.#queued += line.length;
    }
    this.#wake?.();
  }

  stop(): void {
    this.#stopped = true;
    this.#wake?.();
  }

  async #write(): Promise<void> {
    try {
      while (!this.#stopped) {
        if (this.#queue.length === 0 && this.#dropped === 0) {
          await new Promise<void>((resolve) => this.#wake = resolve);
          continue;
        }
        const lines = this.#queue.splice(0);
        this.#queued = 0;
        if (this.#dropped > 0) {
          lines.unshift(
            this.#encoder.encode(`* dropped ${this.#dropped} message(s): you read too slowly\n`),
          );
          this.#dropped = 0;
        }
        // One write for everything queued.
        const out = new Uint8Array(lines.reduce((n, line) => n + line.length, 0));
        let at = 0;
        for (const line of lines) {
          out.set(line, at);
          at += line.length;
        }
        await writeAll(this.#conn, out);
      }
    } catch {
      // the member is gone; its reader ends the membership
    }
  }
}
