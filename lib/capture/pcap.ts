/**
 * Capture files without capture rights: TCP conversations (and UDP
 * datagrams, for the UDP relay, the echo client and TFTP) written to a
 * pcap file (the classic libpcap format, Ethernet link type) with made-up
 * but consistent framing, so Wireshark and tshark open them, "Follow TCP
 * Stream" gives exactly the bytes, and the fsd dissector decodes them.
 *
 * Each connection gets its own made-up client port; addresses are from the
 * documentation ranges (client 192.0.2.1, server 192.0.2.2). A connection
 * opens with SYN, SYN-ACK, ACK, every chunk becomes segments of at most
 * 65495 bytes (the most an IPv4 packet holds) carrying the right sequence
 * and acknowledgement numbers, and each side's end of stream is a FIN that
 * the other side acknowledges. TCP checksums are left 0 (Wireshark does not
 * check them by default); IPv4 header checksums are real.
 *
 * Memory is bounded: records collect in one 64 KiB buffer that is written
 * out when full, when a connection ends, every second, and on flush().
 */

import { errorMessage } from "../bytes/source_sink.ts";

const BUFFER_BYTES = 64 * 1024;
const ETHERNET = 14;
const IPV4 = 20;
const TCP = 20;
const UDP = 8;
const TCP_PROTOCOL = 6;
const UDP_PROTOCOL = 17;
const RECORD_HEADER = 16;
/** Largest payload of one segment: an IPv4 packet is at most 65535 bytes. */
export const MAX_SEGMENT = 65535 - IPV4 - TCP;
const SNAPLEN = 262144;
const LINKTYPE_ETHERNET = 1;
const FLUSH_MS = 1000;

const FIN = 0x01;
const SYN = 0x02;
const PSH = 0x08;
const ACK = 0x10;

/** Which end of a connection sends a segment. */
export type Side = "client" | "server";

interface Endpoint {
  mac: number[];
  ip: number[];
  port: number;
}

const CLIENT_MAC = [0x02, 0, 0, 0, 0, 0x01];
const SERVER_MAC = [0x02, 0, 0, 0, 0, 0x02];
const CLIENT_IP = [192, 0, 2, 1];
const SERVER_IP = [192, 0, 2, 2];
const FIRST_CLIENT_PORT = 40000;
const CLIENT_PORTS = 25000;

/** One capture file; any number of connections write into it. */
export class PcapWriter {
  #file: Deno.FsFile;
  #buffer = new Uint8Array(BUFFER_BYTES);
  #view = new DataView(this.#buffer.buffer);
  #used = 0;
  #connections = 0;
  #ipId = 0;
  #closed = false;
  #ticker: ReturnType<typeof setInterval>;

