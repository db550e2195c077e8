/**
 * The fsd/1 file server: serves one directory to many TCP clients at once.
 *
 * Each connection runs on its own; its failures (violations, timeouts, bugs,
 * broken sockets) end that connection only. Requests that cannot be served
 * are refused with ERR and the connection stays usable; once data moves, any
 * error ends the connection.
 */

import { ErrorCode, PeerError, ProtocolError } from "./errors.ts";
import { formatListing, readListing } from "./listing.ts";
import { PacketConn } from "./packet_conn.ts";
import { BLOCK_SIZE, encodeAck, encodeError, Opcode, opcodeName } from "./protocol.ts";
import { fileError, parseName, Sandbox, STAGING_PREFIX } from "./sandbox.ts";
import { StagedFile } from "./staging.ts";
import { type ByteSource, bytesSource, receiveFile, sendFile } from "./transfer.ts";

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
  /** Where log lines go (default: nowhere). */
  log?: (line: string) => void;
}

const encoder = new TextEncoder();

/** A running server; `close()` stops it and ends every connection. */
export class FileServer {
  readonly addr: Deno.NetAddr;
  readonly root: string;
  #listener: Deno.TcpListener;
  #sandbox: Sandbox;
  #greeting: Uint8Array;
  #idleTimeoutMs: number;
  #log: (line: string) => void;
  #connections = new Set<PacketConn>();
  #tasks = new Set<Promise<void>>();
  #nextId = 1;
  #closing = false;
  #acceptLoop: Promise<void>;

  private constructor(listener: Deno.TcpListener, sandbox: Sandbox, options: ServerOptions) {
    this.#listener = listener;
    this.#sandbox = sandbox;
    this.addr = listener.addr;
    this.root = sandbox.root;
    this.#greeting = greeting(options.name ?? hostName());
    this.#idleTimeoutMs = options.idleTimeoutMs ?? 60_000;
    this.#log = options.log ?? (() => {});
    this.#acceptLoop = this.#accept();
  }

  /** Checks the directory, binds the port and starts serving. */
  static async start(options: ServerOptions): Promise<FileServer> {
    const sandbox = await Sandbox.open(options.root);
    const listener = Deno.listen({ hostname: options.hostname ?? "0.0.0.0", port: options.port });
    return new FileServer(listener, sandbox, options);
  }

  /** Connections being served right now. */
  get connections(): number {
    return this.#connections.size;
  }

