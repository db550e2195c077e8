/**
 * The fsd/1 client: one connection, greeted, then any number of requests.
 *
 * A request the server refuses throws PeerError and the connection stays
 * usable. Anything else (a violation by the server, a timeout, a local
 * failure) sends ERR when it can and closes the connection.
 */

import { type ByteSink, type ByteSource, MemorySink } from "../bytes/source_sink.ts";
import { hasherFor, hashingSink, hashingSource, sha256For } from "../bytes/sha256.ts";
import { ErrorCode, ProtocolError } from "../store/errors.ts";
import { type ListingEntry, parseListing } from "../store/listing_lines.ts";
import type {
  ClientConfig,
  DownloadOptions,
  TransferResult,
  UploadOptions,
} from "./client_types.ts";
import { encodeAck, encodeDrq, encodeOptions, encodeRequest, Opcode } from "./codec.ts";
import { askFor, expectOack, guard, negotiate, openGreeted, readGranted } from "./exchange.ts";
import { NotAnswered, Pipeline } from "./pipeline.ts";
import { DigestCheck } from "./integrity.ts";
import { FSD1, type TransferParams } from "./negotiation.ts";
import type { PacketConn } from "./packet_conn.ts";
import { expectAck, receiveFile, sendFile } from "./window.ts";
import { optionRecord } from "../net/option_pairs.ts";

export type {
  ClientConfig,
  ClientTransferOptions,
  DownloadOptions,
  TransferResult,
  UploadOptions,
} from "./client_types.ts";

function isFsd1(params: TransferParams): boolean {
  return params.blockSize === FSD1.blockSize && params.windowSize === FSD1.windowSize;
}

/** Largest listing kept in memory. */
const MAX_LISTING_BYTES = 64 * 1024 * 1024;

const decoder = new TextDecoder();

/** A sink that drops everything (a directory's listing read only to keep the connection). */
const DISCARD: ByteSink = { write: (bytes) => Promise.resolve(bytes.length) };

export class FsdClient {
  /** The server's greeting text. */
  readonly greeting: string;
  #conn: PacketConn;
  /** The order of exchanges on the connection; reads sent ahead where the server pipelines. */
  #pipeline: Pipeline;

  private constructor(conn: PacketConn, greeting: string) {
    this.#conn = conn;
    this.#pipeline = new Pipeline(conn);
    this.greeting = greeting;
  }

