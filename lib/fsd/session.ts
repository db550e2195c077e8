/**
 * One client connection of the fsd/1 server: the greeting, the request loop,
 * the dispatch of each packet, and why the connection ended. Requests that
 * cannot be served are refused with ERR and the connection stays usable;
 * once data moves, any error ends the connection.
 */

import { bytesSource, errorMessage } from "../bytes/mod.ts";
import { ErrorCode, PeerError, ProtocolError } from "../store/errors.ts";
import type { Access } from "../store/access.ts";
import type { FileStore } from "../store/file_store.ts";
import type { CloseReason, Op, ServerEvent } from "../store/log.ts";
import {
  encodeError,
  encodeOptions,
  Opcode,
  opcodeName,
  type OptionPairs,
  type Packet,
} from "./codec.ts";
import { type Asked, parseAsked } from "./negotiation.ts";
import type { Endpoint } from "../net/proxy_header.ts";
import { optionRecord } from "../net/option_pairs.ts";
import type { PacketConn } from "./packet_conn.ts";
import { serveRead, serveWrite } from "./requests.ts";
import { Request, type RequestScope } from "./request.ts";
import { sendFile } from "./window.ts";
import { isLogin, type LoginPolicy, LoginState } from "./login.ts";

/** What every session of one server shares. */
export interface SessionContext {
  store: FileStore;
  /** Who may read and write what (lib/store/access.ts). */
  access: Access;
  /** The greeting's bytes: one short DAT block. */
  greeting: Uint8Array;
  /** Speak only fsd/1: OPT is an unknown opcode. */
  fsd1Only: boolean;
  log: (event: ServerEvent) => void;
  /** True once the server stops taking requests. */
  stopping(): boolean;
  /** Accounts: only logged-in clients (and anonymous readers, if allowed) are served. */
  login?: LoginPolicy;
  /** A client that must log in and has not after this long is cut (0: never, or nobody must). */
  loginGraceMs: number;
  /** During a transfer, the least a connection must move per second, over windows of `windowMs`. */
  minRate: { bytesPerSecond: number; windowMs: number };
  /** Called once when this session's client has logged in (the server counts those who have not). */
  loggedIn?: () => void;
}

const lossy = new TextDecoder();
const encoder = new TextEncoder();
const NO_NAME = new Uint8Array(0);

export class Session {
  readonly id: number;
  readonly conn: PacketConn;
  readonly context: SessionContext;
  /** Serving a request (not waiting for one): shutdown lets it finish. */
  busy = false;
  request: Request | undefined;
  /** The client's address, once the session runs. */
  address = "";
  #login: LoginState;
  /** Aborted when the session is closed from outside (a throttled login stops waiting). */
  #closing = new AbortController();
  /** Stops the login grace timer, once logged in. */
  #graceOver: (() => void) | undefined;
  /** What this session's requests see of it. */
  #scope: RequestScope;

