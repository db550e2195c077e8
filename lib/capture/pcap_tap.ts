/** Recording a relay into a capture file: each TCP connection a made-up conversation, each UDP datagram a frame. */

import type { RelayTap } from "../relay/relay.ts";
import type { UdpRelayTap } from "../relay/udp_relay.ts";
import type { EchoEnds, EchoTap } from "../echo/client.ts";
import type { PcapConnection, PcapWriter } from "./pcap.ts";

/** A relay tap writing every connection to `writer`, the target shown on `serverPort`. */
export function relayPcapTap(writer: PcapWriter, serverPort: number): RelayTap {
  const connections = new Map<number, PcapConnection>();
  return {
    open(id) {
      connections.set(id, writer.connection(serverPort));
    },
    write(id, direction, chunk) {
      connections.get(id)?.data(direction === "up" ? "client" : "server", chunk);
    },
    end(id, direction) {
      connections.get(id)?.end(direction === "up" ? "client" : "server");
    },
    close(id) {
      connections.get(id)?.close();
      connections.delete(id);
    },
  };
}

/** A UDP relay tap writing every datagram to `writer`, on the client's and the target's real ports. */
export function udpRelayPcapTap(writer: PcapWriter): UdpRelayTap {
  return {
    datagram(direction, client, target, bytes) {
      writer.datagram(direction === "up" ? "client" : "server", client.port, target.port, bytes);
    },
  };
}

/** An echo client's tap: its datagrams as UDP frames, or its connection as one TCP conversation. */
export function echoPcapTap(writer: PcapWriter, udp: boolean): EchoTap {
  let connection: PcapConnection | undefined;
  const record = (side: "client" | "server", bytes: Uint8Array, ends: EchoEnds) => {
    if (udp) return writer.datagram(side, ends.local, ends.remote, bytes);
    connection ??= writer.connection(ends.remote);
    connection.data(side, bytes);
  };
  return {
    sent: (bytes, ends) => record("client", bytes, ends),
    received: (bytes, ends) => record("server", bytes, ends),
    closed() {
      connection?.close();
      writer.flush();
    },
  };
}
