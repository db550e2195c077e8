/**
 * A client's own connections, traced and recorded: a tap for each
 * connection the client opens (fsd get may open two), printing trace lines
 * and writing a capture file that holds them all.
 */

import type { ConnTap } from "../fsd/packet_conn.ts";
import { ConnectionTrace, type TraceMode } from "./conn_trace.ts";
import { type PcapConnection, PcapWriter } from "./pcap.ts";

export interface ClientCaptureConfig {
  /** Capture file to write (created at the first connection). */
  pcapPath?: string;
  /** The server's port, as the capture file shows it. */
  serverPort: number;
  trace?: TraceMode;
  /** Where trace lines go (and the one line saying a capture file could not be written). */
  print: (line: string) => void;
}

export class ClientCapture {
  #config: ClientCaptureConfig;
  #writer: PcapWriter | undefined;
  #connections = 0;

  constructor(config: ClientCaptureConfig) {
    this.#config = config;
  }

  /** A tap for the next connection. */
  tap(): ConnTap {
    const { pcapPath, serverPort, trace, print } = this.#config;
    const id = ++this.#connections;
    if (pcapPath !== undefined && !this.#writer) {
      this.#writer = PcapWriter.create(pcapPath);
      this.#writer.onError = (error) =>
        print(`fsd: capture stopped, cannot write ${pcapPath}: ${error.message}`);
    }
    const writer = this.#writer;
    const traced = trace && trace !== "none"
      ? new ConnectionTrace(trace, id, print, false)
      : undefined;
    let recorded: PcapConnection | undefined;
    const record = () => recorded ??= writer?.connection(serverPort);
    return {
      sent(bytes) {
        record()?.data("client", bytes);
        traced?.data("up", bytes);
      },
      received(bytes) {
        record()?.data("server", bytes);
        traced?.data("down", bytes);
      },
      closed() {
        record()?.close();
        traced?.close();
      },
    };
  }

  /** Writes out and closes the capture file. */
  close(): void {
    this.#writer?.close();
  }
}
