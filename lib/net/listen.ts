/**
 * Binding a listening socket, with errors that say which address and port
 * could not be had: a taken port keeps the lab's classic message, an
 * address that is not this machine's names the host.
 */

import { errorMessage } from "../bytes/source_sink.ts";

export interface ListenConfig {
  /** Address to listen on (default 0.0.0.0). */
  hostname?: string;
  /** TCP or UDP port; 0 lets the system choose. */
  port: number;
  /** Share the port with other processes listening with it too (Linux). */
  reusePort?: boolean;
}

/** The socket could not be bound; `cause` is the system's error. */
export class ListenError extends Error {
  constructor(message: string, options: { cause: unknown }) {
    super(message, options);
    this.name = "ListenError";
  }
}

export const DEFAULT_HOST = "0.0.0.0";

/** Listens on TCP; a failure to bind is a ListenError. */
export function listenTcp(config: ListenConfig): Deno.TcpListener {
  const hostname = config.hostname ?? DEFAULT_HOST;
  try {
    return Deno.listen({ hostname, port: config.port, reusePort: config.reusePort });
  } catch (error) {
    throw listenError(error, hostname, config.port);
  }
}

/** Turns any failure to bind `hostname` port `port` (Deno's or node:dgram's) into a ListenError. */
export function listenError(error: unknown, hostname: string, port: number): ListenError {
  const detail = errorMessage(error);
  const code = (error as { code?: string }).code;
  if (error instanceof Deno.errors.AddrInUse || code === "EADDRINUSE") {
    return new ListenError(`Unable to bind to port ${port}. Sorry! (${detail})`, { cause: error });
  }
  if (error instanceof Deno.errors.AddrNotAvailable || code === "EADDRNOTAVAIL") {
    return new ListenError(
      `cannot listen on ${hostname}: not an address of this machine (${detail})`,
      { cause: error },
    );
  }
  if (error instanceof Deno.errors.PermissionDenied || code === "EACCES") {
    return new ListenError(`cannot listen on ${hostname} port ${port}: ${detail}`, {
      cause: error,
    });
  }
  return new ListenError(`cannot listen on ${hostname}: ${detail}`, { cause: error });
}
