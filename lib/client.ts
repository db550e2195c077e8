/**
 * The fsd/1 client: one connection, greeted, then any number of requests.
 *
 * A request the server refuses throws PeerError and the connection stays
 * usable. Anything else (a violation by the server, a timeout, a local
 * failure) sends ERR when it can and closes the connection.
 */

import { ErrorCode, PeerError, ProtocolError } from "./errors.ts";
import { type ListingEntry, parseListing } from "./listing.ts";
import { PacketConn } from "./packet_conn.ts";
import { encodeDrq, encodeRequest, Opcode } from "./protocol.ts";
import {
  type ByteSink,
  type ByteSource,
  expectAck,
  MemorySink,
  receiveFile,
  sendFile,
  type TransferOptions,
} from "./transfer.ts";

export interface ClientOptions {
  /** Give up when the server has said nothing for this long (default 60 s; 0 never). */
  timeoutMs?: number;
}

/** Largest greeting and listing kept in memory. */
const MAX_GREETING_BYTES = 4096;
const MAX_LISTING_BYTES = 64 * 1024 * 1024;

const decoder = new TextDecoder();

export class FsdClient {
  /** The server's greeting text. */
  readonly greeting: string;
  #conn: PacketConn;

  private constructor(conn: PacketConn, greeting: string) {
    this.#conn = conn;
    this.greeting = greeting;
  }

  /** Connects and takes the greeting. */
  static async connect(
    hostname: string,
    port: number,
    options: ClientOptions = {},
  ): Promise<FsdClient> {
    const timeoutMs = options.timeoutMs ?? 60_000;
    const raw = await connectWithTimeout(hostname, port, timeoutMs);
    const conn = new PacketConn(raw, { timeoutMs });
    const greeting = await guard(conn, async () => {
      const sink = new MemorySink();
      await receiveFile(conn, sink, { maxBytes: MAX_GREETING_BYTES });
      return decoder.decode(sink.bytes());
    });
    return new FsdClient(conn, greeting);
  }

  /** Downloads `remote` into `sink`; returns the byte count. */
  download(remote: string, sink: ByteSink, options: TransferOptions = {}): Promise<number> {
    return guard(this.#conn, async () => {
      await this.#conn.write(encodeRequest(Opcode.RRQ, remote));
      return await receiveFile(this.#conn, sink, options);
    });
  }

  /** Uploads `source` as `remote`; returns the byte count. */
  upload(remote: string, source: ByteSource, options: TransferOptions = {}): Promise<number> {
    return guard(this.#conn, async () => {
      await this.#conn.write(encodeRequest(Opcode.WRQ, remote));
      await expectAck(this.#conn, 0);
      return await sendFile(this.#conn, source, options);
    });
  }

  /** The listing of `directory` ("" for the served directory itself). */
  async list(directory = ""): Promise<ListingEntry[]> {
    const bytes = await guard(this.#conn, async () => {
      await this.#conn.write(directory === "" ? encodeDrq() : encodeRequest(Opcode.RRQ, directory));
      const sink = new MemorySink();
      await receiveFile(this.#conn, sink, { maxBytes: MAX_LISTING_BYTES });
      return sink.bytes();
    });
    try {
      return parseListing(decoder.decode(bytes));
    } catch {
      throw new Error(`not a directory: ${directory}`);
    }
  }

  close(): void {
    this.#conn.close();
  }
}

/** Runs one exchange; on anything but the server's refusal the connection is closed. */
async function guard<T>(conn: PacketConn, exchange: () => Promise<T>): Promise<T> {
  if (conn.closed) throw new Deno.errors.NotConnected("connection is closed");
  try {
    return await exchange();
  } catch (error) {
    if (!(error instanceof PeerError)) {
      if (error instanceof ProtocolError) {
        await conn.sendError(error.code, error.message);
      } else if (
        !(error instanceof Deno.errors.TimedOut) && !(error instanceof Deno.errors.UnexpectedEof)
      ) {
        await conn.sendError(
          ErrorCode.OTHER,
          error instanceof Error ? error.message : String(error),
        );
      }
      conn.close();
    }
    throw error;
  }
}

async function connectWithTimeout(
  hostname: string,
  port: number,
  timeoutMs: number,
): Promise<Deno.TcpConn> {
  const abort = new AbortController();
  const timer = timeoutMs > 0 ? setTimeout(() => abort.abort(), timeoutMs) : undefined;
  try {
    return await Deno.connect({ hostname, port, signal: abort.signal });
  } catch (error) {
    if (abort.signal.aborted) {
      throw new Deno.errors.TimedOut(`timed out connecting to ${hostname} port ${port}`);
    }
    throw error;
  } finally {
    clearTimeout(timer);
  }
}