  constructor(id: number, conn: PacketConn, context: SessionContext) {
    this.id = id;
    this.conn = conn;
    this.context = context;
    this.#login = new LoginState(context.store, context.access, "", context.login);
    this.#scope = {
      id,
      conn,
      store: context.store,
      storeFor: (op) => this.#login.storeFor(op),
      address: () => this.address,
      user: () => this.#login.user,
      log: (event) => this.context.log(event),
      ended: (request) => {
        if (this.request === request) this.request = undefined;
      },
    };
  }

  /** Closes the connection under the session (shutdown). */
  close(): void {
    this.#closing.abort(new Deno.errors.Interrupted("connection closed"));
    this.conn.close();
  }

  /** Ends the connection from outside (a shutdown); a request in progress hears ERR 0 `message` first. */
  async cut(message: string): Promise<void> {
    if (this.busy) await this.conn.closeWithError(ErrorCode.OTHER, message);
    this.close();
  }

  /** Serves the connection until it ends, then logs why; never rejects. */
  async run(peer: Endpoint, proxy?: Endpoint): Promise<void> {
    const { log, stopping } = this.context;
    this.address = peer.hostname;
    this.#login = new LoginState(
      this.context.store,
      this.context.access,
      peer.hostname,
      this.context.login,
    );
    log({
      event: "connection",
      id: this.id,
      address: peer.hostname,
      port: peer.port,
      ...(proxy && { via: `${proxy.hostname} port ${proxy.port}` }),
    });
    let ending: { reason: CloseReason; code?: number; message?: string } = { reason: "client" };
    try {
      if (stopping()) throw new Deno.errors.Interrupted("server stopping");
      const { login, loginGraceMs } = this.context;
      if (login && loginGraceMs > 0) {
        this.#graceOver = this.conn.cutAfter(
          loginGraceMs,
          `login grace time over: not logged in within ${loginGraceMs / 1000} s`,
        );
      }
      await sendFile(this.conn, bytesSource(this.context.greeting));
      while (!stopping()) {
        this.busy = false;
        this.request = undefined;
        this.conn.minimumRate(undefined);
        const packet = await this.conn.readPacket();
        if (packet === null) break;
        this.busy = true;
        await this.#dispatch(packet);
      }
      if (stopping()) ending = { reason: "shutdown" };
    } catch (error) {
      ending = await this.#ended(error);
    } finally {
      this.conn.close();
      const r = this.request;
      log({
        event: "close",
        id: this.id,
        reason: ending.reason,
        ...(r && { op: r.op, name: r.name, bytes: r.bytes, ms: performance.now() - r.started }),
        ...(ending.code !== undefined && { code: ending.code }),
        ...(ending.message !== undefined && { message: ending.message }),
      });
    }
  }

  /** Where a login is needed, the timer that cuts a client that has not logged in in time. */
  /** Why the connection ended on `error`, telling the client where it still listens. */
  async #ended(error: unknown): Promise<{ reason: CloseReason; code?: number; message?: string }> {
    if (error instanceof ProtocolError) {
      await this.conn.sendError(error.code, error.message);
      return { reason: "error", code: error.code, message: error.message };
    }
    if (error instanceof PeerError) {
      return { reason: "peer-error", code: error.code, message: error.message };
    }
    if (error instanceof Deno.errors.TimedOut) {
      const why = this.conn.cutReason;
      return { reason: "timeout", ...(why !== undefined && { message: why }) };
    }
    if (this.context.stopping()) return { reason: "shutdown" };
    const message = errorMessage(error);
    // The client hung up mid-packet or mid-transfer: log it, nobody is left to tell.
    if (error instanceof Deno.errors.UnexpectedEof) return { reason: "failure", message };
    // A broken socket or a bug: the client hears ERR 0 if it still listens.
    await this.conn.sendError(ErrorCode.OTHER, `server error: ${message}`);
    return { reason: "failure", code: ErrorCode.OTHER, message };
  }

  /** One request, or OPT and the request it is for. */
  async #dispatch(packet: Packet, asked?: Asked): Promise<void> {
    switch (packet.op) {
      case Opcode.RRQ:
        return await serveRead(this.#begin("RRQ", packet.name), packet.name, asked);
      case Opcode.DRQ:
        return await serveRead(this.#begin("DRQ", NO_NAME), NO_NAME, asked);
      case Opcode.WRQ:
        return await serveWrite(this.#begin("WRQ", packet.name), packet.name, asked);
      case Opcode.OPT:
        return await this.#dispatchOpt(packet.options);
      case Opcode.ERR:
        throw new PeerError(packet.code, packet.message);
    }
    throw new ProtocolError(
      ErrorCode.ILLEGAL_OPERATION,
      `unexpected ${opcodeName(packet.op)}: no transfer in progress`,
    );
  }

  /** OPT: its options, then the request they are for. */
  async #dispatchOpt(pairs: OptionPairs): Promise<void> {
    if (this.context.fsd1Only) {
      throw new ProtocolError(ErrorCode.ILLEGAL_OPERATION, `unknown opcode: ${Opcode.OPT}`);
    }
    if (isLogin(pairs)) return await this.#logIn(pairs);
    const asked = parseAsked(pairs); // out of range: ERR 8, and the connection ends
    const next = await this.conn.readPacket();
    if (next === null) throw new Deno.errors.UnexpectedEof("connection closed after OPT");
    if (next.op !== Opcode.RRQ && next.op !== Opcode.WRQ && next.op !== Opcode.DRQ) {
      throw new ProtocolError(
        ErrorCode.ILLEGAL_OPERATION,
        `OPT must be followed by a request, not ${opcodeName(next.op)}`,
      );
    }
    return await this.#dispatch(next, asked);
  }

  /** A login OPT: OACK, or ERR 7 and the connection goes on; out of place or malformed, it ends. */
  async #logIn(pairs: OptionPairs): Promise<void> {
    const named = optionRecord(pairs); // a repeated name: the last value counts
    const user = lossy.decode(encoder.encode(named.user ?? "").subarray(0, 100));
    // One login in flight per connection: logins sent ahead of their answers (a guesser that
    // pipelines, then hangs up) would each cost a password check.
    const wellFormed = Object.keys(named).sort().join(",") === "password,user";
    if (wellFormed && this.conn.pending > 0) {
      throw new ProtocolError(
        ErrorCode.ILLEGAL_OPERATION,
        "illegal operation: one login at a time: wait for its answer",
      );
    }
    try {
      const oack = await this.#login.login(pairs, this.#closing.signal);
      this.context.loggedIn?.();
      await this.conn.write(encodeOptions(Opcode.OACK, oack));
      this.#graceOver?.();
      this.context.log({ event: "login", id: this.id, user, outcome: "ok" });
    } catch (error) {
      if (!(error instanceof ProtocolError)) throw error;
      const keepsGoing = error.code === ErrorCode.NO_SUCH_USER ||
        error.code === ErrorCode.NOT_FOUND;
      this.context.log({
        event: "login",
        id: this.id,
        user,
        outcome: "refused",
        message: error.message,
      });
      if (!keepsGoing) throw error;
      await this.conn.write(encodeError(error.code, error.message));
    }
  }

  /** Starts the record of a request named `raw` (as the client sent it). */
  #begin(op: Op, raw: Uint8Array): Request {
    this.request = new Request(this.#scope, op, raw);
    this.conn.minimumRate(this.context.minRate);
    return this.request;
  }
}
