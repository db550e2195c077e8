/**
 * The seam between fsd's protocols and their sockets: a byte stream with
 * addresses. `Deno.Conn` (plain TCP, Deno's TLS) and `NodeSocketConn`
 * (node:net / node:tls sockets) both satisfy it, as `Deno.Listener` and
 * `NodeTlsListener` satisfy `StreamListener`, so no cast joins them.
 */

export interface StreamConn {
  readonly remoteAddr: Deno.Addr;
  readonly localAddr: Deno.Addr;
  read(p: Uint8Array): Promise<number | null>;
  write(p: Uint8Array): Promise<number>;
  /** Ends the sending side; reading goes on. */
  closeWrite(): Promise<void>;
  close(): void;
  /** Turns Nagle's algorithm off or on, where the socket can. */
  setNoDelay?(noDelay?: boolean): void;
}

/** What an accept loop needs of a listener. */
export interface StreamListener<C extends StreamConn = StreamConn> {
  readonly addr: Deno.Addr;
  accept(): Promise<C>;
  close(): void;
}
