/**
 * The PROXY protocol header (HAProxy's specification, versions 1 and 2): a
 * load balancer in front of a server tells it, at the start of each
 * connection, who the real client is.
 *
 * The parser is incremental and bounded: it says how many bytes it wants
 * next and never takes a byte of the stream after the header, so the
 * connection can be handed on untouched. Version 1 is one text line of at
 * most 107 bytes; version 2 is a 16-byte header and the length it gives
 * (at most MAX_V2_LENGTH here). Anything else is a ProxyHeaderError.
 */

import type { Endpoint } from "./endpoint.ts";
import { formatIp, parseIpv4, parseIpv6 } from "./ip.ts";
import type { StreamConn } from "./stream_conn.ts";

export type { Endpoint };

/** Longest version 1 line, "\r\n" included (the specification's limit). */
export const MAX_V1_LENGTH = 107;
/** Longest version 2 address block and TLVs accepted (the addresses need at most 216). */
export const MAX_V2_LENGTH = 2048;

const V1_PREFIX = new TextEncoder().encode("PROXY ");
const V2_SIGNATURE = new Uint8Array([
  0x0d,
  0x0a,
  0x0d,
  0x0a,
  0x00,
  0x0d,
  0x0a,
  0x51,
  0x55,
  0x49,
  0x54,
  0x0a,
]);
/** Enough to tell version 1 from version 2 (and from neither). */
const PREFIX_LENGTH = 6;
const V2_HEADER_LENGTH = 16;

/**
 * "proxy": the connection is relayed for `source` (the real client);
 * "local": the proxy itself connected (a health check), or it does not know
 * the client: use the connection's own addresses.
 */
export type ProxyHeader =
  | { version: 1 | 2; command: "proxy"; source: Endpoint; destination: Endpoint }
  | { version: 1 | 2; command: "local" };

export class ProxyHeaderError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ProxyHeaderError";
  }
}

type Stage = "prefix" | "v1" | "v2-header" | "v2-body" | "done";

export class ProxyHeaderParser {
  #buffer = new Uint8Array(V2_HEADER_LENGTH + MAX_V2_LENGTH);
  #length = 0;
  #stage: Stage = "prefix";
  #need = PREFIX_LENGTH;

  /** How many bytes to give `push` next: never more than the header has left. */
  get wanted(): number {
    return this.#stage === "done" ? 0 : this.#need - this.#length;
  }

  /**
   * Takes up to `wanted` bytes (more is an error); returns the header once
   * complete, undefined while it needs more. Throws ProxyHeaderError.
   */
  push(bytes: Uint8Array): ProxyHeader | undefined {
    if (bytes.length > this.wanted) {
      throw new Error(`proxy header parser: ${bytes.length} bytes pushed, ${this.wanted} wanted`);
    }
    this.#buffer.set(bytes, this.#length);
    this.#length += bytes.length;
    if (this.#stage === "prefix" && !this.#prefixPossible()) {
      throw new ProxyHeaderError("no PROXY protocol header");
    }
    while (this.#stage !== "done" && this.#length === this.#need) {
      const header = this.#advance();
      if (header) {
        this.#stage = "done";
        return header;
      }
    }
    return undefined;
  }

