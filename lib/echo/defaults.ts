/**
 * The TCP echo servers' limits unless told otherwise: a lab's class, and a
 * chat that sits quiet a while. Apart from the servers, so that the flags'
 * help can say them without loading a server.
 */
export const ECHO_DEFAULTS = { maxClients: 1000, maxPerIp: 100, idleTimeoutMs: 300_000 };