  /** Connects and takes the greeting. */
  static async connect(
    hostname: string,
    port: number,
    config: ClientConfig = {},
  ): Promise<FsdClient> {
    const { conn, greeting } = await openGreeted(hostname, port, config);
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
    const request = encodeRequest(Opcode.RRQ, remote);
    const wanted = options.params ?? FSD1;
    if (isFsd1(wanted)) {
      return this.#exchange(async () => {
        await this.#conn.write(request);
        const hash = options.wantDigest ? sha256For(undefined) : undefined;
        const bytes = await receiveFile(this.#conn, hashingSink(sink, hash), {
          ...options,
          holdLastAck: true,
        });
        const digest = await hash?.digest();
        return { bytes, offset: 0, ...(digest && { checksum: "sha256", digest }), verified: false };
      });
    }
    const asks = {
      transferSize: 0,
      checksum: options.integrity,
      kind: options.expectFile,
      mtime: options.resume?.mtime ?? (options.wantMtime ? 0 : undefined),
      offset: options.resume?.offset,
      eager: true,
      pipeline: true,
    };
    const ask = askFor(wanted, request, asks);
    return this.#pipeline.read(ask, (ahead) =>
      guard(this.#conn, async () => {
        const granted = await readGranted(this.#conn, wanted, asks).catch((error) => {
          // The server closed before any of this answer (between answers: an earlier file's
          // failure, a shutdown): a request sent ahead is then not answered, to be asked again.
          throw ahead && error instanceof Deno.errors.UnexpectedEof ? new NotAnswered() : error;
        });
        this.#pipeline.learned(granted.pipeline, ahead);
        // Pipelined, no ACK at all; eager, no ACK 0; else ACK 0 accepts the OACK.
        const unacknowledged = granted.pipeline;
        const acceptOack = () =>
          granted.eager || unacknowledged ? undefined : this.#conn.write(encodeAck(0));
        if (options.expectFile && granted.kind === "listing") {
          await acceptOack();
          await receiveFile(this.#conn, DISCARD, {
            params: granted,
            maxBytes: MAX_LISTING_BYTES,
            holdLastAck: true,
            unacknowledged,
          });
          throw new Deno.errors.IsADirectory(`${remote} is a directory`);
        }
        await options.onGranted?.(granted);
        if (granted.size !== undefined) options.onSize?.(granted.size);
        const offset = granted.offset ?? 0;
        const checksum = granted.checksum ?? (options.wantDigest ? "sha256" : undefined);
        const hash = checksum ? hasherFor(checksum, granted.size) : undefined;
        try {
          if (hash && offset > 0) await options.resume?.hashPrefix(hash);
          await acceptOack();
          const check = checksum && hash && new DigestCheck(checksum, hash, "server");
          const bytes = await receiveFile(this.#conn, hashingSink(sink, hash), {
            ...options,
            params: granted,
            sum: granted.checksum ? check || undefined : undefined,
            holdLastAck: true,
            unacknowledged,
          });
          const { size, mtime } = granted;
          return {
            bytes,
            offset,
            size,
            mtime,
            ...(check && { checksum: check.name, digest: await check.final() }),
            verified: !!check && check.verified,
          };
        } finally {
          hash?.close();
        }
      }));
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
    return this.#exchange(async () => {
      const request = encodeRequest(Opcode.WRQ, remote);
      const wanted = options.params ?? FSD1;
      if (isFsd1(wanted)) {
        await this.#conn.write(request);
        await expectAck(this.#conn, 0);
        const bytes = await sendFile(this.#conn, source, options);
        return { bytes, offset: 0, verified: false };
      }
      const granted = await negotiate(this.#conn, wanted, request, {
        transferSize: options.size,
        checksum: options.integrity,
        mtime: options.mtime,
      });
      await options.onGranted?.(granted);
      const checksum = granted.checksum;
      if (!checksum) {
        const bytes = await sendFile(this.#conn, source, { ...options, params: granted });
        return { bytes, offset: 0, verified: false };
      }
      const hash = hasherFor(checksum, options.size);
      let digest: Uint8Array | undefined;
      try {
        const bytes = await sendFile(this.#conn, hashingSource(source, hash), {
          ...options,
          params: granted,
          digest: async () => digest = await hash.digest(),
        });
        return { bytes, offset: 0, checksum, digest, verified: true };
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
    return this.#exchange(async () => {
      const granted = await negotiate(this.#conn, FSD1, encodeRequest(Opcode.WRQ, remote), {
        mkdir: true,
      });
      if (!granted.mkdir) {
        throw new ProtocolError(ErrorCode.OTHER, "the server cannot create directories");
      }
    });
  }

  /**
   * Logs in (a server with accounts; docs/PROTOCOL.md, "Login"): before any
   * request. A wrong pair is PeerError 7, and the connection stays usable.
   */
  login(user: string, password: string): Promise<void> {
    return this.#exchange(async () => {
      await this.#conn.write(encodeOptions(Opcode.OPT, [["user", user], ["password", password]]));
      const oack = await expectOack(this.#conn);
      if (optionRecord(oack).user !== user) {
        throw new ProtocolError(ErrorCode.ILLEGAL_OPERATION, "unexpected OACK: not a login's");
      }
    });
  }

  /**
   * The listing of `directory` ("" for the served directory itself). With
   * `digests`, asks (with the extension) for each file's SHA-256 too.
   */
  async list(directory = "", options: { digests?: boolean } = {}): Promise<ListingEntry[]> {
    const bytes = await this.#exchange(async () => {
      const request = directory === "" ? encodeDrq() : encodeRequest(Opcode.RRQ, directory);
      const sink = new MemorySink();
      if (!options.digests) {
        await this.#conn.write(request);
        await receiveFile(this.#conn, sink, { maxBytes: MAX_LISTING_BYTES, holdLastAck: true });
        return sink.bytes();
      }
      const granted = await negotiate(this.#conn, FSD1, request, {
        kind: true,
        digests: true,
        eager: true,
      });
      if (granted.kind === "file") {
        throw new ProtocolError(ErrorCode.OTHER, `not a directory: ${directory}`);
      }
      if (!granted.digests) {
        throw new ProtocolError(ErrorCode.OTHER, "the server does not list digests");
      }
      if (!granted.eager) await this.#conn.write(encodeAck(0));
      await receiveFile(this.#conn, sink, {
        params: granted,
        maxBytes: MAX_LISTING_BYTES,
        holdLastAck: true,
      });
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

  /** One exchange alone in its turn, guarded (a refusal keeps the connection; the rest closes it). */
  #exchange<T>(exchange: () => Promise<T>): Promise<T> {
    return this.#pipeline.alone(() => guard(this.#conn, exchange));
  }
}
