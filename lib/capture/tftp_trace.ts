/**
 * TFTP datagrams shown as fsd/1's packets are: the same labels as the ladder
 * and the dissector (`RRQ "notes.txt"`, `DAT 7 (512 bytes)`, `ACK 7`,
 * `OACK blksize=1468`, `ERR 1 File not found`), for the live page and for
 * `fsd get/put tftp://... --trace`. One trace per transfer (its own local
 * port), in any of the trace modes.
 */

import { Opcode, type OptionPairs, parsePacket } from "../tftp/codec.ts";
import type { DatagramTap } from "../tftp/channel.ts";
import type { TraceMode } from "./conn_trace.ts";
import { Ladder, ladderHeader } from "./ladder.ts";
import { chunkEntry } from "./trace.ts";

/** A datagram as a ladder label, and whether it is data (with its size) or an ACK (runs summarised). */
export interface DatagramLabel {
  label: string;
  kind: "data" | "ack" | "other";
  size: number;
}

const names = new TextDecoder();

/** What a TFTP datagram is, in the labels fsd/1's packets have. */
export function tftpLabel(bytes: Uint8Array): DatagramLabel {
  let packet;
  try {
    packet = parsePacket(bytes);
  } catch {
    return { label: `not TFTP (${bytes.length} bytes)`, kind: "other", size: 0 };
  }
  const pairs = (options: OptionPairs) =>
    options.map(([name, value]) => ` ${name}=${value}`).join("");
  switch (packet.op) {
    case Opcode.RRQ:
    case Opcode.WRQ: {
      const op = packet.op === Opcode.RRQ ? "RRQ" : "WRQ";
      const mode = packet.mode === "octet" ? "" : ` ${packet.mode}`;
      const label = `${op} ${JSON.stringify(names.decode(packet.name))}${mode}${
        pairs(packet.options)
      }`;
      return { label, kind: "other", size: 0 };
    }
    case Opcode.DATA: {
      const size = packet.data.length;
      return { label: `DAT ${packet.block} (${size} bytes)`, kind: "data", size };
    }
    case Opcode.ACK:
      return { label: `ACK ${packet.block}`, kind: "ack", size: 0 };
    case Opcode.ERROR:
      return { label: `ERR ${packet.code} ${packet.message}`, kind: "other", size: 0 };
    case Opcode.OACK:
      return { label: `OACK${pairs(packet.options)}`, kind: "other", size: 0 };
  }
}

/** Transfers traced at once, at most; past it the oldest one's trace is closed. */
const MAX_TRACED = 64;

function clock(): string {
  return new Date().toISOString().slice(11, 23);
}

/**
 * A tap tracing each transfer of a client's job (keyed by its local port)
 * in `mode`, printing lines with `print`; `close` ends every trace (a
 * ladder's summary of its last run).
 */
export function tftpTraceTap(
  mode: TraceMode,
  print: (line: string) => void,
): { tap: DatagramTap; close(): void } {
  const traces = new Map<number, { id: number; ladder?: Ladder; offsets: [number, number] }>();
  let next = 0;
  const traceOf = (port: number) => {
    let trace = traces.get(port);
    if (!trace) {
      if (traces.size >= MAX_TRACED) {
        const [oldest, gone] = traces.entries().next().value!;
        gone.ladder?.close();
        traces.delete(oldest);
      }
      trace = { id: ++next, offsets: [0, 0] };
      if (mode === "ladder") {
        print(ladderHeader());
        trace.ladder = new Ladder(print);
      }
      traces.set(port, trace);
    }
    return trace;
  };
  const tap: DatagramTap = (sent, bytes, local) => {
    if (mode === "none") return;
    const trace = traceOf(local.port);
    const direction = sent ? "up" : "down";
    const head = `${clock()} [${trace.id}] ${sent ? ">" : "<"}`;
    switch (mode) {
      case "fsd":
        return print(`${head} ${tftpLabel(bytes).label}`);
      case "ladder": {
        const { label, kind, size } = tftpLabel(bytes);
        return trace.ladder!.entry(direction, label, kind, size);
      }
      case "hex":
      case "text": {
        const side = sent ? 0 : 1;
        print(chunkEntry(mode, head, bytes, trace.offsets[side]));
        trace.offsets[side] += bytes.length;
      }
    }
  };
  return {
    tap,
    close() {
      for (const trace of traces.values()) trace.ladder?.close();
      traces.clear();
    },
  };
}