  /** Whether the bytes so far can still begin either version's header. */
  #prefixPossible(): boolean {
    return startsWith(this.#buffer, V1_PREFIX, this.#length) ||
      startsWith(this.#buffer, V2_SIGNATURE, this.#length);
  }

  /** The stage's bytes are all there: go on to the next stage, or finish. */
  #advance(): ProxyHeader | undefined {
    const b = this.#buffer;
    switch (this.#stage) {
      case "prefix":
        if (startsWith(b, V1_PREFIX, PREFIX_LENGTH)) {
          this.#stage = "v1";
          this.#need++;
        } else if (startsWith(b, V2_SIGNATURE, PREFIX_LENGTH)) {
          this.#stage = "v2-header";
          this.#need = V2_HEADER_LENGTH;
        } else {
          throw new ProxyHeaderError("no PROXY protocol header");
        }
        return undefined;
      case "v1":
        // One byte at a time: the line ends at "\r\n", and what follows is the client's.
        if (b[this.#length - 2] === 0x0d && b[this.#length - 1] === 0x0a) {
          return parseV1(b.subarray(0, this.#length - 2));
        }
        if (!printableOrCr(b[this.#length - 1]) || b[this.#length - 2] === 0x0d) {
          throw new ProxyHeaderError("PROXY v1 header has a byte that is not printable ASCII");
        }
        if (this.#length >= MAX_V1_LENGTH) {
          throw new ProxyHeaderError(`PROXY v1 header longer than ${MAX_V1_LENGTH} bytes`);
        }
        this.#need++;
        return undefined;
      case "v2-header": {
        if (!startsWith(b, V2_SIGNATURE, V2_SIGNATURE.length)) {
          throw new ProxyHeaderError("no PROXY protocol header");
        }
        const length = (b[14] << 8) | b[15];
        if (length > MAX_V2_LENGTH) {
          throw new ProxyHeaderError(
            `PROXY v2 header too long: ${length} bytes, at most ${MAX_V2_LENGTH}`,
          );
        }
        this.#stage = "v2-body";
        this.#need = V2_HEADER_LENGTH + length;
        if (length > 0) return undefined;
        return parseV2(b.subarray(0, this.#need));
      }
      case "v2-body":
        return parseV2(b.subarray(0, this.#need));
    }
    return undefined;
  }
}

function printableOrCr(byte: number): boolean {
  return (byte >= 0x20 && byte <= 0x7e) || byte === 0x0d;
}

function startsWith(bytes: Uint8Array, prefix: Uint8Array, length: number): boolean {
  for (let i = 0; i < length; i++) if (bytes[i] !== prefix[i]) return false;
  return true;
}

const PORT = /^(0|[1-9][0-9]{0,4})$/;

/** "PROXY TCP4|TCP6 SRC DST SPORT DPORT" or "PROXY UNKNOWN ...", without its "\r\n". */
function parseV1(line: Uint8Array): ProxyHeader {
  const fields = new TextDecoder().decode(line).split(" ");
  if (fields[1] === "UNKNOWN") return { version: 1, command: "local" };
  if (fields.length !== 6) {
    throw new ProxyHeaderError("PROXY v1 header: expected PROXY TCP4|TCP6 SRC DST SPORT DPORT");
  }
  const [, family, src, dst, sport, dport] = fields;
  const parse = family === "TCP4" ? parseIpv4 : family === "TCP6" ? parseIpv6 : undefined;
  if (!parse) throw new ProxyHeaderError(`PROXY v1 header: unknown protocol: ${family}`);
  const source = endpoint(parse(src), sport);
  const destination = endpoint(parse(dst), dport);
  if (!source || !destination) {
    throw new ProxyHeaderError(`PROXY v1 header: bad ${family} address or port`);
  }
  return { version: 1, command: "proxy", source, destination };
}

function endpoint(address: Uint8Array | undefined, portText: string): Endpoint | undefined {
  if (!address || !PORT.test(portText) || Number(portText) > 65535) return undefined;
  return { hostname: formatIp(address), port: Number(portText) };
}

const AF_UNSPEC = 0x0, AF_INET = 0x1, AF_INET6 = 0x2, AF_UNIX = 0x3;
const TRANSPORT_UNSPEC = 0x0, TRANSPORT_STREAM = 0x1;
/** Bytes of the address block per family (source and destination address, then ports). */
const ADDRESS_LENGTH: Record<number, number> = { [AF_INET]: 12, [AF_INET6]: 36, [AF_UNIX]: 216 };

/** The 16-byte header and its address block (TLVs after it are skipped). */
function parseV2(block: Uint8Array): ProxyHeader {
  const version = block[12] >> 4, command = block[12] & 0x0f;
  const family = block[13] >> 4, transport = block[13] & 0x0f;
  if (version !== 2) throw new ProxyHeaderError(`PROXY v2 header: unknown version ${version}`);
  if (command === 0x0) return { version: 2, command: "local" };
  if (command !== 0x1) throw new ProxyHeaderError(`PROXY v2 header: unknown command ${command}`);
  if (family > AF_UNIX) throw new ProxyHeaderError(`PROXY v2 header: unknown family ${family}`);
  if (transport !== TRANSPORT_UNSPEC && transport !== TRANSPORT_STREAM) {
    throw new ProxyHeaderError(`PROXY v2 header: not a stream connection (transport ${transport})`);
  }
  // Unspecified or UNIX sockets carry no IP address: the connection's own addresses stand.
  if (family === AF_UNSPEC || family === AF_UNIX) return { version: 2, command: "local" };
  const body = block.subarray(V2_HEADER_LENGTH);
  if (body.length < ADDRESS_LENGTH[family]) {
    throw new ProxyHeaderError(
      `PROXY v2 header: address block of ${body.length} bytes, ${ADDRESS_LENGTH[family]} needed`,
    );
  }
  const size = family === AF_INET ? 4 : 16;
  const port = (at: number) => (body[at] << 8) | body[at + 1];
  return {
    version: 2,
    command: "proxy",
    source: { hostname: formatIp(body.slice(0, size)), port: port(2 * size) },
    destination: { hostname: formatIp(body.slice(size, 2 * size)), port: port(2 * size + 2) },
  };
}

/**
 * Reads a PROXY header from the start of `conn`, taking no byte past it.
 * Throws ProxyHeaderError for a malformed or missing header, or when the
 * connection closes before the header ends.
 */
export async function readProxyHeader(conn: StreamConn): Promise<ProxyHeader> {
  const parser = new ProxyHeaderParser();
  const buffer = new Uint8Array(V2_HEADER_LENGTH + MAX_V2_LENGTH);
  for (;;) {
    const n = await conn.read(buffer.subarray(0, parser.wanted));
    if (n === null) throw new ProxyHeaderError("connection closed before the PROXY header ended");
    const header = parser.push(buffer.subarray(0, n));
    if (header) return header;
  }
}
