/**
 * `fsd proxy LISTEN_PORT TARGET_HOST TARGET_PORT`: a relay that shows the
 * traffic and injects faults.
 *
 * Permissions: --allow-net (to listen, and to reach the target); --allow-write=FILE
 * with --pcap FILE.
 */

import {
  type Direction,
  type Faults,
  Relay,
  type RelayEvent,
  type RelayOptions,
} from "../lib/relay/relay.ts";
import { ConnectionTrace, isTraceMode, type TraceMode } from "../lib/capture/conn_trace.ts";
import { PcapWriter } from "../lib/capture/pcap.ts";
import { relayPcapTap } from "../lib/capture/pcap_tap.ts";
import {
  type Command,
  expectedFailure,
  expectPositionals,
  parseCommandLine,
  parseCount,
  parsePort,
  stopOnSignal,
  UsageError,
} from "./shared/cli.ts";
import { isUdpProxy, runUdpProxy, UDP_PROXY_HELP } from "./proxy/udp.ts";

const USAGE = "fsd proxy LISTEN_PORT TARGET_HOST TARGET_PORT [OPTIONS]";

const help = `Relay connections on LISTEN_PORT to TARGET_HOST TARGET_PORT, both ways,
showing the traffic and injecting faults.

Usage: ${USAGE}

Options:
  --host ADDR          address to listen on (default 0.0.0.0)
  --trace MODE         fsd: decode fsd packets, one line each
                       hex: a hex dump of every chunk
                       text: the printable text of every chunk
                       ladder: a ladder diagram of the fsd packets, client
                       on the left, server on the right (long runs of DAT
                       and ACK summarised)
                       none: only log connections (default)
  --pcap FILE          write every relayed connection, both ways, to FILE
                       (pcap, made-up Ethernet/IPv4/TCP framing; no root
                       needed); open it in Wireshark with 'fsd wireshark'
  --stream up|down|both  which direction the faults below apply to (default
                       both); up is client to target, down is target to client
  --latency MS         delay every chunk by MS milliseconds
  --jitter MS          ... plus or minus up to MS more, at random
  --bandwidth KBPS     cap the rate at KBPS kilobytes (1000 bytes) per second
  --slice BYTES        pass data on in writes of at most BYTES bytes
  --limit-data BYTES   close the connection after BYTES bytes
  --reset-after MS     abort the connection MS milliseconds after it opens
  --timeout MS         pass no data at all; close the connection after MS
                       milliseconds (0: hold it open until a side closes)
  --corrupt RATE       change each byte with probability RATE (0 to 1, e.g.
                       0.000001): what integrity checks must catch
  -h, --help           show this help
${UDP_PROXY_HELP}

Trace lines start with the time and the connection id; '>' is client to
target, '<' is target to client (as socat -v shows them). The faults are
named as toxiproxy names them. Runs until SIGINT or SIGTERM.

Permissions: --allow-net (and --allow-write=FILE with --pcap)

Examples:
  fsd proxy 9000 127.0.0.1 10000 --trace fsd
  fsd proxy 9000 127.0.0.1 10000 --pcap lab.pcap
  fsd proxy 9000 lab1 10000 --latency 50 --jitter 10 --stream down
  fsd proxy 9000 127.0.0.1 10000 --bandwidth 100 --slice 7 --trace hex`;

const FAULT_FLAGS = [
  "latency",
  "jitter",
  "bandwidth",
  "slice",
  "limit-data",
  "reset-after",
  "timeout",
] as const;

/** --corrupt: a probability above 0, at most 1. */
function parseRate(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const rate = /^(0|1)?(\.\d+)?(e-\d+)?$/i.test(text) ? Number(text) : NaN;
  if (!(rate > 0 && rate <= 1)) {
    throw new UsageError(`invalid --corrupt: ${text}: expected a probability above 0, at most 1`);
  }
  return rate;
}

async function run(args: string[]): Promise<void> {
  if (isUdpProxy(args)) return await runUdpProxy(args);
  const parsed = parseCommandLine(args, {
    host: { type: "string" },
    trace: { type: "string" },
    stream: { type: "string" },
    pcap: { type: "string" },
    latency: { type: "string" },
    jitter: { type: "string" },
    bandwidth: { type: "string" },
    slice: { type: "string" },
    "limit-data": { type: "string" },
    "reset-after": { type: "string" },
    timeout: { type: "string" },
    corrupt: { type: "string" },
  }, help);
  if (!parsed) return;
  const { values, positionals } = parsed;
  expectPositionals(positionals, 3, 3, USAGE);
  const [listenText, targetHost, targetText] = positionals;
  const port = parsePort(listenText);
  const targetPort = parsePort(targetText, 1);
  if (port !== 0 && port === targetPort && isThisHost(targetHost, values.host)) {
    throw new UsageError(
      `the target ${targetHost} port ${targetPort} is the proxy's own listening address: it would relay to itself`,
    );
  }
  const mode = values.trace ?? "none";
  if (!isTraceMode(mode)) {
    throw new UsageError(`invalid --trace: ${mode}: expected fsd, ladder, hex, text or none`);
  }
  const stream = values.stream ?? "both";
  if (!["up", "down", "both"].includes(stream)) {
    throw new UsageError(`invalid --stream: ${stream}: expected up, down or both`);
  }
  const number = (name: typeof FAULT_FLAGS[number], min = 0) => {
    const text = values[name];
    return text === undefined ? undefined : parseCount(text, `--${name}`, min);
  };
  const faults: Faults = {
    latencyMs: number("latency"),
    jitterMs: number("jitter"),
    bandwidthKBps: number("bandwidth", 1),
    sliceBytes: number("slice", 1),
    limitDataBytes: number("limit-data"),
    resetAfterMs: number("reset-after"),
    timeoutMs: number("timeout"),
    corruptRate: parseRate(values.corrupt),
  };
  const applies = (direction: Direction) => stream === "both" || stream === direction;
  const trace = mode === "none" ? undefined : tracer(mode);
  const pcap = values.pcap === undefined ? undefined : PcapWriter.create(values.pcap);
  if (pcap) {
    pcap.onError = (error) =>
      console.error(`fsd: capture stopped, cannot write ${values.pcap}: ${error.message}`);
  }

  const relay = startRelay({
    port,
    hostname: values.host,
    targetHost,
    targetPort,
    faults: { up: applies("up") ? faults : {}, down: applies("down") ? faults : {} },
    onData: trace?.onData,
    tap: pcap && relayPcapTap(pcap, targetPort),
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
}

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

export const proxy: Command = {
  name: "proxy",
  summary: "relay TCP connections, showing the traffic and injecting faults",
  help,
  run,
};
