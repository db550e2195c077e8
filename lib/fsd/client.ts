/**
 * The fsd/1 client: one connection, greeted, then any number of requests.
 *
 * A request the server refuses throws PeerError and the connection stays
 * usable. Anything else (a violation by the server, a timeout, a local
 * failure) sends ERR when it can and closes the connection.
 */

import { ErrorCode, OptionsRefusedError, PeerError, ProtocolError } from "../store/errors.ts";
import { type ListingEntry, parseListing } from "../store/listing.ts";
import { PacketConn } from "./packet_conn.ts";
import {
  FSD1,
  type Granted,
  optPairs,
  readOack,
  type TransferParams,
  type Wanted,
} from "./negotiation.ts";
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
import { hashingSink, hashingSource, type Sha256, sha256For } from "../bytes/sha256.ts";
import { connectWithTimeout } from "../net/connect.ts";
import { connectTls } from "../net/tls.ts";
import { DigestCheck } from "./integrity.ts";
import type {
  ClientConfig,
  DownloadOptions,
  TransferResult,
  UploadOptions,
} from "./client_types.ts";

export type {
  ClientConfig,
  ClientTransferOptions,
  DownloadOptions,
  TransferResult,
  UploadOptions,
} from "./client_types.ts";
import { expectAck, receiveFile, sendFile } from "./window.ts";
import { GREETING_TIMEOUT_MS, readFirstBytes } from "./greeting.ts";

function isFsd1(params: TransferParams): boolean {
  return params.blockSize === FSD1.blockSize && params.windowSize === FSD1.windowSize;
}

/** Largest greeting and listing kept in memory. */
const MAX_GREETING_BYTES = 4096;
const MAX_LISTING_BYTES = 64 * 1024 * 1024;

const decoder = new TextDecoder();

