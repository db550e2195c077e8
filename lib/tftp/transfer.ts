/**
 * One TFTP transfer on the server: a request checked, the file opened or
 * staged through the FileStore, options granted, the blocks moved on the
 * transfer's own socket, and one outcome logged.
 */

import type { ByteSink, ByteSource } from "../bytes/source_sink.ts";
import { ErrorCode, ProtocolError } from "../store/errors.ts";
import type { Files } from "../store/access.ts";
import type { StagedWrite } from "../store/file_store.ts";
import type { ServerEvent } from "../store/log.ts";
import { parseName } from "../store/sandbox.ts";
import { encodeAck, encodeOack, Opcode, type Request } from "./codec.ts";
import { NetasciiSink, netasciiSource } from "./netascii.ts";
import {
  type Asked,
  grant,
  parseAsked,
  type ServerLimits,
  type TransferParams,
} from "./options.ts";
import { awaitAckZero, dally, receiveFile, sendFile } from "./blocks.ts";
import type { DatagramChannel } from "./channel.ts";
import type { OptionPairs } from "../net/option_pairs.ts";
import type { SendJob, SendOutcome } from "./send_pool.ts";
import { type Failure, settleFailure, shutDown } from "./failure.ts";

export interface TransferContext {
  /** The files for this client: the access model's anonymous view (its own subdirectory with per-client roots). */
  store: () => Promise<Files>;
  limits: ServerLimits;
  retries: number;
  /** Longest wait for the client's first answer, whatever the timeout and retries. */
  firstAnswerMs: number;
  noUpload: boolean;
  log: (event: ServerEvent) => void;
  /** Whether the server is shutting down (a closed socket then means "shutdown"). */
  stopping: () => boolean;
  /**
   * Runs a download on a thread of its own (lib/tftp/send_pool.ts), where
   * one is free and the download may go there; else undefined, and it runs
   * here. `job` lacks the transfer's `id`, which the pool gives.
   */
  offload?: (job: Omit<SendJob, "id">, started: (abort: () => boolean) => void) =>
    | Promise<SendOutcome>
    | undefined;
}

/** Downloads smaller than this stay on the event loop: a thread's hand-off would cost more. */
export const MIN_OFFLOAD_BYTES = 1 << 20;

const SLASH = 0x2f;
const BACKSLASH = 0x5c;

/**
 * The name rules for TFTP: Windows clients' backslashes become slashes and
 * leading slashes are dropped (boot loaders ask for "/pxelinux.0"), then
 * every fsd rule applies to the result: no "..", no empty part, so neither
 * can lead outside the root.
 */
export function tftpName(raw: Uint8Array): string {
  const mapped = raw.map((byte) => byte === BACKSLASH ? SLASH : byte);
  let start = 0;
  while (start < mapped.length && mapped[start] === SLASH) start++;
  const name = parseName(mapped.subarray(start));
  if (name === "") throw new ProtocolError(ErrorCode.ACCESS_VIOLATION, "empty file name");
  return name;
}

export class Transfer {
  readonly #channel: DatagramChannel;
  readonly #request: Request;
  readonly #context: TransferContext;
  readonly #id: number;
  readonly #started = performance.now();
  #name = "";
  #dataMoved = false;
  /** Whether a sender thread ran the download. */
  #offloaded = false;
  /** Stops the download handed to another thread; true if that thread tells the peer. */
  #abortOffloaded: (() => boolean) | undefined;
  /** When the client's first answer is overdue (a channel.now() time). */
  #firstAnswerBy = Infinity;

  constructor(id: number, channel: DatagramChannel, request: Request, context: TransferContext) {
    this.#id = id;
    this.#channel = channel;
    this.#request = request;
    this.#context = context;
  }

