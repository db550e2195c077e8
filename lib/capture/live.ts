/**
 * What the live page shows, kept as it happens: every connection of every
 * protocol (from the servers' events, the HTTP face's progress, the bytes
 * of each fsd/1 connection and the datagrams of each TFTP transfer seen
 * through taps), and for the newest sessions their packets as a ladder
 * (fsd/1's also as raw bytes for a capture file). Everything kept is bounded: connections, sessions, lines, bytes.
 */

import type { ConnTap } from "../fsd/packet_conn.ts";
import { Opcode } from "../fsd/codec.ts";
import type { HttpActivity, LiveConnection, LiveView } from "../http/live.ts";
import type { ServerEvent } from "../store/log.ts";
import { Ladder, ladderHeader } from "./ladder.ts";
import { PcapWriter, type Side } from "./pcap.ts";
import { FsdTracer } from "./trace.ts";
import { tftpLabel } from "./tftp_trace.ts";
import { optionRecord } from "../net/option_pairs.ts";
import {
  Opcode as TftpOp,
  type Packet as TftpPacket,
  parsePacket as parseTftp,
} from "../tftp/codec.ts";
import type { DatagramTap } from "../tftp/channel.ts";
import { after, type Timer } from "../timer.ts";

/** Connections shown at most (finished ones leave first). */
const MAX_CONNECTIONS = 200;
/** Sessions whose ladder and bytes are kept. */
const MAX_SESSIONS = 16;
const MAX_LADDER_LINES = 2000;
/** Bytes of a session kept for its capture file; past this the capture is cut short. */
const MAX_SESSION_BYTES = 4 * 1024 * 1024;
/** A finished connection stays on the page this long. */
const LINGER_MS = 15_000;
/** Changes are announced at most this often. */
const NOTIFY_MS = 250;

interface Tracked extends LiveConnection {
  finishedAt?: number;
  samples: { at: number; bytes: number }[];
}

interface Session {
  lines: string[];
  /** The bytes of an fsd/1 session, for its capture file (none for TFTP). */
  chunks: { side: Side; bytes: Uint8Array }[];
  kept: number;
  ladder: Ladder;
}

export class LiveHub implements LiveView, HttpActivity {
  /** The fsd/1 port, as capture files show it. */
  serverPort = 0;
  #connections = new Map<string, Tracked>();
  #sessions = new Map<string, Session>();
  #listeners = new Set<() => void>();
  #timer: Timer | undefined;

  connections(): LiveConnection[] {
    const now = Date.now();
    const out: LiveConnection[] = [];
    for (const [key, c] of this.#connections) {
      if (c.finishedAt !== undefined && now - c.finishedAt > LINGER_MS) {
        this.#connections.delete(key);
        continue;
      }
      const { samples, finishedAt: _, ...shown } = c;
      const first = samples[0];
      const last = samples[samples.length - 1];
      const rate = first && last && last.at > first.at
        ? (last.bytes - first.bytes) * 1000 / (last.at - first.at)
        : 0;
      out.push({ ...shown, rate: c.finishedAt === undefined ? rate : 0 });
    }
    return out;
  }

