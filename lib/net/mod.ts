/**
 * lib/net/: sockets of servers and clients, written once: binding with clear
 * errors (`listenTcp`, `listenError`), the accept loop (`AcceptLoop`),
 * connection limits (`ConnectionLimits`), and connecting out with a time
 * limit (`connectWithTimeout`), one UDP socket (`bindUdp`). TLS and the
 * PROXY protocol plug in here.
 * Imports only lib/bytes/.
 */

export * from "./accept_loop.ts";
export * from "./connect.ts";
export * from "./limits.ts";
export * from "./listen.ts";
export * from "./stream_conn.ts";
export * from "./udp.ts";
