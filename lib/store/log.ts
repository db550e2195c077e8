/**
 * What the server reports: one event per connection, request outcome and
 * close, formatted as a text line for people or a JSON line for audits.
 */

import { plainAddress } from "../net/ip.ts";
import { escapeInvisible } from "./sandbox.ts";

/** fsd/1 and TFTP requests, and HTTP methods (the HTTP face). */
export type Op = "RRQ" | "WRQ" | "DRQ" | "GET" | "HEAD" | "PUT" | "POST" | "MKCOL";

/** Requests that store bytes. */
const WRITES = new Set<Op>(["WRQ", "PUT", "POST"]);

/** Why a connection ended. */
export type CloseReason =
  | "client" // the client closed it
  | "error" // we sent ERR (a protocol violation, or a failure after data moved)
  | "peer-error" // the client sent ERR
  | "timeout" // idle timeout
  | "shutdown" // the server is stopping
  | "failure"; // a broken socket or a bug

export type ServerEvent =
  | {
    event: "connection";
    id: number;
    address: string;
    port: number;
    /** The proxy it came through (PROXY protocol): address is the real client's. */
    via?: string;
    /** "tftp": a TFTP transfer (one request over UDP); absent for fsd/1 over TCP. */
    transport?: "tftp";
  }
  | { event: "rejected"; id: number; address: string; port: number; code: number; message: string }
  | {
    event: "request";
    id: number;
    op: Op;
    name: string;
    outcome: "ok" | "refused";
    /** What was sent for an RRQ (or GET) that succeeded. */
    kind?: "file" | "listing" | "directory" | "archive" | "digest" | "page" | "redirect";
    bytes: number;
    ms: number;
    /** Negotiated with the options extension; absent for fsd/1. */
    blksize?: number;
    windowsize?: number;
    /** TFTP's sliding window (fsd's `ackevery`), when granted. */
    ackevery?: number;
    /** "sender": a TFTP download that ran on a thread of its own (lib/tftp/send_pool.ts). */
    thread?: "sender";
    code?: number;
    message?: string;
    /** The account it was made as (a server with accounts); "anonymous" without a login. */
    user?: string;
    /** "http": a request of the HTTP face (no connection line before it; `code` is the HTTP status). */
    transport?: "http";
    /** The client's address (HTTP, where no connection line names it). */
    address?: string;
    /** The HTTP status of a request that succeeded, when not 200. */
    status?: number;
  }
  | {
    event: "close";
    id: number;
    reason: CloseReason;
    /** The request in progress when the connection ended, with what it had moved. */
    op?: Op;
    name?: string;
    bytes?: number;
    ms?: number;
    code?: number;
    message?: string;
  }
  | { event: "cleanup"; removed: number; directory: string }
  | { event: "shutdown"; graceMs: number; connections: number }
  | { event: "accept-error"; message: string }
  /** A login (servers with accounts): `user` as the client sent it. */
  | { event: "login"; id: number; user: string; outcome: "ok" | "refused"; message?: string }
  /** A TLS connection whose handshake failed (a plain client on a TLS port, a stalled one). */
  | { event: "tls-failed"; address: string; port: number; message: string }
  /** The accounts file was (re)read, or could not be: the old accounts stay. */
  | { event: "accounts"; path: string; accounts?: number; error?: string }
  /** `--workers`: a worker of the server started, or died (and is being replaced). */
  | { event: "worker"; worker: number; state: "started" | "died"; message?: string }
  | { event: "warning"; message: string }
  /** A server listens (fsd/1 on TCP, or TFTP on UDP): the line to wait for before connecting. */
  | {
    event: "listening";
    transport: "fsd" | "tftp" | "http";
    address: string;
    port: number;
    workers?: number;
    /** HTTP: the addresses a person can click. */
    urls?: string[];
  }
  /** What the server says at start about its setup (accounts, TLS fingerprint, logins). */
  | { event: "notice"; message: string };

/** The event as logged: an address as a person would write it (IPv4-mapped IPv6 as plain IPv4). */
function displayed(e: ServerEvent): ServerEvent {
  return "address" in e && e.address !== undefined ? { ...e, address: plainAddress(e.address) } : e;
}

/** The event as a human-readable line, e.g. `[3] RRQ "a.txt": sent file, 12 bytes in 0.001 s`. */
export function formatText(event: ServerEvent): string {
  return escapeInvisible(textOf(displayed(event)));
}

