/**
 * Echo servers for socket labs, over TCP (one reply per line) and UDP (one
 * reply per datagram): echo, upper case, ceiling of a number, and a chat
 * room that broadcasts each message to everyone else.
 */

import { readMessages } from "./messages.ts";
import { closeQuietly, writeAll } from "../bytes/source_sink.ts";
import { AcceptLoop } from "../net/accept_loop.ts";
import { listenTcp } from "../net/listen.ts";
import { ConnectionLimits } from "../net/limits.ts";
import { type Duplex, IdleTimer, touching } from "../net/idle.ts";
import { answer, type EchoMode } from "./answer.ts";
import { startUdpEcho } from "./udp_server.ts";
import { ECHO_DEFAULTS } from "./defaults.ts";

export { answer, type EchoMode };
import { type LoginLabConfig, serveLogin } from "./login.ts";

const encoder = new TextEncoder();

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
  /** TCP: most connections at once, and from one address (ECHO_DEFAULTS; 0: no limit). */
  maxClients?: number;
  maxPerIp?: number;
  /** TCP: a connection that moves no byte either way for this long is closed (0: never). */
  idleTimeoutMs?: number;
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
  const limits = new ConnectionLimits({
    maxClients: options.maxClients ?? ECHO_DEFAULTS.maxClients,
    maxPerIp: options.maxPerIp ?? ECHO_DEFAULTS.maxPerIp,
  });
  const idleMs = options.idleTimeoutMs ?? ECHO_DEFAULTS.idleTimeoutMs;
  const room = options.mode === "broadcast"
    ? new ChatRoom(options.queueBytes ?? 64 * 1024, options.quietMs)
    : undefined;
  const accepting = new AcceptLoop(listener, {
    async handle(conn, id) {
      const peer = conn.remoteAddr as Deno.NetAddr;
      log(`[${id}] connection from ${peer.hostname} port ${peer.port}`);
      const admission = limits.admit(peer.hostname);
      if (!admission.admitted) {
        log(`[${id}] refused: ${admission.reason}`);
        await writeAll(conn, encoder.encode(`error: ${admission.reason}\n`)).catch(() => {});
        closeQuietly(conn);
        return;
      }
      conns.add(conn);
      let idle = false;
      const timer = new IdleTimer(idleMs, () => {
        idle = true;
        closeQuietly(conn);
      });
      const watched = touching(conn, timer);
      await (options.login
        ? serveLogin(watched, peer.hostname, options.login, log)
        : serveOne(watched, id, options, room))
        .catch(() => {})
        .finally(() => {
          timer.stop();
          limits.release(peer.hostname);
          conns.delete(conn);
          closeQuietly(conn);
          log(`[${id}] closed${idle ? `: idle for ${idleMs / 1000} s` : ""}`);
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
  conn: Duplex,
  id: number,
  { mode, quietMs }: EchoServerOptions,
  room?: ChatRoom,
): Promise<void> {
  if (mode === "broadcast") return room!.serve(id, conn);
  return mode === "echo" ? echoBytes(conn) : serveLines(conn, mode, quietMs);
}

/** Plain echo: exactly the bytes that came, as they came (no lines, no text decoding). */
async function echoBytes(conn: Duplex): Promise<void> {
  const buffer = new Uint8Array(64 * 1024);
  for (;;) {
    const n = await conn.read(buffer);
    if (n === null) return;
    await writeAll(conn, buffer.subarray(0, n));
  }
}

/** The text modes: one answer line per message (a line, or what came before a pause). */
async function serveLines(
  conn: Duplex,
  mode: "upper" | "ceil",
  quietMs?: number,
): Promise<void> {
  for await (const line of readMessages(conn, quietMs)) {
    await writeAll(conn, encoder.encode(answer(mode, line) + "\n"));
  }
}

/** Members of a TCP chat room, each with its own bounded queue and writer. */
class ChatRoom {
  #members = new Map<number, Member>();
  constructor(readonly queueBytes: number, readonly quietMs?: number) {}

  async serve(id: number, conn: Duplex): Promise<void> {
    const member = new Member(conn, this.queueBytes);
    this.#say(`* ${id} joined`);
    member.send(encoder.encode(`* welcome, you are ${id}; ${this.#members.size} other(s) here\n`));
    this.#members.set(id, member);
    try {
      for await (const line of readMessages(conn, this.quietMs)) this.#say(`${id}: ${line}`, id);
    } finally {
      this.#members.delete(id);
      member.stop();
      this.#say(`* ${id} left`);
    }
  }

  /** One line to every member but `from`, encoded once for all of them. */
  #say(text: string, from?: number): void {
    const line = encoder.encode(text + "\n");
    for (const [id, member] of this.#members) if (id !== from) member.send(line);
  }
}

class Member {
  #conn: Duplex;
  #limit: number;
  /** Lines encoded as they are queued, so the bound counts bytes. */
  #queue: Uint8Array[] = [];
  #queued = 0;
  #dropped = 0;
  #wake: (() => void) | undefined;
  #stopped = false;

  constructor(conn: Duplex, limit: number) {
    this.#conn = conn;
    this.#limit = limit;
    this.#write();
  }

  /** Queues an encoded line (shared by every member: never changed); when the queue is full, the line is dropped and counted. */
  send(line: Uint8Array): void {
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
            encoder.encode(`* dropped ${this.#dropped} message(s): you read too slowly\n`),
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
