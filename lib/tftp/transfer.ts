/**
 * One TFTP transfer on the server: a request checked, the file opened or
 * staged through the FileStore, options granted, the blocks moved on the
 * transfer's own socket, and one outcome logged.
 */

import type { ByteSink, ByteSource } from "../bytes/source_sink.ts";
import { errorMessage } from "../bytes/source_sink.ts";
import { ErrorCode, PeerError, ProtocolError } from "../store/errors.ts";
import type { Files } from "../store/access.ts";
import type { StagedWrite } from "../store/file_store.ts";
import type { ServerEvent } from "../store/log.ts";
import { parseName } from "../store/sandbox.ts";
import { encodeAck, encodeError, encodeOack, Opcode, type Request } from "./codec.ts";
import { NetasciiSink, netasciiSource } from "./netascii.ts";
import {
  type Asked,
  grant,
  parseAsked,
  type ServerLimits,
  type TransferParams,
} from "./options.ts";
import { checkFirstAnswer, dally, parseFromPeer, receiveFile, sendFile } from "./blocks.ts";
import type { DatagramChannel } from "./channel.ts";

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
}

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
    this.#channel.send(encodeError(ErrorCode.OTHER, "server shutting down"));
    this.#channel.close();
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
      });
      await linger?.();
    } catch (error) {
      this.#fail(error);
    } finally {
      this.#channel.close();
    }
  }

  async #serveRead(name: string, asked: Asked) {
    const file = await (await this.#context.store()).openRead(name);
    try {
      if (file.kind !== "file") {
        throw new ProtocolError(ErrorCode.ACCESS_VIOLATION, `not a regular file: ${name}`);
      }
      const netascii = this.#request.mode === "netascii";
      // tsize is the size on the wire: unknown for netascii without reading the file twice.
      const { params, oack } = grant(asked, this.#context.limits, netascii ? undefined : file.size);
      const answered = oack.length > 0;
      if (answered) await this.#awaitAckZero(encodeOack(oack), params);
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

  #config(params: TransferParams) {
    return { params, retries: this.#context.retries };
  }

  /** Sends the OACK until the client answers ACK 0. */
  async #awaitAckZero(oack: Uint8Array, params: TransferParams): Promise<void> {
    for (let tries = 0; tries <= this.#context.retries; tries++) {
      this.#channel.send(oack);
      const deadline = Math.min(this.#channel.now() + params.timeoutMs, this.#firstAnswerBy);
      for (;;) {
        const bytes = await this.#channel.receive(deadline);
        if (bytes === null) {
          checkFirstAnswer(this.#channel, this.#firstAnswerBy);
          break;
        }
        const packet = parseFromPeer(bytes, 0);
        if (packet.op === Opcode.ACK && packet.block === 0) return;
        if (packet.op !== Opcode.ACK) {
          throw new ProtocolError(
            ErrorCode.ILLEGAL_OPERATION,
            `illegal TFTP operation: expected ACK 0, got opcode ${packet.op}`,
          );
        }
      }
    }
    throw new Deno.errors.TimedOut("timed out: no ACK of the OACK");
  }

  #fail(error: unknown): void {
    if (this.#context.stopping() && this.#channel.closed) {
      this.#logClose({ reason: "shutdown" });
    } else if (error instanceof PeerError) {
      this.#logClose({ reason: "peer-error", code: error.code, message: error.message });
    } else if (error instanceof Deno.errors.TimedOut) {
      this.#logClose({ reason: "timeout", message: error.message });
    } else {
      const coded = error instanceof ProtocolError
        ? error
        : new ProtocolError(ErrorCode.OTHER, errorMessage(error));
      this.#channel.send(encodeError(coded.code, coded.message));
      if (this.#dataMoved) {
        const reason = error instanceof ProtocolError ? "error" : "failure";
        this.#logClose({ reason, code: coded.code, message: coded.message });
      } else {
        this.#logRequest({
          outcome: "refused",
          bytes: 0,
          code: coded.code,
          message: coded.message,
        });
      }
    }
  }

  #logRequest(
    fields: {
      outcome: "ok" | "refused";
      bytes: number;
      kind?: "file";
      blksize?: number;
      windowsize?: number;
      ackevery?: number;
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

  #logClose(
    fields: {
      reason: "error" | "peer-error" | "timeout" | "shutdown" | "failure";
      code?: number;
      message?: string;
    },
  ): void {
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
