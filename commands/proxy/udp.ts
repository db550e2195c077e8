/**
 * `fsd proxy --udp LISTEN_PORT TARGET_HOST TARGET_PORT`: a UDP relay that
 * drops, duplicates and reorders datagrams (for TFTP under loss). Its
 * flags are declared here and listed by commands/proxy.ts.
 */

import { type UdpFaults, UdpRelay, type UdpRelayEvent } from "../../lib/relay/udp_relay.ts";
import { udpRelayPcapTap } from "../../lib/capture/pcap_tap.ts";
import { openCapture } from "../shared/capture.ts";
import { expectedFailure, expectPositionals, stopOnSignal } from "../shared/cli.ts";
import type { Flags, FlagValues } from "../shared/command.ts";
import { integer, parsePort, rate } from "../shared/values.ts";

export const UDP_PROXY_USAGE =
  "fsd proxy --udp LISTEN_PORT TARGET_HOST TARGET_PORT [--drop RATE] [--duplicate RATE] [--reorder RATE] [--pcap FILE]";

/** The heading of the UDP relay's flags in proxy's help. */
export const UDP_PROXY_HEADING =
  `UDP (--udp): a TFTP server's transfer ports are relayed too, each from a port of the relay's own.`;

const udpRate = rate({ zero: true, percent: true });

/** The flags of the UDP relay (side "udp" of fsd proxy). */
export const UDP_PROXY_FLAGS = {
  udp: {
    type: "boolean",
    side: "udp",
    group: "udp",
    help: "relay UDP datagrams instead of TCP connections",
  },
  drop: {
    arg: "RATE",
    value: udpRate,
    side: "udp",
    group: "udp",
    help: "drop this share of datagrams (0 to 1, or a percentage: 5%)",
  },
  duplicate: {
    arg: "RATE",
    value: udpRate,
    side: "udp",
    group: "udp",
    help: "send this share twice",
  },
  reorder: {
    arg: "RATE",
    value: udpRate,
    side: "udp",
    group: "udp",
    help: "hold this share back until the next datagram (or 20 ms)",
  },
  seed: {
    arg: "N",
    value: integer(),
    side: "udp",
    group: "udp",
    help: "the same faults for the same seed",
  },
} as const satisfies Flags;

/** Relays UDP with the flags proxy parsed. */
export async function runUdpProxy(
  values: Partial<FlagValues<typeof UDP_PROXY_FLAGS>> & {
    host?: string;
    pcap?: string;
    stream: "up" | "down" | "both";
  },
  positionals: string[],
): Promise<void> {
  expectPositionals(positionals, 3, 3, UDP_PROXY_USAGE);
  const [listenText, targetHost, targetText] = positionals;
  const stream = values.stream;
  const faults: UdpFaults = {
    drop: values.drop,
    duplicate: values.duplicate,
    reorder: values.reorder,
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
    seed: values.seed,
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
      return `[${e.id}] ignored datagrams from ${e.address} port ${e.port}: neither the target nor the client`;
  }
}
