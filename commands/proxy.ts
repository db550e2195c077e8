/**
 * `fsd proxy LISTEN_PORT TARGET_HOST TARGET_PORT`: a relay that shows the
 * traffic and injects faults.
 * Its flags, help and permissions are declared below, once; the faults'
 * come from lib/relay/faults.ts.
 */

import {
  type Direction,
  Relay,
  RELAY_DEFAULTS,
  type RelayEvent,
  type RelayOptions,
} from "../lib/relay/relay.ts";
import { limitFlags } from "./shared/limit_flags.ts";
import { FAULTS, type Faults } from "../lib/relay/faults.ts";
import { ConnectionTrace, type TraceMode } from "../lib/capture/conn_trace.ts";
import { relayPcapTap } from "../lib/capture/pcap_tap.ts";
import { openCapture } from "./shared/capture.ts";
import { expectedFailure, expectPositionals, stopOnSignal, UsageError } from "./shared/cli.ts";
import { defineCommand, type FlagSpec } from "./shared/command.ts";
import { integer, oneOf, parsePort, rate } from "./shared/values.ts";
import { traceMode } from "./client/client_flags.ts";
import { runUdpProxy, UDP_PROXY_FLAGS, UDP_PROXY_HEADING, UDP_PROXY_USAGE } from "./proxy/udp.ts";

const USAGE = "fsd proxy LISTEN_PORT TARGET_HOST TARGET_PORT [OPTIONS]";

/** One flag per fault of lib/relay/faults.ts, on the TCP relay. */
const FAULT_FLAGS: Record<string, FlagSpec<number>> = Object.fromEntries(
  FAULTS.map((fault) => [fault.name, {
    arg: fault.unit,
    value: fault.unit === "RATE" ? rate() : integer(fault.min),
    side: "tcp",
    help: fault.does,
  }]),
);

