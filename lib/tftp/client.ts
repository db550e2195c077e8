/**
 * The TFTP client: one download (RRQ) or upload (WRQ) per call. It asks for
 * a large block and a window (RFC 2348, 7440) and the size (RFC 2349), and
 * falls back to plain RFC 1350 when the server ignores the options (it
 * answers with DATA or ACK 0 instead of an OACK) or refuses them (ERROR 8).
 */

import type { ByteSink, ByteSource } from "../bytes/source_sink.ts";
import { ErrorCode, PeerError, ProtocolError } from "../store/errors.ts";
import {
  encodeAck,
  encodeError,
  encodeRequest,
  Opcode,
  type OptionPairs,
  type Packet,
} from "./codec.ts";
import {
  acceptOack,
  type Asked,
  askedPairs,
  CLIENT_RECEIVE_BUFFER,
  clientWindow,
  defaultAckEvery,
  TFTP_CLIENT_DEFAULTS,
  type TransferParams,
} from "./options.ts";

export { TFTP_CLIENT_DEFAULTS };
import { bindUdp } from "../net/udp.ts";
import { BlockingChannel } from "./blocking_channel.ts";
import { parseFromPeer, receiveFile, sendFile } from "./blocks.ts";
import { type DatagramChannel, type DatagramTap, UdpChannel } from "./channel.ts";

export interface TftpClientConfig {
  hostname: string;
  /** The server's request port (default 69). */
  port: number;
  /** Block size to ask for (default 65464); 0 asks for no options at all (plain RFC 1350). */
  blockSize?: number;
  /** Window to ask for (default: `clientWindow`, 3 to 16). */
  windowSize?: number;
  /** With a window: ask for an ACK every this many blocks, sliding (fsd's `ackevery`; default half the window). */
  ackEvery?: number;
  /** Resend after this long without an answer (default 1 s). */
  retransmitMs?: number;
  /** Give up after this long without progress (default 60 s). */
  timeoutMs?: number;
  /** Stops the transfer (its socket closes; the call rejects). */
  signal?: AbortSignal;
  /** Sees every datagram of the transfer, the request included (for a capture). */
  tap?: DatagramTap;
  /**
   * This process moves one transfer at a time and serves nobody: a wait may
   * block its thread (lib/net's BlockingUdp, where offered), in slices.
   */
  alone?: boolean;
}

export interface TftpHooks {
  onProgress?: (bytes: number) => void;
  /** The size the server announced (tsize), before any data. */
  onSize?: (bytes: number) => void;
}

/** Downloads `remote` into `sink`; returns the bytes received. */
export async function tftpDownload(
  config: TftpClientConfig,
  remote: string,
  sink: ByteSink,
  hooks: TftpHooks = {},
): Promise<number> {
  return await withFallback(config, true, async (channel, asked, settings) => {
    const request = encodeRequest(Opcode.RRQ, remote, "octet", askedPairs(asked));
    const { packet, bytes } = await firstAnswer(channel, request, settings, Opcode.DATA);
    let params = plain(settings.retransmitMs);
    let reply = request;
    let first: Uint8Array | undefined = bytes;
    if (packet.op === Opcode.OACK) {
      const accepted = acceptFromServer(channel, packet.options, asked, settings.retransmitMs);
      params = accepted.params;
      if (accepted.transferSize !== undefined) hooks.onSize?.(accepted.transferSize);
      reply = encodeAck(0);
      channel.send(reply);
      first = undefined;
    }
    const { bytes: received } = await receiveFile(channel, sink, {
      params,
      retries: settings.retries,
      onProgress: hooks.onProgress,
      reply,
      first,
    });
    return received;
  });
}

/** Uploads `source` (of `size` bytes, when known) as `remote`; returns the bytes sent. */
export async function tftpUpload(
  config: TftpClientConfig,
  remote: string,
  source: ByteSource,
  size?: number,
  hooks: TftpHooks = {},
): Promise<number> {
  return await withFallback(config, false, async (channel, asked, settings) => {
    if (size !== undefined && Object.keys(asked).length > 0) asked.transferSize = size;
    const request = encodeRequest(Opcode.WRQ, remote, "octet", askedPairs(asked));
    const { packet } = await firstAnswer(channel, request, settings, Opcode.ACK);
    let params = plain(settings.retransmitMs);
    if (packet.op === Opcode.OACK) {
      params = acceptFromServer(channel, packet.options, asked, settings.retransmitMs).params;
    } else if (packet.op !== Opcode.ACK || packet.block !== 0) {
      throw new ProtocolError(
        ErrorCode.ILLEGAL_OPERATION,
        "illegal TFTP operation: expected ACK 0",
      );
    }
    return await sendFile(channel, source, {
      params,
      retries: settings.retries,
      onProgress: hooks.onProgress,
    });
  });
}

interface Settings {
  retransmitMs: number;
  retries: number;
  /** The whole wait for the server's first answer. */
  timeoutMs: number;
}

