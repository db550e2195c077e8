/** Recording a relay's connections into a capture file, one made-up TCP conversation each. */

import type { RelayTap } from "../relay/relay.ts";
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
