/** One side of a connection or a datagram: an address (or a name) and a port. */
export interface Endpoint {
  hostname: string;
  port: number;
}
