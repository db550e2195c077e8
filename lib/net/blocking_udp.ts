/**
 * A UDP socket made through the C library (Deno's FFI), whose receive waits
 * on the calling thread instead of Deno's event loop. Deno's own UDP API
 * hands every wait to its event loop and back, which costs a lock-step
 * transfer about 15 µs a datagram more than C (a 1 GiB download at blksize
 * 65464 from tftpd-hpa: 0.85x of curl's speed, and a minimal Deno client on
 * this socket 1.14x; docs/PERFORMANCE.md, "session 34"). Only for a process
 * that serves nobody else meanwhile (fsd's TFTP client): while it waits,
 * no timer or signal listener of its runs, so callers wait in slices
 * (`receive`'s `ms`) and let the event loop turn between them.
 *
 * Offered only where it is safe to: on Linux with glibc, when Deno grants
 * --allow-ffi (README's install line's --allow-all does; the narrow
 * permissions from source do not) and --allow-net for both ends (FFI calls
 * pass by Deno's permission checks, so they are made here first), and for
 * IP addresses (a host name takes Deno's socket, which resolves it).
 */

import type { Endpoint } from "./endpoint.ts";
import { EINTR, errno, type Libc, loadLibc } from "./libc.ts";

const AF_INET = 2;
const AF_INET6 = 10;
const SOCK_DGRAM = 2;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SO_RCVBUF = 8;
const SO_RCVTIMEO = 20;
const MSG_DONTWAIT = 0x40;
const SOCKADDR_BYTES = 28;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** `hostname` (an IP address) and `port` as a sockaddr_in or sockaddr_in6, or undefined for a name. */
function sockaddr(c: Libc, hostname: string, port: number): Uint8Array | undefined {
  const family = hostname.includes(":") ? AF_INET6 : AF_INET;
  const address = new Uint8Array(16);
  if (c.inet_pton(family, encoder.encode(`${hostname}\0`), address) !== 1) return undefined;
  const bytes = new Uint8Array(family === AF_INET ? 16 : SOCKADDR_BYTES);
  const view = new DataView(bytes.buffer);
  view.setUint16(0, family, true);
  view.setUint16(2, port);
  if (family === AF_INET) bytes.set(address.subarray(0, 4), 4);
  else bytes.set(address, 8);
  return bytes;
}

/** The endpoint a sockaddr names. */
function endpointOf(c: Libc, bytes: Uint8Array): Endpoint {
  const view = new DataView(bytes.buffer, bytes.byteOffset);
  const family = view.getUint16(0, true);
  const text = new Uint8Array(64);
  const address = family === AF_INET ? bytes.subarray(4, 8) : bytes.subarray(8, 24);
  c.inet_ntop(family, address.slice(), text, text.length);
  const hostname = decoder.decode(text.subarray(0, text.indexOf(0)));
  return { hostname, port: view.getUint16(2) };
}