  private constructor(file: Deno.FsFile) {
    this.#file = file;
    this.#writeFileHeader();
    // A file opened while the capture runs shows what happened up to a second ago.
    this.#ticker = setInterval(() => this.flush(), FLUSH_MS);
    Deno.unrefTimer(this.#ticker);
  }

  /** Creates (or truncates) `path`, readable by its owner only (it holds everything relayed), and writes the file header. */
  static create(path: string): PcapWriter {
    try {
      const file = Deno.openSync(path, { write: true, create: true, truncate: true, mode: 0o600 });
      try {
        // A file that existed keeps its mode otherwise (devices and pipes are left alone).
        if (file.statSync().isFile) Deno.chmodSync(path, 0o600);
      } catch {
        // not ours to change (another owner): leave it
      }
      return new PcapWriter(file);
    } catch (error) {
      throw new Error(`cannot write capture file ${path}: ${errorMessage(error)}`, {
        cause: error,
      });
    }
  }

  /** A new connection to `serverPort`, from the next made-up client port; writes its handshake. */
  connection(serverPort: number): PcapConnection {
    const n = this.#connections++;
    const client = {
      mac: CLIENT_MAC,
      ip: CLIENT_IP,
      port: FIRST_CLIENT_PORT + n % CLIENT_PORTS,
    };
    const server = { mac: SERVER_MAC, ip: SERVER_IP, port: serverPort };
    return new PcapConnection(this, client, server, n);
  }

  /** Called once if writing the file fails (a full disk): recording stops, the traffic goes on. */
  onError?: (error: Error) => void;
  #failed = false;

  /** Writes out what is buffered. */
  flush(): void {
    if (this.#closed || this.#used === 0) return;
    this.#write(this.#buffer.subarray(0, this.#used));
    this.#used = 0;
  }

  #write(bytes: Uint8Array): void {
    if (this.#failed) return;
    try {
      writeAllSync(this.#file, bytes);
    } catch (error) {
      this.#failed = true;
      this.onError?.(error instanceof Error ? error : new Error(String(error)));
    }
  }

  close(): void {
    if (this.#closed) return;
    clearInterval(this.#ticker);
    this.flush();
    this.#closed = true;
    this.#file.close();
  }

  /** One Ethernet/IPv4/TCP frame carrying `payload` (not copied when large). */
  segment(
    from: Endpoint,
    to: Endpoint,
    seq: number,
    ack: number,
    flags: number,
    payload?: Uint8Array,
  ): void {
    if (this.#closed) return;
    const at = this.#frame(from, to, TCP_PROTOCOL, TCP, payload);
    const view = this.#view;
    view.setUint16(at, from.port);
    view.setUint16(at + 2, to.port);
    view.setUint32(at + 4, seq >>> 0);
    view.setUint32(at + 8, ack >>> 0);
    this.#buffer[at + 12] = (TCP / 4) << 4;
    this.#buffer[at + 13] = flags;
    view.setUint16(at + 14, 65535); // window
    view.setUint16(at + 16, 0); // checksum: not computed
    view.setUint16(at + 18, 0);
    this.#payload(payload);
  }

  /**
   * One Ethernet/IPv4/UDP frame: `payload` sent by `side`, between the
   * made-up client and server addresses, on the real ports (a TFTP
   * transfer's ports are what tell Wireshark it is TFTP).
   */
  datagram(side: Side, clientPort: number, serverPort: number, payload: Uint8Array): void {
    if (this.#closed) return;
    const client = { mac: CLIENT_MAC, ip: CLIENT_IP, port: clientPort };
    const server = { mac: SERVER_MAC, ip: SERVER_IP, port: serverPort };
    const [from, to] = side === "client" ? [client, server] : [server, client];
    const at = this.#frame(from, to, UDP_PROTOCOL, UDP, payload);
    const view = this.#view;
    view.setUint16(at, from.port);
    view.setUint16(at + 2, to.port);
    view.setUint16(at + 4, UDP + payload.length);
    view.setUint16(at + 6, 0); // checksum: none (allowed over IPv4)
    this.#payload(payload);
  }

  /** The record header, Ethernet and IPv4 headers of a frame; returns where the transport header goes. */
  #frame(
    from: Endpoint,
    to: Endpoint,
    protocol: number,
    transport: number,
    payload?: Uint8Array,
  ): number {
    const length = payload?.length ?? 0;
    const headers = ETHERNET + IPV4 + transport;
    if (this.#used + RECORD_HEADER + headers > BUFFER_BYTES) this.flush();
    const at = this.#used;
    const b = this.#buffer;
    const view = this.#view;
    const now = performance.timeOrigin + performance.now();
    const seconds = Math.floor(now / 1000);
    view.setUint32(at, seconds, true);
    view.setUint32(at + 4, Math.floor((now - seconds * 1000) * 1000), true);
    view.setUint32(at + 8, headers + length, true);
    view.setUint32(at + 12, headers + length, true);
    const eth = at + RECORD_HEADER;
    b.set(to.mac, eth);
    b.set(from.mac, eth + 6);
    view.setUint16(eth + 12, 0x0800);
    const ip = eth + ETHERNET;
    b[ip] = 0x45;
    b[ip + 1] = 0;
    view.setUint16(ip + 2, IPV4 + transport + length);
    view.setUint16(ip + 4, this.#ipId = (this.#ipId + 1) & 0xffff);
    view.setUint16(ip + 6, 0x4000); // don't fragment
    b[ip + 8] = 64;
    b[ip + 9] = protocol;
    view.setUint16(ip + 10, 0);
    b.set(from.ip, ip + 12);
    b.set(to.ip, ip + 16);
    view.setUint16(ip + 10, ipChecksum(b.subarray(ip, ip + IPV4)));
    this.#used += RECORD_HEADER + headers;
    return ip + IPV4;
  }

  /** The payload after the headers: into the buffer when it fits, else written out directly. */
  #payload(payload?: Uint8Array): void {
    const length = payload?.length ?? 0;
    if (!payload || length === 0) return;
    if (this.#used + length <= BUFFER_BYTES) {
      this.#buffer.set(payload, this.#used);
      this.#used += length;
    } else {
      this.flush();
      this.#write(payload);
    }
  }

  #writeFileHeader(): void {
    const view = this.#view;
    view.setUint32(0, 0xa1b2c3d4, true); // microsecond timestamps, little-endian
    view.setUint16(4, 2, true);
    view.setUint16(6, 4, true);
    view.setUint32(8, 0, true); // thiszone
    view.setUint32(12, 0, true); // sigfigs
    view.setUint32(16, SNAPLEN, true);
    view.setUint32(20, LINKTYPE_ETHERNET, true);
    this.#used = 24;
  }
}

/** One TCP conversation in a capture file. */
export class PcapConnection {
  #writer: PcapWriter;
  #ends: Record<Side, { endpoint: Endpoint; seq: number; finished: boolean }>;
  #closed = false;

  constructor(writer: PcapWriter, client: Endpoint, server: Endpoint, n: number) {
    this.#writer = writer;
    // Made-up initial sequence numbers, different per connection.
    const isn = (0x1000_0000 + n * 0x0101_0101) >>> 0;
    this.#ends = {
      client: { endpoint: client, seq: isn, finished: false },
      server: { endpoint: server, seq: (isn + 0x4000_0000) >>> 0, finished: false },
    };
    const c = this.#ends.client;
    const s = this.#ends.server;
    writer.segment(c.endpoint, s.endpoint, c.seq, 0, SYN);
    writer.segment(s.endpoint, c.endpoint, s.seq, c.seq + 1, SYN | ACK);
    c.seq = (c.seq + 1) >>> 0;
    s.seq = (s.seq + 1) >>> 0;
    writer.segment(c.endpoint, s.endpoint, c.seq, s.seq, ACK);
  }

  /** `bytes` sent by `side`, as segments of at most MAX_SEGMENT bytes. */
  data(side: Side, bytes: Uint8Array): void {
    const from = this.#ends[side];
    if (this.#closed || from.finished) return;
    const to = this.#ends[other(side)];
    for (let at = 0; at < bytes.length; at += MAX_SEGMENT) {
      const piece = bytes.subarray(at, at + MAX_SEGMENT);
      this.#writer.segment(from.endpoint, to.endpoint, from.seq, to.seq, PSH | ACK, piece);
      from.seq = (from.seq + piece.length) >>> 0;
    }
  }

  /** `side` ended its stream: FIN, acknowledged by the other side. */
  end(side: Side): void {
    const from = this.#ends[side];
    if (this.#closed || from.finished) return;
    from.finished = true;
    const to = this.#ends[other(side)];
    this.#writer.segment(from.endpoint, to.endpoint, from.seq, to.seq, FIN | ACK);
    from.seq = (from.seq + 1) >>> 0;
    this.#writer.segment(to.endpoint, from.endpoint, to.seq, from.seq, ACK);
  }

  /** The connection is gone: FIN for each side that has not ended yet; writes out the file buffer. */
  close(): void {
    if (this.#closed) return;
    this.end("client");
    this.end("server");
    this.#closed = true;
    this.#writer.flush();
  }
}

function other(side: Side): Side {
  return side === "client" ? "server" : "client";
}

function ipChecksum(header: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < header.length; i += 2) sum += (header[i] << 8) | header[i + 1];
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

function writeAllSync(file: Deno.FsFile, bytes: Uint8Array): void {
  for (let written = 0; written < bytes.length;) {
    written += file.writeSync(bytes.subarray(written));
  }
}
