/**
 * PROVISIONAL (branch udp): the one UDP socket of lib/net, on Deno's own
 * datagram API. Replaced by branch tftp's lib/net/udp.ts at merge.
 */

import { listenError } from "./listen.ts";

export interface Endpoint {
  hostname: string;
  port: number;
}

export interface UdpSocket {
  readonly local: Endpoint;
  receive(into?: Uint8Array): Promise<[Uint8Array, Endpoint]>;
  send(data: Uint8Array, to: Endpoint): Promise<number>;
  close(): void;
}

export class UdpBindError extends Error {
  constructor(message: string, options?: { cause: unknown }) {
    super(message, options);
    this.name = "UdpBindError";
  }
}

export async function bindUdp(hostname: string, port: number): Promise<UdpSocket> {
  const allowed = await Deno.permissions.query({ name: "net", host: `${hostname}:${port}` });
  if (allowed.state !== "granted") {
    throw new UdpBindError(
      `cannot bind UDP ${hostname} port ${port}: run with --allow-net=${hostname}`,
    );
  }
  let conn: Deno.DatagramConn;
  try {
    conn = Deno.listenDatagram({ transport: "udp", hostname, port });
  } catch (error) {
    throw listenError(error, hostname, port);
  }
  const addr = conn.addr as Deno.NetAddr;
  let closed = false;
  return {
    local: { hostname: addr.hostname, port: addr.port },
    async receive(into) {
      const [data, from] = await conn.receive(into);
      const { hostname, port } = from as Deno.NetAddr;
      return [data, { hostname, port }];
    },
    send: (data, to) => conn.send(data, { transport: "udp", hostname: to.hostname, port: to.port }),
    close() {
      if (closed) return;
      closed = true;
      conn.close();
    },
  };
}
