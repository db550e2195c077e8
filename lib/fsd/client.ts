/**
 * The fsd/1 client: one connection, greeted, then any number of requests.
 *
 * A request the server refuses throws PeerError and the connection stays
 * usable. Anything else (a violation by the server, a timeout, a local
 * failure) sends ERR when it can and closes the connection.
 */

import { ErrorCode, OptionsRefusedError, PeerError, ProtocolError } from "../store/errors.ts";
import { type ListingEntry, parseListing } from "../store/listing.ts";
import { type ConnTap, PacketConn } from "./packet_conn.ts";
import { FSD1, optPairs, readOack, type TransferParams } from "./negotiation.ts";
import {
  encodeAck,
  encodeDrq,
  encodeOptions,
  encodeRequest,
  Opcode,
  type OptionPairs,
} from "./codec.ts";
import {
  type ByteSink,
  type ByteSource,
  concat,
  errorMessage,
  MemorySink,
} from "../bytes/source_sink.ts";
import { connectWithTimeout } from "../net/connect.ts";
import { connectTls, type TlsClientConfig } from "../net/tls.ts";
import { expectAck, receiveFile, sendFile, type TransferOptions } from "./window.ts";

export interface ClientConfig {
  /** Give up when the server has said nothing for this long (default 60 s; 0 never). */
  timeoutMs?: number;
  /** Sees the connection's bytes (tracing, capture files). */
  tap?: ConnTap;
  /** Connect with TLS, verifying the server's certificate so (lib/net/tls.ts). */
  tls?: TlsClientConfig;
}

export interface ClientTransferOptions extends TransferOptions {
  /** The transfer size, when the server tells it (downloads with options). */
  onSize?: (bytes: number) => void;
}

function isFsd1(params: TransferParams): boolean {
  return params.blockSize === FSD1.blockSize && params.windowSize === FSD1.windowSize;
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
    config: ClientConfig = {},
  ): Promise<FsdClient> {
    const timeoutMs = config.timeoutMs ?? 60_000;
    const raw = config.tls
      ? await connectTls({ hostname, port, timeoutMs, ...config.tls })
      : await connectWithTimeout({ hostname, port, timeoutMs });
    const conn = new PacketConn(raw, { timeoutMs, tap: config.tap });
    const greeting = await guard(conn, async () => {
      const sink = new MemorySink();
      await receiveFile(conn, sink, { maxBytes: MAX_GREETING_BYTES });
      return decoder.decode(sink.bytes());
    });
    return new FsdClient(conn, greeting);
  }

  /**
   * Downloads `remote` into `sink`; returns the byte count. With `params`
   * other than fsd/1's, asks for them first (the server may lower them) and
   * for the size, which `onSize` hears before any data.
   */
  download(remote: string, sink: ByteSink, options: ClientTransferOptions = {}): Promise<number> {
    return guard(this.#conn, async () => {
      const request = encodeRequest(Opcode.RRQ, remote);
      const wanted = options.params ?? FSD1;
      if (isFsd1(wanted)) {
        await this.#conn.write(request);
        return await receiveFile(this.#conn, sink, options);
      }
      const granted = await this.#negotiate(wanted, request, 0);
      if (granted.size !== undefined) options.onSize?.(granted.size);
      await this.#conn.write(encodeAck(0));
      return await receiveFile(this.#conn, sink, { ...options, params: granted });
    });
  }

  /**
   * Uploads `source` as `remote`; returns the byte count. With `params`
   * other than fsd/1's, asks for them first, telling `size` when known so
   * the server can refuse a too-large upload before any data moves.
   */
  upload(
    remote: string,
    source: ByteSource,
    options: ClientTransferOptions & { size?: number } = {},
  ): Promise<number> {
    return guard(this.#conn, async () => {
      const request = encodeRequest(Opcode.WRQ, remote);
      const wanted = options.params ?? FSD1;
      if (isFsd1(wanted)) {
        await this.#conn.write(request);
        await expectAck(this.#conn, 0);
        return await sendFile(this.#conn, source, options);
      }
      const granted = await this.#negotiate(wanted, request, options.size);
      return await sendFile(this.#conn, source, { ...options, params: granted });
    });
  }

  /** Sends OPT with `request` and reads what the server granted. */
  async #negotiate(
    wanted: TransferParams,
    request: Uint8Array,
    transferSize: number | undefined,
  ): Promise<TransferParams & { size?: number }> {
    await this.#conn.write(
      concat(encodeOptions(Opcode.OPT, optPairs(wanted, transferSize)), request),
    );
    return readOack(wanted, await this.#expectOack());
  }

  /** The server's OACK; its ERR (a refusal) is a PeerError, anything else a violation. */
  async #expectOack(): Promise<OptionPairs> {
    const packet = await this.#conn.readPacket();
    if (packet?.op === Opcode.OACK) return packet.options;
    if (packet?.op === Opcode.ERR) {
      // ERR 4 to OPT: a server that knows only fsd/1 (it has closed the connection).
      if (packet.code === ErrorCode.ILLEGAL_OPERATION) {
        throw new OptionsRefusedError(packet.code, packet.message);
      }
      throw new PeerError(packet.code, packet.message);
    }
    if (packet === null) {
      throw new Deno.errors.UnexpectedEof("connection closed while waiting for OACK");
    }
    throw new ProtocolError(ErrorCode.ILLEGAL_OPERATION, `unexpected packet: expected OACK`);
  }

  /**
   * Logs in (a server with accounts; docs/PROTOCOL.md, "Login"): before any
   * request. A wrong pair is PeerError 7, and the connection stays usable.
   */
  login(user: string, password: string): Promise<void> {
    return guard(this.#conn, async () => {
      await this.#conn.write(encodeOptions(Opcode.OPT, { user, password }));
      const oack = await this.#expectOack();
      if (oack.user !== user) {
        throw new ProtocolError(ErrorCode.ILLEGAL_OPERATION, "unexpected OACK: not a login's");
      }
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
          errorMessage(error),
        );
      }
      conn.close();
    }
    throw error;
  }
}
