/**
 * `fsd proxy --udp LISTEN_PORT TARGET_HOST TARGET_PORT`: a UDP relay that
 * drops, duplicates and reorders datagrams (for TFTP under loss).
 *
 * Permissions: --allow-net.
 */

import { type UdpFaults, UdpRelay, type UdpRelayEvent } from "../../lib/relay/udp_relay.ts";
import { udpRelayPcapTap } from "../../lib/capture/pcap_tap.ts";
import { openCapture } from "../shared/capture.ts";
import {
  expectedFailure,
  expectPositionals,
  parseCommandLine,
  parseCount,
  parsePort,
  stopOnSignal,
  UsageError,
} from "../shared/cli.ts";

const USAGE =
  "fsd proxy --udp LISTEN_PORT TARGET_HOST TARGET_PORT [--drop RATE] [--duplicate RATE] [--reorder RATE] [--pcap FILE]";

export const UDP_PROXY_HELP = `
UDP (--udp): relay datagrams instead of TCP connections; a TFTP server's
answers from its transfer ports are relayed too.
  --udp                relay UDP: ${USAGE}
  --drop RATE          drop this share of datagrams (0 to 1, or a percentage: 5%)
  --duplicate RATE     send this share twice
  --reorder RATE       hold this share back until the next datagram (or 20 ms)
  --stream up|down|both  which direction the faults apply to (default both)
  --seed N             the same faults for the same seed
  --pcap FILE          write every relayed datagram, both ways, to FILE
                       (pcap, made-up Ethernet/IPv4/UDP framing on the real
                       ports, so Wireshark decodes TFTP; needs --allow-write=FILE)`;

const help = `Relay UDP datagrams on LISTEN_PORT to TARGET_HOST TARGET_PORT, both ways,
injecting faults.

Usage: ${USAGE}
${UDP_PROXY_HELP}

Permissions: --allow-net (and --allow-write=FILE with --pcap)

Examples:
  fsd proxy --udp 6969 127.0.0.1 69 --drop 5% --duplicate 2% --reorder 5%`;

function parseRate(text: string | undefined, flag: string): number | undefined {
  if (text === undefined) return undefined;
  const match = /^(\d+(?:\.\d+)?)(%?)$/.exec(text);
  const rate = match ? Number(match[1]) / (match[2] ? 100 : 1) : NaN;
  if (!(rate >= 0 && rate <= 1)) {
    throw new UsageError(`invalid ${flag}: ${text}: expected a rate from 0 to 1, or 0% to 100%`);
  }
  return rate;
}

/** Whether a proxy command line asks for UDP. */
export function isUdpProxy(args: string[]): boolean {
  return args.includes("--udp");
}

export async function runUdpProxy(args: string[]): Promise<void> {
  const parsed = parseCommandLine(args, {
    udp: { type: "boolean" },
    host: { type: "string" },
    drop: { type: "string" },
    duplicate: { type: "string" },
    reorder: { type: "string" },
    stream: { type: "string" },
    seed: { type: "string" },
    pcap: { type: "string" },
  }, help);
  if (!parsed) return;
  const { values, positionals } = parsed;
  expectPositionals(positionals, 3, 3, USAGE);
  const [listenText, targetHost, targetText] = positionals;
  const stream = values.stream ?? "both";
  if (!["up", "down", "both"].includes(stream)) {
    throw new UsageError(`invalid --stream: ${stream}: expected up, down or both`);
  }
  const faults: UdpFaults = {
    drop: parseRate(values.drop, "--drop"),
    duplicate: parseRate(values.duplicate, "--duplicate"),
    reorder: parseRate(values.reorder, "--reorder"),
  };
  const pcap = openCapture(values.pcap);
  const relay = await UdpRelay.start({
    port: parsePort(listenText),
    hostname: values.host,
    targetHost,
    targetPort: parsePort(targetText),
    faults: {
      up: stream === "down" ? {} : faults,
      down: stream === "up" ? {} : faults,
    },
    seed: values.seed === undefined ? undefined : parseCount(values.seed, "--seed"),
    tap: pcap && udpRelayPcapTap(pcap),
    log: (e) => console.log(describe(e)),
  }).catch((error) => {
    pcap?.close();
    return expectedFailure(error);
  });
  const stopped = stopOnSignal(async () => {
    await relay.close();
    pcap?.close();
  });
  console.log(
    `UDP proxy listening on ${relay.addr.hostname} port ${relay.addr.port}, relaying to ${targetHost} port ${targetText}`,
  );
  await stopped;
}

/** One log line per relay event. */
function describe(e: UdpRelayEvent): string {
  switch (e.event) {
    case "client":
      return `[${e.id}] datagrams from ${e.address} port ${e.port}`;
    case "idle":
      return `[${e.id}] idle: ${e.up} datagrams up, ${e.down} down, ${e.dropped} dropped`;
    case "stranger":
      return `[${e.id}] ignored datagrams from ${e.address} port ${e.port}: not the target`;
  }
}