export const proxy = defineCommand({
  name: "proxy",
  title: `Relay connections on LISTEN_PORT to TARGET_HOST TARGET_PORT, both ways,
showing the traffic and injecting faults.`,
  usage: [USAGE, UDP_PROXY_USAGE],
  flags: {
    host: { arg: "ADDR", help: "address to listen on (default 0.0.0.0)" },
    trace: {
      arg: "MODE",
      value: traceMode,
      default: "none",
      side: "tcp",
      help: `fsd: decode fsd packets, one line each
hex: a hex dump of every chunk
text: the printable text of every chunk
ladder: a ladder diagram of the fsd packets, client
on the left, server on the right (long runs of DAT
and ACK summarised)
none: only log connections`,
    },
    pcap: {
      arg: "FILE",
      permission: "--allow-write=FILE",
      help: `write everything relayed, both ways, to FILE (pcap,
made-up Ethernet/IPv4 framing, no root needed): each
TCP connection a conversation, each UDP datagram a
frame on the real ports; open it in Wireshark with
'fsd wireshark'`,
    },
    stream: {
      arg: "up|down|both",
      value: oneOf("up", "down", "both"),
      default: "both",
      help: `which direction the faults apply to; up is
client to target, down is target to client`,
    },
    ...limitFlags(RELAY_DEFAULTS, "tcp"),
    ...FAULT_FLAGS,
    ...UDP_PROXY_FLAGS,
  },
  groups: { udp: UDP_PROXY_HEADING },
  notes: `Trace lines start with the time and the connection id; '>' is client to
target, '<' is target to client (as socat -v shows them). The faults are
named as toxiproxy names them. Runs until SIGINT or SIGTERM.`,
  permissions: "--allow-net",
  examples: [
    "fsd proxy 9000 127.0.0.1 10000 --trace fsd",
    "fsd proxy 9000 127.0.0.1 10000 --pcap lab.pcap",
    "fsd proxy 9000 lab1 10000 --latency 50 --jitter 10 --stream down",
    "fsd proxy 9000 127.0.0.1 10000 --bandwidth 100 --slice 7 --trace hex",
    "fsd proxy --udp 6969 127.0.0.1 69 --drop 5% --duplicate 2% --reorder 5%",
  ],
  side: {
    of: (_, values) => values.udp ? "udp" : "tcp",
    names: { tcp: "the TCP relay (without --udp)", udp: "the UDP relay (--udp)" },
  },
  async run({ values, positionals }) {
    if (values.udp) return await runUdpProxy(values, positionals);
    expectPositionals(positionals, 3, 3, USAGE);
    const [listenText, targetHost, targetText] = positionals;
    const port = parsePort(listenText);
    const targetPort = parsePort(targetText, 1);
    if (port !== 0 && port === targetPort && isThisHost(targetHost, values.host)) {
      throw new UsageError(
        `the target ${targetHost} port ${targetPort} is the proxy's own listening address: it would relay to itself`,
      );
    }
    const given = values as Record<string, unknown>;
    const faults: Faults = Object.fromEntries(
      FAULTS.map((fault) => [fault.field, given[fault.name]]),
    );
    const { stream, trace: mode } = values;
    const applies = (direction: Direction) => stream === "both" || stream === direction;
    const trace = mode === "none" ? undefined : tracer(mode);
    const pcap = openCapture(values.pcap);

    const relay = startRelay({
      port,
      hostname: values.host,
      targetHost,
      targetPort,
      faults: { up: applies("up") ? faults : {}, down: applies("down") ? faults : {} },
      onData: trace?.onData,
      tap: pcap && relayPcapTap(pcap, targetPort),
      maxClients: values["max-clients"],
      maxPerIp: values["max-per-ip"],
      idleTimeoutMs: values["idle-timeout"],
      log: (event) => {
        console.log(formatEvent(event, targetHost, targetPort));
        if (event.event === "connection") trace?.open(event.id);
        if (event.event !== "connection") trace?.close(event.id);
      },
    });
    const stopped = stopOnSignal(async () => {
      await relay.close();
      pcap?.close();
    });
    console.log(
      `Proxy listening on ${relay.addr.hostname} port ${relay.addr.port}, relaying to ${targetHost} port ${targetPort}`,
    );
    await stopped;
  },
});

/** Relay.start, with a port that cannot be had as an expected failure. */
function startRelay(config: RelayOptions): Relay {
  try {
    return Relay.start(config);
  } catch (error) {
    expectedFailure(error);
  }
}

/** Whether `host` names an address a proxy listening on `listenHost` (default: every address) answers on. */
function isThisHost(host: string, listenHost = "0.0.0.0"): boolean {
  const loopback = /^(localhost|127(\.\d{1,3}){3}|::1|\[::1\]|0\.0\.0\.0|::)$/i;
  const wildcard = listenHost === "0.0.0.0" || listenHost === "::";
  return host === listenHost || (loopback.test(host) && (wildcard || loopback.test(listenHost)));
}

function formatEvent(event: RelayEvent, targetHost: string, targetPort: number): string {
  switch (event.event) {
    case "connection":
      return `[${event.id}] connection from ${event.address} port ${event.port}`;
    case "refused":
      return `[${event.id}] refused: ${event.reason}`;
    case "connect-failed":
      return `[${event.id}] cannot reach ${targetHost} port ${targetPort}: ${event.message}; closing`;
    case "close":
      return `[${event.id}] closed: ${event.up} bytes up, ${event.down} bytes down (${event.reason})`;
  }
}

/** One ConnectionTrace per open connection, printing to stdout. */
function tracer(mode: TraceMode) {
  const traces = new Map<number, ConnectionTrace>();
  return {
    open(id: number) {
      traces.set(id, new ConnectionTrace(mode, id, (line) => console.log(line)));
    },
    onData(id: number, direction: Direction, chunk: Uint8Array) {
      traces.get(id)?.data(direction, chunk);
    },
    close(id: number) {
      traces.get(id)?.close();
      traces.delete(id);
    },
  };
}