  subscribe(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  ladder(key: string): string[] | undefined {
    return this.#sessions.get(key)?.lines;
  }

  pcap(key: string): Uint8Array<ArrayBuffer> | undefined {
    const session = this.#sessions.get(key);
    if (!session || !key.startsWith("fsd-")) return undefined;
    const { writer, bytes } = PcapWriter.inMemory();
    const conn = writer.connection(this.serverPort);
    for (const chunk of session.chunks) conn.data(chunk.side, chunk.bytes);
    conn.close();
    writer.close();
    return bytes();
  }

  /** Every server event (the log); `from` says which server logged it (the ids are each server's own). */
  event(e: ServerEvent, from: "fsd" | "tftp" | "http" = "fsd"): void {
    const prefix = "transport" in e && e.transport === "http" ? "http" : from;
    switch (e.event) {
      case "connection":
        this.#track(`${prefix}-${e.id}`, {
          protocol: prefix === "tftp" ? "TFTP" : "fsd/1",
          address: e.address,
          state: "connected",
        });
        break;
      case "request": {
        const key = `${prefix}-${e.id}`;
        const c = this.#connections.get(key);
        if (!c) break;
        c.user = e.user ?? c.user;
        c.op = e.op;
        c.name = e.name;
        c.state = e.outcome === "ok" ? "done" : `refused: ${e.message ?? e.code}`;
        if (e.outcome === "ok") c.bytes = e.bytes;
        if (prefix !== "fsd") c.finishedAt = Date.now();
        if (prefix === "tftp") this.#sessions.get(key)?.ladder.close();
        break;
      }
      case "close": {
        const c = this.#connections.get(`${prefix}-${e.id}`);
        if (c && c.finishedAt === undefined) {
          c.state = e.reason === "client" ? "closed" : `closed (${e.reason})`;
          c.finishedAt = Date.now();
        }
        break;
      }
      default:
        return;
    }
    this.#changed();
  }

  begin(
    id: number,
    info: { address: string; op: string; name: string; user?: string; size?: number },
  ): void {
    this.#track(`http-${id}`, {
      protocol: "HTTP",
      address: info.address,
      user: info.user,
      op: info.op,
      name: info.name,
      size: info.size,
      state: "transferring",
    });
    this.#changed();
  }

  progress(id: number, bytes: number): void {
    const c = this.#connections.get(`http-${id}`);
    if (!c) return;
    this.#moved(c, bytes);
  }

  /** A tap for fsd/1 connection `id`: its packets drawn, counted and kept. */
  tap(id: number): ConnTap {
    const key = `fsd-${id}`;
    const session = this.#session(key);
    const decoders = { up: new FsdTracer(), down: new FsdTracer() };
    const keep = (side: Side, bytes: Uint8Array) => {
      if (session.kept + bytes.length > MAX_SESSION_BYTES) return;
      session.kept += bytes.length;
      session.chunks.push({ side, bytes: bytes.slice() });
    };
    const seen = (direction: "up" | "down", bytes: Uint8Array) => {
      decoders[direction].each(bytes, (packet) => {
        session.ladder.packet(direction, packet);
        const c = this.#connections.get(key);
        if (!c) return;
        c.ladder = true;
        if (packet.op === Opcode.RRQ || packet.op === Opcode.WRQ) {
          this.#started(c, packet.op === Opcode.RRQ ? "RRQ" : "WRQ", packet.name);
        } else if (packet.op === Opcode.OACK && optionRecord(packet.options).tsize) {
          c.size = Number(optionRecord(packet.options).tsize);
        } else if (packet.op === Opcode.DAT && c.op) {
          this.#moved(c, c.bytes + packet.data.length);
        } else if (packet.op === Opcode.ERR) {
          c.state = `ERR ${packet.code} ${packet.message}`;
        }
      });
      this.#changed();
    };
    return {
      sent: (bytes) => {
        keep("server", bytes);
        seen("down", bytes);
      },
      received: (bytes) => {
        keep("client", bytes);
        seen("up", bytes);
      },
      closed: () => session.ladder.close(),
    };
  }

  /** A tap for TFTP transfer `id` (its request first): its datagrams drawn and counted. */
  tftpTap(id: number): DatagramTap {
    const key = `tftp-${id}`;
    const session = this.#session(key);
    const seen = (direction: "up" | "down", bytes: Uint8Array) => {
      const { label, kind, size } = tftpLabel(bytes);
      session.ladder.entry(direction, label, kind, size);
      let packet: TftpPacket;
      try {
        packet = parseTftp(bytes);
      } catch {
        return;
      }
      const c = this.#connections.get(key);
      if (c) c.ladder = true;
      switch (packet.op) {
        case TftpOp.RRQ:
        case TftpOp.WRQ: {
          if (c) this.#started(c, packet.op === TftpOp.RRQ ? "RRQ" : "WRQ", packet.name);
          break;
        }
        case TftpOp.DATA:
          if (c?.op) this.#moved(c, c.bytes + packet.data.length);
          break;
        case TftpOp.ERROR:
          if (c) c.state = label;
          break;
        case TftpOp.OACK: {
          const tsize = optionRecord(packet.options).tsize;
          if (c && tsize) c.size = Number(tsize);
          break;
        }
      }
      this.#changed();
    };
    return (sent, bytes) => seen(sent ? "down" : "up", bytes);
  }

  /** A new session's ladder and capture, the oldest session dropped past the bound. */
  #session(key: string): Session {
    const lines = [ladderHeader()];
    const session: Session = {
      lines,
      chunks: [],
      kept: 0,
      ladder: new Ladder((line) => {
        if (lines.length < MAX_LADDER_LINES) lines.push(line);
      }),
    };
    this.#sessions.set(key, session);
    while (this.#sessions.size > MAX_SESSIONS) {
      this.#sessions.delete(this.#sessions.keys().next().value!);
    }
    return session;
  }

  #started(c: Tracked, op: string, name: Uint8Array): void {
    c.op = op;
    c.name = new TextDecoder().decode(name);
    c.bytes = 0;
    c.samples = [];
    c.state = "transferring";
  }

  #track(key: string, c: Omit<Tracked, "key" | "bytes" | "rate" | "ladder" | "samples">): void {
    this.#connections.set(key, {
      key,
      bytes: 0,
      rate: 0,
      ladder: this.#sessions.has(key),
      samples: [],
      ...c,
    });
    if (this.#connections.size <= MAX_CONNECTIONS) return;
    const finished = [...this.#connections].find(([, t]) => t.finishedAt !== undefined);
    this.#connections.delete(finished?.[0] ?? this.#connections.keys().next().value!);
  }

  #moved(c: Tracked, bytes: number): void {
    c.bytes = bytes;
    const now = Date.now();
    c.samples.push({ at: now, bytes });
    while (c.samples.length > 2 && now - c.samples[0].at > 2000) c.samples.shift();
    if (c.samples.length > 64) c.samples.splice(1, c.samples.length - 64);
    this.#changed();
  }

  #changed(): void {
    if (this.#timer !== undefined || this.#listeners.size === 0) return;
    this.#timer = after(NOTIFY_MS, () => {
      this.#timer = undefined;
      for (const listener of this.#listeners) listener();
    });
  }

  /** Stops the pending announcement (the server is stopping). */
  close(): void {
    this.#timer?.cancel();
    this.#timer = undefined;
    this.#listeners.clear();
  }
}