  get #op(): "RRQ" | "WRQ" {
    return this.#request.op === Opcode.RRQ ? "RRQ" : "WRQ";
  }

  /** Stops the transfer now (shutdown): the peer hears ERROR 0. */
  abort(): void {
    if (!this.#abortOffloaded?.()) shutDown(this.#channel);
  }

  /** Serves the request to its end; never throws. */
  async run(): Promise<void> {
    this.#name = new TextDecoder().decode(this.#request.name);
    this.#firstAnswerBy = this.#channel.now() + this.#context.firstAnswerMs;
    try {
      const name = tftpName(this.#request.name);
      const asked = parseAsked(this.#request.options);
      const { bytes, params, linger } = this.#request.op === Opcode.RRQ
        ? await this.#serveRead(name, asked)
        : await this.#serveWrite(name, asked);
      this.#logRequest({
        outcome: "ok",
        kind: "file",
        bytes,
        blksize: params.blockSize,
        windowsize: params.windowSize,
        ackevery: params.ackEvery,
        thread: this.#offloaded ? "sender" : undefined,
      });
      await linger?.();
    } catch (error) {
      this.#fail(error);
    } finally {
      this.#channel.close();
    }
  }

  async #serveRead(name: string, asked: Asked) {
    const descriptor = this.#context.offload !== undefined && this.#request.mode !== "netascii";
    const file = await (await this.#context.store()).openRead(name, { descriptor });
    try {
      if (file.kind !== "file") {
        throw new ProtocolError(ErrorCode.ACCESS_VIOLATION, `not a regular file: ${name}`);
      }
      const netascii = this.#request.mode === "netascii";
      // tsize is the size on the wire: unknown for netascii without reading the file twice.
      const size = netascii ? undefined : file.size;
      if (!netascii && file.descriptor !== undefined && file.size >= MIN_OFFLOAD_BYTES) {
        // A sender thread may take a larger sliding window; granted anew if none takes it.
        const { params, oack } = grant(asked, this.#context.limits, size, true);
        const bytes = await this.#offload(file.descriptor, params, oack.length ? oack : undefined);
        if (bytes !== undefined) return { bytes, params, linger: undefined };
      }
      const { params, oack } = grant(asked, this.#context.limits, size);
      const answered = oack.length > 0;
      if (answered) {
        await awaitAckZero(
          this.#channel,
          encodeOack(oack),
          this.#config(params),
          this.#firstAnswerBy,
        );
      }
      this.#dataMoved = true;
      const source: ByteSource = netascii ? netasciiSource(file.source) : file.source;
      const config = {
        ...this.#config(params),
        firstAnswerBy: answered ? undefined : this.#firstAnswerBy,
      };
      const bytes = await sendFile(this.#channel, source, config);
      return { bytes, params, linger: undefined };
    } finally {
      file.close();
    }
  }

  async #serveWrite(name: string, asked: Asked) {
    if (this.#context.noUpload) {
      throw new ProtocolError(ErrorCode.ACCESS_VIOLATION, "uploads are disabled on this server");
    }
    const store = await this.#context.store();
    const staged: StagedWrite = await store.stageWrite(name, asked.transferSize);
    try {
      const { params, oack } = grant(asked, this.#context.limits, asked.transferSize);
      const reply = oack.length > 0 ? encodeOack(oack) : encodeAck(0);
      this.#channel.send(reply);
      this.#dataMoved = true;
      const netascii = this.#request.mode === "netascii" ? new NetasciiSink(staged.sink) : null;
      const sink: ByteSink = netascii ?? staged.sink;
      const maxBytes = store.maxUploadBytes;
      const { bytes, finalAck } = await receiveFile(
        this.#channel,
        sink,
        { ...this.#config(params), reply, maxBytes, firstAnswerBy: this.#firstAnswerBy },
        async () => {
          await netascii?.finish();
          await staged.commit();
        },
      );
      // Answers a repeated last block (our ACK lost) for one timeout, after the outcome is logged.
      const linger = () => dally(this.#channel, finalAck, params.timeoutMs);
      return { bytes, params, linger };
    } finally {
      await staged.discard();
    }
  }

  /**
   * The download on a sender thread, if one takes it: its bytes, or the
   * failure it met thrown as `Offloaded` (the thread told the peer);
   * undefined if none took it (it runs here). The thread's own socket is
   * the transfer's ID: this thread's is never used for it.
   */
  async #offload(
    fd: number,
    params: TransferParams,
    oack: OptionPairs | undefined,
  ): Promise<number | undefined> {
    const outcome = await this.#context.offload?.({
      fd,
      peer: this.#channel.peer,
      params,
      oack: oack && encodeOack(oack),
      retries: this.#context.retries,
      firstAnswerMs: this.#firstAnswerBy - this.#channel.now(),
    }, (abort) => this.#abortOffloaded = abort);
    this.#abortOffloaded = undefined;
    if (!outcome || "unavailable" in outcome) return undefined;
    this.#offloaded = true;
    this.#dataMoved = outcome.dataMoved;
    if ("bytes" in outcome) return outcome.bytes;
    throw new Offloaded(outcome.failure);
  }

  #config(params: TransferParams) {
    return { params, retries: this.#context.retries };
  }

  #fail(error: unknown): void {
    const failure = error instanceof Offloaded
      ? error.failure
      : settleFailure(error, this.#channel, this.#context.stopping());
    // An error before any data moved refused the request; anything else closed a transfer.
    const refused = !this.#dataMoved &&
      (failure.reason === "error" || failure.reason === "failure");
    if (refused) {
      this.#logRequest({
        outcome: "refused",
        bytes: 0,
        code: failure.code,
        message: failure.message,
      });
    } else this.#logClose(failure);
  }

  #logRequest(
    fields: {
      outcome: "ok" | "refused";
      bytes: number;
      kind?: "file";
      blksize?: number;
      windowsize?: number;
      ackevery?: number;
      thread?: "sender";
      code?: number;
      message?: string;
    },
  ): void {
    this.#context.log({
      event: "request",
      id: this.#id,
      op: this.#op,
      name: this.#name,
      ms: Math.round(performance.now() - this.#started),
      ...fields,
    });
  }

  #logClose(fields: Failure): void {
    this.#context.log({
      event: "close",
      id: this.#id,
      op: this.#op,
      name: this.#name,
      ms: Math.round(performance.now() - this.#started),
      ...fields,
    });
  }
}

/** A download on a sender thread that failed there: the peer was told already. */
class Offloaded extends Error {
  readonly failure: Failure;
  constructor(failure: Failure) {
    super(failure.message ?? failure.reason);
    this.failure = failure;
  }
}