function sameBytes(a: Uint8Array, b: Uint8Array, length: number): boolean {
  for (let i = 0; i < length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export class BlockingUdp {
  readonly local: Endpoint;
  /**
   * The bytes of waiting datagrams the kernel keeps for this socket
   * (SO_RCVBUF as read back: Linux doubles what is asked, up to twice
   * net.core.rmem_max), past which arriving datagrams are dropped.
   */
  readonly receiveBuffer: number;
  readonly #c: Libc;
  readonly #fd: number;
  #closed = false;
  /** The receive timeout the socket has now (SO_RCVTIMEO), in ms. */
  #timeoutMs = -1;
  readonly #from = new Uint8Array(SOCKADDR_BYTES);
  readonly #fromLength = new Uint32Array(1);
  /** The same four bytes, as recvfrom takes them. */
  readonly #fromLengthBytes = new Uint8Array(this.#fromLength.buffer);
  /** The last endpoint sent to or received from, with its sockaddr: most datagrams are its. */
  #known: { endpoint: Endpoint; bytes: Uint8Array } | undefined;
  readonly #timeval = new BigInt64Array(2);

  private constructor(
    c: Libc,
    fd: number,
    local: Endpoint,
    peer: { endpoint: Endpoint; bytes: Uint8Array },
  ) {
    this.#c = c;
    this.#fd = fd;
    this.local = local;
    this.#known = peer;
    this.receiveBuffer = this.#intOption(SO_RCVBUF);
  }

  /**
   * A socket bound to `localHost` port 0, for datagrams with `peer`; undefined
   * where this kind of socket is not offered (see above), so the caller takes
   * Deno's. `receiveBuffer`: ask for a receive buffer of this many bytes (the
   * kernel grants at most net.core.rmem_max: see `receiveBuffer`).
   */
  static open(
    localHost: string,
    peer: Endpoint,
    receiveBuffer?: number,
  ): BlockingUdp | undefined {
    const c = loadLibc();
    if (!c) return undefined;
    for (const host of [`${localHost}:0`, `${peer.hostname}:${peer.port}`]) {
      if (Deno.permissions.querySync({ name: "net", host }).state !== "granted") return undefined;
    }
    const bound = sockaddr(c, localHost, 0);
    const to = sockaddr(c, peer.hostname, peer.port);
    if (!bound || !to) return undefined;
    const family = new DataView(bound.buffer).getUint16(0, true);
    const fd = c.socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return undefined;
    if (receiveBuffer !== undefined) {
      // Best effort: a refusal leaves the default, which `receiveBuffer` then reports.
      const value = new Int32Array([receiveBuffer]);
      c.setsockopt(fd, SOL_SOCKET, SO_RCVBUF, new Uint8Array(value.buffer), 4);
    }
    const name = new Uint8Array(SOCKADDR_BYTES);
    const length = new Uint32Array([SOCKADDR_BYTES]);
    if (
      c.bind(fd, bound, bound.length) !== 0 ||
      c.getsockname(fd, name, new Uint8Array(length.buffer)) !== 0
    ) {
      c.close(fd);
      return undefined;
    }
    return new BlockingUdp(c, fd, endpointOf(c, name), { endpoint: peer, bytes: to });
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Sends one datagram to `to` (an IP address); a failure goes unheard, as UDP's losses do. */
  send(data: Uint8Array, to: Endpoint): void {
    if (this.#closed) return;
    const known = this.#knownAs(to);
    if (!known) return;
    this.#c.sendto(this.#fd, data, BigInt(data.length), 0, known, known.length);
  }

  /**
   * Waits up to `ms` (at least 1) on this thread for one datagram into
   * `into`: its bytes (a view of `into`) and sender, or null if none came.
   */
  receive(into: Uint8Array, ms: number): [Uint8Array, Endpoint] | null {
    if (this.#closed) return null;
    this.#setTimeout(Math.max(1, Math.ceil(ms)));
    return this.#receive(into, 0);
  }

  /** A datagram already here, without waiting: as `receive`, null if none is. */
  receiveNow(into: Uint8Array): [Uint8Array, Endpoint] | null {
    return this.#closed ? null : this.#receive(into, MSG_DONTWAIT);
  }

  #receive(into: Uint8Array, flags: number): [Uint8Array, Endpoint] | null {
    for (;;) {
      this.#fromLength[0] = SOCKADDR_BYTES;
      const n = Number(
        this.#c.recvfrom(
          this.#fd,
          into,
          BigInt(into.length),
          flags,
          this.#from,
          this.#fromLengthBytes,
        ),
      );
      if (n >= 0) return [into.subarray(0, n), this.#sender()];
      // Interrupted: again (a call that does not wait is never interrupted). The timeout or
      // nothing there (EAGAIN), or any other failure: nothing came, and the caller's deadline
      // decides (a failure that lasts ends as a timeout, never as a spin: the channel lets the
      // event loop turn between two tries).
      if (flags === MSG_DONTWAIT || errno(this.#c) !== EINTR) return null;
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#c.close(this.#fd);
  }

  #setTimeout(ms: number): void {
    if (ms === this.#timeoutMs) return;
    this.#timeoutMs = ms;
    this.#timeval[0] = BigInt(Math.floor(ms / 1000));
    this.#timeval[1] = BigInt((ms % 1000) * 1000);
    const bytes = new Uint8Array(this.#timeval.buffer);
    this.#c.setsockopt(this.#fd, SOL_SOCKET, SO_RCVTIMEO, bytes, bytes.length);
  }

  /** An integer socket option of level SOL_SOCKET; 0 if it cannot be read. */
  #intOption(option: number): number {
    const value = new Int32Array(1);
    const length = new Uint32Array([4]);
    const read = this.#c.getsockopt(
      this.#fd,
      SOL_SOCKET,
      option,
      new Uint8Array(value.buffer),
      new Uint8Array(length.buffer),
    );
    return read === 0 ? value[0] : 0;
  }

  #sender(): Endpoint {
    const length = this.#fromLength[0];
    const known = this.#known;
    if (known && known.bytes.length === length && sameBytes(known.bytes, this.#from, length)) {
      return known.endpoint;
    }
    const endpoint = endpointOf(this.#c, this.#from);
    this.#known = { endpoint, bytes: this.#from.slice(0, length) };
    return endpoint;
  }

  #knownAs(to: Endpoint): Uint8Array | undefined {
    const known = this.#known;
    if (known && known.endpoint.port === to.port && known.endpoint.hostname === to.hostname) {
      return known.bytes;
    }
    const bytes = sockaddr(this.#c, to.hostname, to.port);
    if (bytes) this.#known = { endpoint: to, bytes };
    return bytes;
  }
}
