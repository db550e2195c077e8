/**
 * The echo servers over UDP: one reply per datagram (echo, upper, ceil) or
 * a chat room (broadcast). A UDP source can be forged, so every reply is
 * bounded: no datagram from the server's own port (itself, or a server of
 * the same kind: the classic echo loop) or from a port below 1024 (BSD
 * inetd's rule), a rate per source, a reply never much larger than its
 * request, a byte budget for everything sent, and a chat room of at most
 * `maxMembers`, where a member silent for `idleMs` leaves.
 */

import { bindUdp, type Endpoint } from "../net/udp.ts";
import { PeerBudgets, TokenBucket } from "../net/rate.ts";
import { DEFAULT_HOST } from "../net/listen.ts";
import { answer, type EchoMode } from "./answer.ts";
import { every } from "../timer.ts";

export interface UdpEchoConfig {
  port: number;
  hostname?: string;
  mode: EchoMode;
  /** Chat room: a member silent this long leaves (default 60 s). */
  idleMs?: number;
  /** Chat room: most members at once (default 32). */
  maxMembers?: number;
  log?: (line: string) => void;
}

export interface UdpEchoServer {
  readonly port: number;
  readonly hostname: string;
  /** What the server did with the datagrams it got. */
  readonly stats: UdpEchoStats;
  close(): Promise<void>;
}

export interface UdpEchoStats {
  /** Datagrams sent: replies, chat lines, notices. */
  sent: number;
  /** Datagrams not answered: from the server's own port or a port below 1024. */
  refused: number;
  /** Datagrams not answered: their source was over its rate. */
  overRate: number;
  /** Replies not sent: the server's byte budget was spent. */
  overBudget: number;
}

/** Datagrams a second one source may have answered (a burst of as many): a loop runs at thousands. */
export const PER_SOURCE_RATE = 500;
/** Bytes a second the whole server may send (a burst of a quarter of it): a chat room's fan-out. */
export const SEND_BUDGET = 4 * 1024 * 1024;
/** A reply is at most this many bytes longer than its request (text answers, the chat prefix). */
export const REPLY_SLACK = 64;
/** A chat message longer than this is refused (the sender is told). */
export const MAX_CHAT_MESSAGE = 1024;
/** Largest datagram read: the UDP maximum over IPv4. */
const MAX_DATAGRAM = 65507;

interface Member extends Endpoint {
  id: number;
  seen: number;
}

const utf8 = new TextDecoder();
const encoder = new TextEncoder();

/** Whether a datagram from `from` must go unanswered by a server on `local`. */
export function refusedSource(from: Endpoint, local: Endpoint): boolean {
  return from.port < 1024 || from.port === local.port;
}

export async function startUdpEcho(config: UdpEchoConfig): Promise<UdpEchoServer> {
  const log = config.log ?? (() => {});
  const socket = await bindUdp(config.hostname ?? DEFAULT_HOST, config.port);
  const local = socket.local;
  const perSource = new PeerBudgets(PER_SOURCE_RATE, PER_SOURCE_RATE);
  const sending = new TokenBucket(SEND_BUDGET, SEND_BUDGET / 4);
  const members = new Map<string, Member>();
  const idleMs = config.idleMs ?? 60_000;
  const maxMembers = config.maxMembers ?? 32;
  const stats: UdpEchoStats = { sent: 0, refused: 0, overRate: 0, overBudget: 0 };
  /** Sources already logged as refused or over their rate (bounded: a log line each, once). */
  const muted = new Set<string>();
  const once = (key: string, line: string) => {
    if (muted.has(key) || muted.size >= 1024) return;
    muted.add(key);
    log(line);
  };
  let nextId = 1;
  let closed = false;

  const send = (bytes: Uint8Array, to: Endpoint) => {
    if (closed) return;
    if (!sending.take(bytes.length)) {
      stats.overBudget++;
      return;
    }
    stats.sent++;
    socket.send(bytes, to).catch(() => {});
  };
  const broadcast = (text: string, except?: Member) => {
    const bytes = encoder.encode(text); // encoded once for every member
    for (const member of members.values()) if (member !== except) send(bytes, member);
  };
  const leave = (key: string, why: string) => {
    const member = members.get(key)!;
    members.delete(key);
    log(`[${member.id}] ${why}`);
    broadcast(`* ${member.id} left`);
  };

  const chat = (key: string, from: Endpoint, data: Uint8Array) => {
    let member = members.get(key);
    if (!member) {
      if (members.size >= maxMembers) {
        send(encoder.encode(`* the room is full (${maxMembers} members); try later`), from);
        return;
      }
      member = { id: nextId++, hostname: from.hostname, port: from.port, seen: 0 };
      log(`[${member.id}] datagrams from ${from.hostname} port ${from.port}`);
      broadcast(`* ${member.id} joined`);
      members.set(key, member);
      send(
        encoder.encode(`* welcome, you are ${member.id}; ${members.size - 1} other(s) here`),
        from,
      );
    }
    member.seen = performance.now();
    if (data.length > MAX_CHAT_MESSAGE) {
      send(encoder.encode(`* message too long: at most ${MAX_CHAT_MESSAGE} bytes`), from);
      return;
    }
    const text = utf8.decode(data).replace(/\r?\n$/, "");
    if (text === "/leave") leave(key, "left");
    else broadcast(`${member.id}: ${text}`, member);
  };

  const reply = (from: Endpoint, data: Uint8Array) => {
    if (config.mode === "echo") return send(data.slice(), from); // byte for byte
    const mode = config.mode as Exclude<EchoMode, "broadcast">;
    const out = encoder.encode(answer(mode, utf8.decode(data).replace(/\r?\n$/, "")));
    // Never much more than came in: a forged source must not get an amplifier.
    send(
      out.length <= data.length + REPLY_SLACK ? out : out.subarray(0, data.length + REPLY_SLACK),
      from,
    );
  };

  const receiving = (async () => {
    const buffer = new Uint8Array(MAX_DATAGRAM);
    while (!closed) {
      let data: Uint8Array, from: Endpoint;
      try {
        [data, from] = await socket.receive(buffer);
      } catch {
        if (closed) return;
        continue; // an ICMP error from an earlier send: nothing to do
      }
      const key = `${from.hostname} ${from.port}`;
      if (refusedSource(from, local)) {
        stats.refused++;
        once(
          key,
          `[-] ${from.hostname} port ${from.port}: not answered: ${
            from.port < 1024 ? "a port below 1024" : "the server's own port"
          }`,
        );
        continue;
      }
      if (config.mode !== "broadcast" && !perSource.has(key)) {
        log(`[${nextId++}] datagrams from ${from.hostname} port ${from.port}`);
      }
      if (!perSource.take(key)) {
        stats.overRate++;
        once(
          key,
          `[-] ${from.hostname} port ${from.port}: over ${PER_SOURCE_RATE} datagrams/s, dropped`,
        );
        continue;
      }
      if (config.mode === "broadcast") chat(key, from, data);
      else reply(from, data);
    }
  })();

  const sweeper = every(Math.min(idleMs, 10_000), () => {
    const now = performance.now();
    for (const [key, member] of members) {
      if (now - member.seen > idleMs) leave(key, "silent too long; left");
    }
  });

  return {
    port: local.port,
    hostname: local.hostname,
    stats,
    async close() {
      if (closed) return;
      closed = true;
      sweeper.cancel();
      socket.close();
      await receiving;
    },
  };
}