function plain(retransmitMs: number): TransferParams {
  return { blockSize: 512, windowSize: 1, timeoutMs: retransmitMs };
}

/** The OACK checked; one we cannot accept is answered with ERROR 8 (RFC 2347). */
function acceptFromServer(
  channel: DatagramChannel,
  options: OptionPairs,
  asked: Asked,
  retransmitMs: number,
) {
  try {
    return acceptOack(options, asked, retransmitMs);
  } catch (error) {
    const coded = error as ProtocolError;
    channel.send(encodeError(coded.code, coded.message));
    throw error;
  }
}

/**
 * Runs one exchange on a fresh socket; if the server refuses the options
 * with ERROR 8 before any data, runs it once more asking for none. A
 * download's default window is what its socket's receive buffer holds.
 */
async function withFallback<T>(
  config: TftpClientConfig,
  download: boolean,
  exchange: (channel: DatagramChannel, asked: Asked, settings: Settings) => Promise<T>,
): Promise<T> {
  const blockSize = config.blockSize ?? TFTP_CLIENT_DEFAULTS.blockSize;
  const ask = (channel: DatagramChannel): Asked => {
    if (blockSize === 0) return {};
    const windowSize = config.windowSize ??
      clientWindow(blockSize, download, channel.receiveBuffer);
    const ackEvery = config.ackEvery ?? defaultAckEvery(windowSize);
    return {
      blockSize,
      windowSize,
      transferSize: 0,
      // Only where it would slide; a server that does not know it ignores it (RFC 2347).
      ...(ackEvery < windowSize ? { ackEvery } : {}),
    };
  };
  try {
    return await once(config, ask, exchange);
  } catch (error) {
    const refused = error instanceof PeerError && error.code === ErrorCode.OPTION_REFUSED;
    // Options refused (only a server that was asked for some can): once more, asking for none.
    if (!refused || blockSize === 0) throw error;
    return await once(config, () => ({}), exchange);
  }
}

async function once<T>(
  config: TftpClientConfig,
  ask: (channel: DatagramChannel) => Asked,
  exchange: (channel: DatagramChannel, asked: Asked, settings: Settings) => Promise<T>,
): Promise<T> {
  // Resends within the time limit, and the tries add up to it: a dead port fails in timeoutMs.
  const timeoutMs = config.timeoutMs ?? TFTP_CLIENT_DEFAULTS.timeoutMs;
  const retransmitMs = Math.min(
    config.retransmitMs ?? TFTP_CLIENT_DEFAULTS.retransmitMs,
    timeoutMs,
  );
  const settings = {
    retransmitMs,
    retries: Math.max(0, Math.ceil(timeoutMs / retransmitMs) - 1),
    timeoutMs,
  };
  const hostname = config.hostname === "localhost" ? "127.0.0.1" : config.hostname;
  const peer = { hostname, port: config.port };
  const local = localAddress(hostname);
  const channel: DatagramChannel = (config.alone &&
    BlockingChannel.open(local, peer, {
      tap: config.tap,
      receiveBuffer: CLIENT_RECEIVE_BUFFER,
    })) ||
    new UdpChannel(await bindUdp(local, 0), peer, false, config.tap);
  const abort = () => channel.close();
  config.signal?.addEventListener("abort", abort);
  try {
    return await exchange(channel, ask(channel), settings);
  } catch (error) {
    config.signal?.throwIfAborted();
    if (error instanceof ProtocolError) channel.send(encodeError(error.code, error.message));
    throw error;
  } finally {
    config.signal?.removeEventListener("abort", abort);
    channel.close();
  }
}

/** Sends `request` until the server answers with an OACK or `expected` (DATA or ACK). */
async function firstAnswer(
  channel: DatagramChannel,
  request: Uint8Array,
  settings: Settings,
  expected: number,
): Promise<{ packet: Packet; bytes: Uint8Array }> {
  const giveUp = channel.now() + settings.timeoutMs;
  for (let tries = 0; tries <= settings.retries && channel.now() < giveUp; tries++) {
    channel.send(request);
    const bytes = await channel.receive(Math.min(channel.now() + settings.retransmitMs, giveUp));
    if (bytes === null) continue;
    const packet = parseFromPeer(bytes, 65464);
    if (packet.op === Opcode.OACK || packet.op === expected) return { packet, bytes };
    throw new ProtocolError(
      ErrorCode.ILLEGAL_OPERATION,
      `illegal TFTP operation: unexpected opcode ${packet.op} in answer to the request`,
    );
  }
  throw new Deno.errors.TimedOut(
    `timed out: no answer from ${channel.peer.hostname} port ${channel.peer.port}`,
  );
}

/**
 * Where the client's socket binds: the loopback address itself for a server
 * on loopback (so --allow-net=127.0.0.1 is enough), else the wildcard.
 */
function localAddress(hostname: string): string {
  if (/^127\.\d+\.\d+\.\d+$/.test(hostname) || hostname === "::1") return hostname;
  return hostname.includes(":") ? "::" : "0.0.0.0";
}