function textOf(e: ServerEvent): string {
  switch (e.event) {
    case "connection":
      if (e.transport === "tftp") return `[${e.id}] TFTP request from ${e.address} port ${e.port}`;
      return `[${e.id}] connection from ${e.address} port ${e.port}${e.via ? ` via ${e.via}` : ""}`;
    case "rejected":
      return `[${e.id}] connection from ${e.address} port ${e.port} rejected with error ${e.code}: ${e.message}`;
    case "request": {
      const head = `[${e.id}] ${requestLabel(e.op, e.name)}${
        e.user ? ` by ${JSON.stringify(e.user)}` : ""
      }: `;
      const what = e.transport === "http" ? "status" : "error";
      if (e.outcome === "refused") return `${head}refused with ${what} ${e.code}: ${e.message}`;
      if (e.kind === "directory") return `${head}created directory`;
      const verb = WRITES.has(e.op) ? "received" : "sent";
      if (e.status && e.status !== 200 && e.status !== 201) {
        return `${head}${verb} ${e.kind ?? "file"} (status ${e.status}), ${e.bytes} bytes in ${
          seconds(e.ms)
        }`;
      }
      const sliding = e.ackevery ? `, ackevery ${e.ackevery}` : "";
      const options = e.blksize
        ? ` (blksize ${e.blksize}, windowsize ${e.windowsize}${sliding})`
        : "";
      return `${head}${verb} ${e.kind ?? "file"}, ${e.bytes} bytes in ${seconds(e.ms)}${options}`;
    }
    case "close": {
      const during = e.op ? `${requestLabel(e.op, e.name ?? "")}: ` : "";
      const head = `[${e.id}] ${during}`;
      switch (e.reason) {
        case "client":
          return `${head}closed by the client`;
        case "error":
          return `${head}error ${e.code}: ${e.message}; closing`;
        case "peer-error":
          return `${head}client sent error ${e.code}: ${JSON.stringify(e.message)}; closing`;
        case "timeout":
          return `${head}${e.message ?? "idle timeout"}; closing`;
        case "shutdown":
          return `${head}server shutting down; closing`;
        case "failure":
          return `${head}failed: ${e.message}; closing`;
      }
      break;
    }
    case "cleanup":
      return `removed ${e.removed} unfinished upload(s) left by an earlier run in ${e.directory}`;
    case "shutdown":
      if (e.connections === 0) return "shutting down: no transfer in progress, stopping now";
      return `shutting down: waiting up to ${
        seconds(e.graceMs)
      } for ${e.connections} connection(s)`;
    case "accept-error":
      return `accept failed: ${e.message}`;
    case "login":
      return `[${e.id}] login as ${JSON.stringify(e.user)}: ${
        e.outcome === "ok" ? "accepted" : `refused: ${e.message}`
      }`;
    case "tls-failed":
      return `connection from ${e.address} port ${e.port}: TLS handshake failed: ${e.message}; closing`;
    case "accounts":
      return e.error === undefined
        ? `read ${e.accounts} account(s) from ${e.path}`
        : `cannot reread ${e.path}: ${e.error}; keeping the accounts read before`;
    case "worker":
      return e.state === "started"
        ? `worker ${e.worker} started`
        : `worker ${e.worker} died: ${e.message}; starting a replacement`;
    case "warning":
      return `warning: ${e.message}`;
    case "listening":
      if (e.transport === "http") {
        return `HTTP server listening on ${e.address} port ${e.port}, ${(e.urls ?? []).join(" ")}`;
      }
      return e.transport === "tftp"
        ? `TFTP server listening on ${e.address} UDP port ${e.port}`
        : `File server listening on ${e.address} port ${e.port}${
          e.workers ? `, ${e.workers} workers` : ""
        }`;
    case "notice":
      return e.message;
  }
  return JSON.stringify(e);
}

/** The event as one JSON object on one line, with the time it was logged. */
export function formatJson(e: ServerEvent, now = new Date()): string {
  // Durations to a tenth of a millisecond: more digits are noise, not precision.
  const rounded = "ms" in e && e.ms !== undefined ? { ms: Math.round(e.ms * 10) / 10 } : {};
  return escapeInvisible(JSON.stringify({ time: now.toISOString(), ...displayed(e), ...rounded }));
}

function requestLabel(op: Op, name: string): string {
  return op === "DRQ" ? "DRQ" : `${op} ${JSON.stringify(name)}`;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(3)} s`;
}
