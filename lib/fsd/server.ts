/**
 * The fsd/1 file server: serves one directory to many TCP clients at once.
 *
 * Each connection runs on its own; its failures (violations, timeouts, bugs,
 * broken sockets) end that connection only. Requests that cannot be served
 * are refused with ERR and the connection stays usable; once data moves, any
 * error ends the connection. Limits refuse with ERR before any data moves.
 */

import { ErrorCode, PeerError, ProtocolError } from "../store/errors.ts";
import { formatListing, readListing } from "../store/listing.ts";
import type { CloseReason, Op, ServerEvent } from "../store/log.ts";
import {
  BLKSIZE_RANGE,
  grant,
  oackOptions,
  type OptionRequest,
  parseRequest,
  type TransferParams,
} from "./negotiation.ts";
import { PacketConn } from "./packet_conn.ts";
import {
  BLOCK_SIZE,
  encodeAck,
  encodeError,
  encodeOptions,
  Opcode,
  opcodeName,
  type Packet,
} from "./codec.ts";
import { fileError, parseName, Sandbox, STAGING_PREFIX } from "../store/sandbox.ts";
import { removeStaleStaging, StagedFile } from "../store/staging.ts";
import { bytesSource, fileSink, fileSource } from "../bytes/source_sink.ts";
import { expectAck, receiveFile, sendFile } from "./window.ts";

export interface ServerOptions {
  /** The directory to serve. */
  root: string;
  /** TCP port; 0 lets the system choose. */
  port: number;
  /** Address to listen on (default 0.0.0.0). */
  hostname?: string;
  /** Close a connection after this long with nothing from the client (default 60 s). */
  idleTimeoutMs?: number;
  /** Who the greeting says this is (default: the host name, or "fsd" if that cannot be read). */
  name?: string;
  /** Most connections served at once; more are refused with ERR 0 (default 1000; 0: no limit). */
  maxClients?: number;
  /** Most connections from one address at once (default 100; 0: no limit). */
  maxPerIp?: number;
  /** Largest upload in bytes; a larger one ends with ERR 3 (default 8 GiB; 0: no limit). */
  maxUploadBytes?: number;
  /** Refuse every WRQ with ERR 2, and touch nothing on disk. */
  readOnly?: boolean;
  /** Speak only fsd/1: OPT is an unknown opcode (ERR 4), as in a server without the extension. */
  fsd1Only?: boolean;
  /** Where events go (default: nowhere). */
  log?: (event: ServerEvent) => void;
}

/** The most a client may negotiate: the protocol's largest block, and a window of 64 blocks. */
export const SERVER_LIMITS: TransferParams = { blockSize: BLKSIZE_RANGE[1], windowSize: 64 };

export const SERVER_DEFAULTS = {
  idleTimeoutMs: 60_000,
  maxClients: 1000,
  maxPerIp: 100,
  maxUploadBytes: 8 * 1024 ** 3,
} as const;

const encoder = new TextEncoder();
const lossy = new TextDecoder();
const NO_NAME = new Uint8Array(0);

/** One client connection and the request it is serving, if any. */
interface Session {
  id: number;
  conn: PacketConn;
  /** Serving a request (not waiting for one): shutdown lets it finish. */
  busy: boolean;
  request?: { op: Op; name: string; started: number; bytes: number; params?: TransferParams };
}

/** A running server; `shutdown()` stops it gracefully, `close()` at once. */
export class FileServer {
  readonly addr: Deno.NetAddr;
  readonly root: string;
  #listener: Deno.TcpListener;
  #sandbox: Sandbox;
  #greeting: Uint8Array;
  #options: Required<Omit<ServerOptions, "root" | "port" | "name" | "hostname" | "log">>;
  #log: (event: ServerEvent) => void;
  #sessions = new Set<Session>();
  #perAddress = new Map<string, number>();
  #tasks = new Set<Promise<void>>();
  #nextId = 1;
  /** No new connections, no new requests. */
  #stopping = false;
  #graceTimer: ReturnType<typeof setTimeout> | undefined;
  #acceptLoop: Promise<void>;