/** A sink that drops everything (a directory's listing read only to keep the connection). */
const DISCARD: ByteSink = { write: (bytes) => Promise.resolve(bytes.length) };

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
    const greetingMs = Math.min(
      config.greetingTimeoutMs ?? GREETING_TIMEOUT_MS,
      timeoutMs || Infinity,
    );
    let first: Uint8Array;
    try {
      first = await readFirstBytes(raw, greetingMs);
    } catch (error) {
      try {
        raw.close();
      } catch {
        // closed by the timeout
      }
      throw error;
    }
    const conn = new PacketConn(raw, { timeoutMs, tap: config.tap });
    conn.unread(first);
    const greeting = await guard(conn, async () => {
      const sink = new MemorySink();
      await receiveFile(conn, sink, { maxBytes: MAX_GREETING_BYTES });
      return decoder.decode(sink.bytes());
    });
    return new FsdClient(conn, greeting);
  }

  /** Whether the connection is gone (after a failure); a refusal keeps it. */
  get closed(): boolean {
    return this.#conn.closed;
  }

  /**
   * Downloads `remote` into `sink`. With `params` other than fsd/1's, asks for
   * them first (the server may lower them), for the size, which `onSize`
   * hears before any data, and for what `options` ask.
   */
  async download(remote: string, sink: ByteSink, options: DownloadOptions = {}): Promise<number> {
    return (await this.fetchFile(remote, sink, options)).bytes;
  }

  /** As `download`, telling what the server said of the file and its digest. */
  fetchFile(
    remote: string,
    sink: ByteSink,
    options: DownloadOptions = {},
  ): Promise<TransferResult> {
    return guard(this.#conn, async () => {
      const request = encodeRequest(Opcode.RRQ, remote);
      const wanted = options.params ?? FSD1;
      let hash: Sha256 | undefined;
      if (isFsd1(wanted)) {
        await this.#conn.write(request);
        hash = options.wantDigest ? sha256For(undefined) : undefined;
        const bytes = await receiveFile(this.#conn, hashingSink(sink, hash), options);
        return { bytes, offset: 0, sha256: await hash?.digest(), verified: false };
      }
      const granted = await this.#negotiate(wanted, request, {
        transferSize: 0,
        sha256: options.integrity,
        kind: options.expectFile,
        mtime: options.resume?.mtime ?? (options.wantMtime ? 0 : undefined),
        offset: options.resume?.offset,
      }, options.integrity);
      if (options.expectFile && granted.kind === "listing") {
        await this.#conn.write(encodeAck(0));
        await receiveFile(this.#conn, DISCARD, { params: granted, maxBytes: MAX_LISTING_BYTES });
        throw new Deno.errors.IsADirectory(`${remote} is a directory`);
      }
      await options.onGranted?.(granted);
      if (granted.size !== undefined) options.onSize?.(granted.size);
      const offset = granted.offset ?? 0;
      if (granted.sha256 || options.wantDigest) hash = sha256For(granted.size);
      if (hash && offset > 0) await options.resume?.hashPrefix(hash);
      await this.#conn.write(encodeAck(0));
      const check = hash && new DigestCheck(hash, "server");
      try {
        const bytes = await receiveFile(this.#conn, hashingSink(sink, hash), {
          ...options,
          params: granted,
          checkDigest: granted.sha256 ? check?.check : undefined,
        });
        const { size, mtime } = granted;
        return {
          bytes,
          offset,
          size,
          mtime,
          sha256: await check?.final(),
          verified: !!check?.verified,
        };
      } finally {
        hash?.close();
      }
    });
  }

  /**
   * Uploads `source` as `remote`. With `params` other than fsd/1's, asks for
   * them first, telling `size` when known so the server can refuse a
   * too-large upload before any data moves.
   */
  async upload(
    remote: string,
    source: ByteSource,
    options: UploadOptions = {},
  ): Promise<number> {
    return (await this.storeFile(remote, source, options)).bytes;
  }

  /** As `upload`, telling the digest sent. */
  storeFile(
    remote: string,
    source: ByteSource,
    options: UploadOptions = {},
  ): Promise<TransferResult> {
    return guard(this.#conn, async () => {
      const request = encodeRequest(Opcode.WRQ, remote);
      const wanted = options.params ?? FSD1;
      if (isFsd1(wanted)) {
        await this.#conn.write(request);
        await expectAck(this.#conn, 0);
        const bytes = await sendFile(this.#conn, source, options);
        return { bytes, offset: 0, verified: false };
      }
      const granted = await this.#negotiate(wanted, request, {
        transferSize: options.size,
        sha256: options.integrity,
      }, options.integrity);
      if (!granted.sha256) {
        const bytes = await sendFile(this.#conn, source, { ...options, params: granted });
        return { bytes, offset: 0, verified: false };
      }
      const hash = sha256For(options.size);
      let sha256: Uint8Array | undefined;
      try {
        const bytes = await sendFile(this.#conn, hashingSource(source, hash), {
          ...options,
          params: granted,
          digest: async () => sha256 = await hash.digest(),
        });
        return { bytes, offset: 0, sha256, verified: true };
      } finally {
        hash.close();
      }
    });
  }

  /**
   * Creates the directory `remote` on the server (the extension's mkdir);
   * an existing name is PeerError 6, as for files.
   */
  makeDirectory(remote: string): Promise<void> {
    return guard(this.#conn, async () => {
      const granted = await this.#negotiate(FSD1, encodeRequest(Opcode.WRQ, remote), {
        mkdir: true,
      });
      if (!granted.mkdir) {
        throw new ProtocolError(ErrorCode.OTHER, "the server cannot create directories");
      }
    });
  }

  /** Sends OPT with `request` and reads what the server granted. */
  async #negotiate(
    params: TransferParams,
    request: Uint8Array,
    wanted: Wanted,
    integrity = false,
  ): Promise<Granted> {
    await this.#conn.write(concat(encodeOptions(Opcode.OPT, optPairs(params, wanted)), request));
    const granted = readOack(params, await this.#expectOack());
    if (granted.sha256 && !integrity) {
      throw new ProtocolError(
        ErrorCode.OPTION_REFUSED,
        "option negotiation failed: unasked sha256",
      );
    }
    return granted;
  }

  /** The server's OACK; its ERR (a refusal) is a PeerError, anything else a violation. */
  async #expectOack(): Promise<OptionPairs> {
    const packet = await this.#conn.readPacket();
    if (packet?.op === Opcode.OACK) return packet.options;
    if (packet?.op === Opcode.ERR) {
      // ERR 4 to OPT: a server that knows only fsd/1 (it has closed the connection).
      if (packet.code === ErrorCode.ILLEGAL_OPERATION) {
        this.#conn.close();
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

  /**
   * The listing of `directory` ("" for the served directory itself). With
   * `digests`, asks (with the extension) for each file's SHA-256 too.
   */
  async list(directory = "", options: { digests?: boolean } = {}): Promise<ListingEntry[]> {
    const bytes = await guard(this.#conn, async () => {
      const request = directory === "" ? encodeDrq() : encodeRequest(Opcode.RRQ, directory);
      const sink = new MemorySink();
      if (!options.digests) {
        await this.#conn.write(request);
        await receiveFile(this.#conn, sink, { maxBytes: MAX_LISTING_BYTES });
        return sink.bytes();
      }
      const granted = await this.#negotiate(FSD1, request, { kind: true, digests: true });
      if (granted.kind === "file") {
        throw new ProtocolError(ErrorCode.OTHER, `not a directory: ${directory}`);
      }
      if (!granted.digests) {
        throw new ProtocolError(ErrorCode.OTHER, "the server does not list digests");
      }
      await this.#conn.write(encodeAck(0));
      await receiveFile(this.#conn, sink, { params: granted, maxBytes: MAX_LISTING_BYTES });
      return sink.bytes();
    });
    try {
      return parseListing(decoder.decode(bytes), options.digests);
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
    // A refusal, or a directory where a file was expected (its listing was read): still usable.
    if (!(error instanceof PeerError) && !(error instanceof Deno.errors.IsADirectory)) {
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