  /** Stops accepting, closes every connection and waits for their handlers. */
  async close(): Promise<void> {
    if (this.#closing) return await this.#acceptLoop;
    this.#closing = true;
    this.#listener.close();
    for (const conn of this.#connections) conn.close();
    await this.#acceptLoop;
    await Promise.all(this.#tasks);
  }

  async #accept(): Promise<void> {
    while (!this.#closing) {
      let raw: Deno.TcpConn;
      try {
        raw = await this.#listener.accept();
      } catch (error) {
        if (this.#closing) return;
        // Out of file descriptors and the like: say so, breathe, go on.
        this.#log(`accept failed: ${errorText(error)}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
        continue;
      }
      const task = this.#serve(raw, this.#nextId++);
      this.#tasks.add(task);
      task.finally(() => this.#tasks.delete(task));
    }
  }

  async #serve(raw: Deno.TcpConn, id: number): Promise<void> {
    const conn = new PacketConn(raw, { timeoutMs: this.#idleTimeoutMs });
    this.#connections.add(conn);
    const log = (line: string) => this.#log(`[${id}] ${line}`);
    let current = ""; // the request being served, for the log
    const logOutcome = (outcome: string) => log(`${current}: ${outcome}`);
    try {
      const peer = raw.remoteAddr as Deno.NetAddr;
      log(`connection from ${peer.hostname} port ${peer.port}`);
      if (this.#closing) return; // raced with close(): the conn was not there to be closed
      current = "greeting";
      await sendFile(conn, bytesSource(this.#greeting));
      for (;;) {
        current = "";
        const packet = await conn.readPacket();
        if (packet === null) break;
        switch (packet.op) {
          case Opcode.RRQ:
            current = `RRQ ${quote(packet.name)}`;
            await this.#read(conn, packet.name, logOutcome);
            break;
          case Opcode.DRQ:
            current = "DRQ";
            await this.#read(conn, new Uint8Array(0), logOutcome);
            break;
          case Opcode.WRQ:
            current = `WRQ ${quote(packet.name)}`;
            await this.#write(conn, packet.name, logOutcome);
            break;
          case Opcode.ERR:
            throw new PeerError(packet.code, packet.message);
          default:
            throw new ProtocolError(
              ErrorCode.ILLEGAL_OPERATION,
              `unexpected ${opcodeName(packet.op)}: no transfer in progress`,
            );
        }
      }
      log("closed by the client");
    } catch (error) {
      const what = current ? `${current}: ` : "";
      if (error instanceof ProtocolError) {
        await conn.sendError(error.code, error.message);
        log(`${what}error ${error.code}: ${error.message}; closing`);
      } else if (error instanceof PeerError) {
        log(`${what}client sent error ${error.code}: ${JSON.stringify(error.message)}; closing`);
      } else if (error instanceof Deno.errors.TimedOut) {
        log(`${what}idle timeout; closing`);
      } else if (this.#closing) {
        log(`${what}server shutting down; closing`);
      } else {
        // Anything else is a broken socket or a bug: the client hears ERR 0 if it still listens.
        await conn.sendError(ErrorCode.OTHER, `server error: ${errorText(error)}`);
        log(`${what}failed: ${errorText(error)}; closing`);
      }
    } finally {
      conn.close();
      this.#connections.delete(conn);
    }
  }

  /** RRQ and DRQ: a file's bytes, or a directory's listing. */
  async #read(conn: PacketConn, raw: Uint8Array, log: (outcome: string) => void): Promise<void> {
    const started = performance.now();
    const opened = await refuseOnError(conn, log, async () => {
      const name = parseName(raw);
      try {
        const real = await this.#sandbox.resolveExisting(name);
        const info = await Deno.stat(real);
        if (info.isDirectory) {
          const listing = formatListing(await readListing(this.#sandbox, real));
          return { source: bytesSource(encoder.encode(listing)), close() {}, what: "listing" };
        }
        if (!info.isFile) {
          throw new ProtocolError(ErrorCode.ACCESS_VIOLATION, `not a regular file: ${name}`);
        }
        const file = await Deno.open(real, { read: true });
        return { source: file as ByteSource, close: () => file.close(), what: "file" };
      } catch (error) {
        throw fileError(error, name);
      }
    });
    if (!opened) return;
    try {
      const bytes = await sendFile(conn, opened.source);
      log(`sent ${opened.what}, ${bytes} bytes in ${elapsed(started)}`);
    } finally {
      opened.close();
    }
  }

  /** WRQ: into a staging file, published under its name only once complete and synced. */
  async #write(conn: PacketConn, raw: Uint8Array, log: (outcome: string) => void): Promise<void> {
    const started = performance.now();
    let name = "";
    const staged = await refuseOnError(conn, log, async () => {
      name = parseName(raw);
      try {
        return await StagedFile.create(await this.#sandbox.resolveNew(name), STAGING_PREFIX);
      } catch (error) {
        throw fileError(error, name);
      }
    });
    if (!staged) return;
    try {
      await conn.write(encodeAck(0));
      const bytes = await receiveFile(conn, staged.file, {
        onComplete: async () => {
          try {
            await staged.commit({ sync: true });
          } catch (error) {
            throw fileError(error, name);
          }
        },
      });
      log(`received file, ${bytes} bytes in ${elapsed(started)}`);
    } finally {
      await staged.discard();
    }
  }
}

/**
 * Runs the checks before a transfer. A refusal is sent as ERR and logged, and
 * the connection goes on (undefined is returned); anything else propagates.
 */
async function refuseOnError<T>(
  conn: PacketConn,
  log: (outcome: string) => void,
  prepare: () => Promise<T>,
): Promise<T | undefined> {
  try {
    return await prepare();
  } catch (error) {
    if (!(error instanceof ProtocolError) || error.code === ErrorCode.ILLEGAL_OPERATION) {
      throw error;
    }
    await conn.write(encodeError(error.code, error.message));
    log(`refused with error ${error.code}: ${error.message}`);
    return undefined;
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

const quoteDecoder = new TextDecoder();

/** A name as it can be printed safely in a log line, whatever its bytes. */
function quote(raw: Uint8Array): string {
  return JSON.stringify(quoteDecoder.decode(raw.subarray(0, 300)));
}

function elapsed(started: number): string {
  return `${((performance.now() - started) / 1000).toFixed(3)} s`;
}

export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