  private constructor(listener: Deno.TcpListener, sandbox: Sandbox, options: ServerOptions) {
    this.#listener = listener;
    this.#sandbox = sandbox;
    this.addr = listener.addr;
    this.root = sandbox.root;
    this.#greeting = greeting(options.name ?? hostName());
    this.#options = {
      idleTimeoutMs: options.idleTimeoutMs ?? SERVER_DEFAULTS.idleTimeoutMs,
      maxClients: options.maxClients ?? SERVER_DEFAULTS.maxClients,
      maxPerIp: options.maxPerIp ?? SERVER_DEFAULTS.maxPerIp,
      maxUploadBytes: options.maxUploadBytes ?? SERVER_DEFAULTS.maxUploadBytes,
      readOnly: options.readOnly ?? false,
      fsd1Only: options.fsd1Only ?? false,
    };
    this.#log = options.log ?? (() => {});
    this.#acceptLoop = this.#accept();
  }

  /**
   * Checks the directory, removes uploads an earlier run left unfinished,
   * binds the port and starts serving.
   */
  static async start(options: ServerOptions): Promise<FileServer> {
    const sandbox = await Sandbox.open(options.root);
    if (!options.readOnly) {
      const removed = await removeStaleStaging(sandbox.root, STAGING_PREFIX);
      if (removed > 0) options.log?.({ event: "cleanup", removed, directory: sandbox.root });
    }
    const listener = Deno.listen({ hostname: options.hostname ?? "0.0.0.0", port: options.port });
    return new FileServer(listener, sandbox, options);
  }

  /** Connections being served right now. */
  get connections(): number {
    return this.#sessions.size;
  }

  /**
   * Stops accepting and closes idle connections at once; connections in the
   * middle of a request may finish it within `graceMs`, then everything is
   * closed. Unfinished uploads are discarded either way.
   */
  async shutdown(graceMs: number): Promise<void> {
    if (!this.#stopping) {
      this.#stopping = true;
      this.#listener.close();
      const busy = [...this.#sessions].filter((s) => s.busy);
      this.#log({ event: "shutdown", graceMs, connections: busy.length });
      for (const session of this.#sessions) if (!session.busy) session.conn.close();
      this.#graceTimer = setTimeout(() => this.#closeAll(), graceMs);
    }
    await this.#settle();
  }

  /** Stops accepting, closes every connection and waits for their handlers. */
  async close(): Promise<void> {
    if (!this.#stopping) {
      this.#stopping = true;
      this.#listener.close();
    }
    this.#closeAll();
    await this.#settle();
  }

  #closeAll(): void {
    for (const session of this.#sessions) session.conn.close();
  }

  async #settle(): Promise<void> {
    await this.#acceptLoop;
    while (this.#tasks.size > 0) await Promise.all(this.#tasks);
    clearTimeout(this.#graceTimer);
  }

  async #accept(): Promise<void> {
    while (!this.#stopping) {
      let raw: Deno.TcpConn;
      try {
        raw = await this.#listener.accept();
      } catch (error) {
        if (this.#stopping) return;
        // Out of file descriptors and the like: say so, breathe, go on.
        this.#log({ event: "accept-error", message: errorText(error) });
        await new Promise((resolve) => setTimeout(resolve, 100));
        continue;
      }
      const id = this.#nextId++;
      const peer = raw.remoteAddr as Deno.NetAddr;
      const fromPeer = this.#perAddress.get(peer.hostname) ?? 0;
      const { maxClients, maxPerIp } = this.#options;
      let task: Promise<void>;
      if (maxClients > 0 && this.#sessions.size >= maxClients) {
        task = this.#reject(raw, id, `server busy: serving ${maxClients} connections, its limit`);
      } else if (maxPerIp > 0 && fromPeer >= maxPerIp) {
        task = this.#reject(
          raw,
          id,
          `too many connections from ${peer.hostname}: at most ${maxPerIp}`,
        );
      } else {
        this.#perAddress.set(peer.hostname, fromPeer + 1);
        task = this.#serve(raw, id, peer);
      }
      this.#tasks.add(task);
      task.finally(() => this.#tasks.delete(task));
    }
  }

  /** Over a limit: ERR 0 instead of the greeting, then close. */
  async #reject(raw: Deno.TcpConn, id: number, message: string): Promise<void> {
    const peer = raw.remoteAddr as Deno.NetAddr;
    this.#log({
      event: "rejected",
      id,
      address: peer.hostname,
      port: peer.port,
      code: ErrorCode.OTHER,
      message,
    });
    const conn = new PacketConn(raw, { timeoutMs: 1000 });
    await conn.sendError(ErrorCode.OTHER, message);
    conn.close();
  }

  async #serve(raw: Deno.TcpConn, id: number, peer: Deno.NetAddr): Promise<void> {
    const conn = new PacketConn(raw, { timeoutMs: this.#options.idleTimeoutMs });
    const session: Session = { id, conn, busy: false };
    this.#sessions.add(session);
    this.#log({ event: "connection", id, address: peer.hostname, port: peer.port });
    let reason: CloseReason = "client";
    let code: number | undefined;
    let message: string | undefined;
    try {
      if (this.#stopping) throw new Deno.errors.Interrupted("server stopping");
      await sendFile(conn, bytesSource(this.#greeting));
      while (!this.#stopping) {
        session.busy = false;
        session.request = undefined;
        const packet = await conn.readPacket();
        if (packet === null) break;
        session.busy = true;
        await this.#dispatch(session, packet);
      }
      if (this.#stopping) reason = "shutdown";
    } catch (error) {
      if (error instanceof ProtocolError) {
        reason = "error";
        ({ code, message } = error);
        await conn.sendError(error.code, error.message);
      } else if (error instanceof PeerError) {
        reason = "peer-error";
        ({ code, message } = error);
      } else if (error instanceof Deno.errors.TimedOut) {
        reason = "timeout";
      } else if (this.#stopping) {
        reason = "shutdown";
      } else if (error instanceof Deno.errors.UnexpectedEof) {
        // The client hung up mid-packet or mid-transfer: log it, nobody is left to tell.
        reason = "failure";
        message = errorText(error);
      } else {
        // A broken socket or a bug: the client hears ERR 0 if it still listens.
        reason = "failure";
        code = ErrorCode.OTHER;
        message = errorText(error);
        await conn.sendError(ErrorCode.OTHER, `server error: ${message}`);
      }
    } finally {
      conn.close();
      this.#sessions.delete(session);
      const left = (this.#perAddress.get(peer.hostname) ?? 1) - 1;
      if (left > 0) this.#perAddress.set(peer.hostname, left);
      else this.#perAddress.delete(peer.hostname);
      const r = session.request;
      this.#log({
        event: "close",
        id,
        reason,
        ...(r && { op: r.op, name: r.name, bytes: r.bytes, ms: performance.now() - r.started }),
        ...(code !== undefined && { code }),
        ...(message !== undefined && { message }),
      });
    }
  }

  /** One request, or OPT and the request it is for. */
  async #dispatch(session: Session, packet: Packet, options?: OptionRequest): Promise<void> {
    switch (packet.op) {
      case Opcode.RRQ:
        return await this.#read(session, "RRQ", packet.name, options);
      case Opcode.DRQ:
        return await this.#read(session, "DRQ", NO_NAME, options);
      case Opcode.WRQ:
        return await this.#write(session, packet.name, options);
      case Opcode.OPT: {
        if (this.#options.fsd1Only) {
          throw new ProtocolError(ErrorCode.ILLEGAL_OPERATION, `unknown opcode: ${Opcode.OPT}`);
        }
        const request = parseRequest(packet.options); // out of range: ERR 8, and the connection ends
        const next = await session.conn.readPacket();
        if (next === null) throw new Deno.errors.UnexpectedEof("connection closed after OPT");
        if (next.op !== Opcode.RRQ && next.op !== Opcode.WRQ && next.op !== Opcode.DRQ) {
          throw new ProtocolError(
            ErrorCode.ILLEGAL_OPERATION,
            `OPT must be followed by a request, not ${opcodeName(next.op)}`,
          );
        }
        return await this.#dispatch(session, next, request);
      }
      case Opcode.ERR:
        throw new PeerError(packet.code, packet.message);
    }
    throw new ProtocolError(
      ErrorCode.ILLEGAL_OPERATION,
      `unexpected ${opcodeName(packet.op)}: no transfer in progress`,
    );
  }

  /** RRQ and DRQ: a file's bytes, or a directory's listing. */
  async #read(session: Session, op: Op, raw: Uint8Array, options?: OptionRequest): Promise<void> {
    const request = this.#begin(session, op, raw);
    const opened = await this.#prepare(session, async () => {
      const name = parseName(raw);
      try {
        const real = await this.#sandbox.resolveExisting(name);
        const info = await Deno.stat(real);
        if (info.isDirectory) {
          const listing = encoder.encode(formatListing(await readListing(this.#sandbox, real)));
          return {
            source: bytesSource(listing),
            close() {},
            kind: "listing" as const,
            size: listing.length,
          };
        }
        if (!info.isFile) {
          throw new ProtocolError(ErrorCode.ACCESS_VIOLATION, `not a regular file: ${name}`);
        }
        const file = await Deno.open(real, { read: true });
        return {
          source: fileSource(file),
          close: () => file.close(),
          kind: "file" as const,
          size: info.size,
        };
      } catch (error) {
        throw fileError(error, name);
      }
    });
    if (!opened) return;
    try {
      let params: TransferParams | undefined;
      if (options) {
        params = await this.#sendOack(session, options, opened.size);
        await expectAck(session.conn, 0);
      }
      await sendFile(session.conn, opened.source, { params, onProgress: (n) => request.bytes = n });
      this.#finish(session, { outcome: "ok", kind: opened.kind });
    } finally {
      opened.close();
    }
  }

  /** WRQ: into a staging file, published under its name only once complete and synced. */
  async #write(session: Session, raw: Uint8Array, options?: OptionRequest): Promise<void> {
    const request = this.#begin(session, "WRQ", raw);
    let name = "";
    const staged = await this.#prepare(session, async () => {
      if (this.#options.readOnly) {
        throw new ProtocolError(ErrorCode.ACCESS_VIOLATION, "server is read-only");
      }
      name = parseName(raw);
      const { maxUploadBytes } = this.#options;
      if (maxUploadBytes > 0 && (options?.transferSize ?? 0) > maxUploadBytes) {
        throw new ProtocolError(
          ErrorCode.DISK_FULL,
          `upload too large: ${options!.transferSize} bytes, at most ${maxUploadBytes}`,
        );
      }
      try {
        return await StagedFile.create(await this.#sandbox.resolveNew(name), STAGING_PREFIX);
      } catch (error) {
        throw fileError(error, name);
      }
    });
    if (!staged) return;
    // Disk errors become ERR 3 (full) or ERR 0 with the reason, not a generic failure.
    const sink = fileSink(staged.file, (error) => fileError(error, name));
    try {
      let params: TransferParams | undefined;
      if (options) {
        params = await this.#sendOack(session, options, options.transferSize);
      } else {
        await session.conn.write(encodeAck(0));
      }
      await receiveFile(session.conn, sink, {
        params,
        maxBytes: this.#options.maxUploadBytes || undefined,
        onProgress: (n) => request.bytes = n,
        onComplete: async () => {
          try {
            await staged.commit({ sync: true });
          } catch (error) {
            throw fileError(error, name);
          }
        },
      });
      this.#finish(session, { outcome: "ok", kind: "file" });
    } finally {
      await staged.discard();
    }
  }

  /** Grants what the OPT asked within the server's limits, answers OACK, and records it for the log. */
  async #sendOack(
    session: Session,
    options: OptionRequest,
    size: number | undefined,
  ): Promise<TransferParams> {
    const params = grant(options, SERVER_LIMITS);
    await session.conn.write(encodeOptions(Opcode.OACK, oackOptions(options, params, size)));
    session.request!.params = params;
    return params;
  }

  #begin(session: Session, op: Op, raw: Uint8Array): NonNullable<Session["request"]> {
    session.request = {
      op,
      name: lossy.decode(raw.subarray(0, 300)),
      started: performance.now(),
      bytes: 0,
    };
    return session.request;
  }

  /** Logs how the session's request ended and forgets it. */
  #finish(
    session: Session,
    outcome: { outcome: "ok"; kind: "file" | "listing" } | {
      outcome: "refused";
      code: number;
      message: string;
    },
  ): void {
    const r = session.request!;
    this.#log({
      event: "request",
      id: session.id,
      op: r.op,
      name: r.name,
      bytes: r.bytes,
      ms: performance.now() - r.started,
      ...(r.params && { blksize: r.params.blockSize, windowsize: r.params.windowSize }),
      ...outcome,
    });
    session.request = undefined;
  }

  /**
   * Runs the checks before a transfer. A refusal is sent as ERR and logged,
   * and the connection goes on (undefined is returned); anything else
   * propagates and ends the connection.
   */
  async #prepare<T>(session: Session, prepare: () => Promise<T>): Promise<T | undefined> {
    try {
      return await prepare();
    } catch (error) {
      if (!(error instanceof ProtocolError) || error.code === ErrorCode.ILLEGAL_OPERATION) {
        throw error;
      }
      await session.conn.write(encodeError(error.code, error.message));
      this.#finish(session, { outcome: "refused", code: error.code, message: error.message });
      return undefined;
    }
  }
}

function greeting(name: string): Uint8Array {
  let bytes = encoder.encode(`Hello from ${name}'s fileserver`);
  // One DAT block, shorter than a full one, so the greeting is a single packet.
  while (bytes.length >= BLOCK_SIZE) {
    name = name.slice(0, -1);
    bytes = encoder.encode(`Hello from ${name}'s fileserver`);
  }
  return bytes;
}

function hostName(): string {
  try {
    return Deno.hostname();
  } catch {
    return "fsd"; // --allow-sys=hostname not granted
  }
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
