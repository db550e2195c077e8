/**
 * The client's side of one exchange on a connection: opening it and taking
 * the greeting, guarding each exchange (a refusal keeps the connection,
 * anything else sends ERR when it can and closes it), and the OPT/OACK
 * negotiation before a request.
 */

import { closeQuietly, concat, errorMessage, MemorySink } from "../bytes/source_sink.ts";
import { connectWithTimeout } from "../net/connect.ts";
import { ErrorCode, OptionsRefusedError, PeerError, ProtocolError } from "../store/errors.ts";
import type { ClientConfig } from "./client_types.ts";
import { encodeOptions, Opcode, type OptionPairs } from "./codec.ts";
import { GREETING_TIMEOUT_MS, readFirstBytes } from "./greeting.ts";
import {
  type Granted,
  optPairs,
  readOack,
  type TransferParams,
  type Wanted,
} from "./negotiation.ts";
import { PacketConn } from "./packet_conn.ts";
import { receiveFile } from "./window.ts";

/** Largest greeting kept in memory. */
const MAX_GREETING_BYTES = 4096;

const decoder = new TextDecoder();

/** Connects (over TLS when configured), checks the first bytes look like fsd, and takes the greeting. */
export async function openGreeted(
  hostname: string,
  port: number,
  config: ClientConfig,
): Promise<{ conn: PacketConn; greeting: string }> {
  const timeoutMs = config.timeoutMs ?? 60_000;
  // TLS (and node:tls behind a pin) is loaded by a connection that asks for it.
  const raw = config.tls
    ? await (await import("../net/tls.ts")).connectTls({ hostname, port, timeoutMs, ...config.tls })
    : await connectWithTimeout({ hostname, port, timeoutMs });
  const greetingMs = Math.min(
    config.greetingTimeoutMs ?? GREETING_TIMEOUT_MS,
    timeoutMs || Infinity,
  );
  let first: Uint8Array;
  try {
    first = await readFirstBytes(raw, greetingMs);
  } catch (error) {
    closeQuietly(raw);
    throw error;
  }
  const conn = new PacketConn(raw, { timeoutMs, tap: config.tap });
  conn.unread(first);
  const greeting = await guard(conn, async () => {
    const sink = new MemorySink();
    // Its ACK goes out with the first request.
    await receiveFile(conn, sink, { maxBytes: MAX_GREETING_BYTES, holdLastAck: true });
    return decoder.decode(sink.bytes());
  });
  return { conn, greeting };
}

/** Sends OPT with `request` and reads what the server granted. */
export async function negotiate(
  conn: PacketConn,
  params: TransferParams,
  request: Uint8Array,
  wanted: Wanted,
): Promise<Granted> {
  await conn.write(askFor(params, request, wanted));
  return await readGranted(conn, params, wanted);
}

/** The OPT for what is wanted, and the request it comes before, in one buffer. */
export function askFor(params: TransferParams, request: Uint8Array, wanted: Wanted): Uint8Array {
  return concat(encodeOptions(Opcode.OPT, optPairs(params, wanted)), request);
}

/** Reads the answer to an OPT and request: what the server granted, or its refusal. */
export async function readGranted(
  conn: PacketConn,
  params: TransferParams,
  wanted: Wanted,
): Promise<Granted> {
  const granted = readOack(params, await expectOack(conn));
  if (granted.checksum && granted.checksum !== wanted.checksum) {
    throw new ProtocolError(
      ErrorCode.OPTION_REFUSED,
      `option negotiation failed: unasked ${granted.checksum}`,
    );
  }
  return granted;
}

/** The server's OACK; its ERR (a refusal) is a PeerError, anything else a violation. */
export async function expectOack(conn: PacketConn): Promise<OptionPairs> {
  const packet = await conn.readPacket();
  if (packet?.op === Opcode.OACK) return packet.options;
  if (packet?.op === Opcode.ERR) {
    // ERR 4 to OPT: a server that knows only fsd/1 (it has closed the connection).
    if (packet.code === ErrorCode.ILLEGAL_OPERATION) {
      conn.close();
      throw new OptionsRefusedError(packet.code, packet.message);
    }
    throw new PeerError(packet.code, packet.message);
  }
  if (packet === null) {
    throw new Deno.errors.UnexpectedEof("connection closed while waiting for OACK");
  }
  throw new ProtocolError(ErrorCode.ILLEGAL_OPERATION, `unexpected packet: expected OACK`);
}

/** Runs one exchange; on anything but the server's refusal the connection is closed. */
export async function guard<T>(conn: PacketConn, exchange: () => Promise<T>): Promise<T> {
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
