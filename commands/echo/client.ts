/**
 * `fsd echo HOST PORT [MESSAGE ...]`: sends messages and prints the replies,
 * pipes stdin through (a terminal's password typed unseen), or measures
 * round trips in ping's manner. Loaded only for the client: none of the
 * servers' modules come with it.
 */

import {
  type EchoChannel,
  type EchoTap,
  openEchoChannel,
  openUdp,
  summarize,
} from "../../lib/echo/client.ts";
import { pipeTcp, UdpSession } from "../../lib/echo/stdio.ts";
import { errorMessage } from "../../lib/bytes/source_sink.ts";
import { orAfter } from "../../lib/timer.ts";
import { TerminalPipe } from "../shared/terminal.ts";
import { CommandError, UsageError } from "../shared/cli.ts";
import { parsePort } from "../shared/values.ts";
import type { EchoValues } from "./flags.ts";

/** A line from the server after which the client's next line is typed without echo. */
const PASSWORD_PROMPT = /^Password:\s*$/;

/** The client, from its positionals (HOST PORT [MESSAGE ...]) and flags. */
export async function echoClient(positionals: string[], values: EchoValues): Promise<void> {
  const udp = values.udp;
  if (positionals.length < 2) {
    throw new UsageError("missing arguments: usage: fsd echo HOST PORT [MESSAGE ...]");
  }
  const [host, portText, ...messages] = positionals;
  const port = parsePort(portText, 1);
  const { count, interval: intervalMs, timeout: timeoutMs } = values;
  const cannotConnect = (error: unknown): never => {
    throw new CommandError(`cannot connect to ${host} port ${port}: ${errorMessage(error)}`, {
      cause: error,
    });
  };
  // The capture's modules only with --pcap.
  const pcap = values.pcap === undefined
    ? undefined
    : (await import("../shared/capture.ts")).openCapture(values.pcap);
  // Written out however the client ends (Ctrl-C exits from a signal handler).
  globalThis.addEventListener("unload", () => pcap?.close());
  const tap = pcap && (await import("../../lib/capture/pcap_tap.ts")).echoPcapTap(pcap, udp);
  try {
    await talk(host, port, udp, messages, { count, intervalMs, timeoutMs, tap }, cannotConnect);
  } finally {
    pcap?.close();
  }
}

/** The client's exchange: stdin piped, or MESSAGEs sent, or --count round trips. */
async function talk(
  host: string,
  port: number,
  udp: boolean,
  messages: string[],
  { count, intervalMs, timeoutMs, tap }: {
    count?: number;
    intervalMs: number;
    timeoutMs: number;
    tap?: EchoTap;
  },
  cannotConnect: (error: unknown) => never,
): Promise<void> {
  if (count === undefined && messages.length === 0) {
    if (!udp) {
      const terminal = new TerminalPipe(PASSWORD_PROMPT);
      return await pipeTcp(host, port, terminal.input, terminal.output, tap).catch(
        cannotConnect,
      );
    }
    return await udpSession(await openUdp(host, port, tap).catch(cannotConnect), timeoutMs);
  }
  const channel = await openEchoChannel(host, port, udp, tap).catch(cannotConnect);
  try {
    if (count !== undefined) {
      await measure(
        channel,
        `${host} port ${port}`,
        messages.join(" ") || "ping",
        count,
        intervalMs,
        timeoutMs,
      );
    } else if (messages.length > 0) {
      for (const message of messages) {
        await channel.send(message);
        const reply = await channel.receive(timeoutMs);
        if (reply === null) {
          throw new CommandError(
            `no reply to ${JSON.stringify(message)} within ${timeoutMs / 1000} s${
              udp ? UDP_SILENCE : ""
            }`,
          );
        }
        console.log(reply);
      }
    }
  } finally {
    channel.close();
  }
}

/** Round trips in ping's manner. */
async function measure(
  channel: EchoChannel,
  target: string,
  message: string,
  count: number,
  intervalMs: number,
  timeoutMs: number,
): Promise<void> {
  const rtts: number[] = [];
  const started = performance.now();
  // Ctrl-C ends the run early, and the statistics still come, as with ping.
  let interrupt!: () => void;
  const interrupted = new Promise<"interrupted">((resolve) => {
    interrupt = () => resolve("interrupted");
  });
  Deno.addSignalListener("SIGINT", interrupt);
  let sent = 0;
  try {
    for (let seq = 1; count === 0 || seq <= count; seq++) {
      const sentAt = performance.now();
      await channel.send(message);
      sent++;
      const reply = await Promise.race([channel.receive(timeoutMs), interrupted]);
      if (reply === "interrupted") break;
      if (!report(seq, reply, sentAt, rtts, timeoutMs) && channel.ended) break;
      const wait = sentAt + intervalMs - performance.now();
      if ((count === 0 || seq < count) && wait > 0) {
        if (await orAfter(interrupted, wait, "paused") === "interrupted") break;
      }
    }
  } finally {
    Deno.removeSignalListener("SIGINT", interrupt);
  }
  printStatistics(target, summarize(sent, rtts), performance.now() - started);
}

/** Prints one round trip; false when no reply came. */
function report(
  seq: number,
  reply: string | null,
  sentAt: number,
  rtts: number[],
  timeoutMs: number,
): boolean {
  if (reply === null) {
    console.log(`seq=${seq} no reply within ${timeoutMs / 1000} s`);
    return false;
  }
  const rtt = performance.now() - sentAt;
  rtts.push(rtt);
  console.log(`seq=${seq} time=${rtt.toFixed(3)} ms: ${reply}`);
  return true;
}

function printStatistics(target: string, s: ReturnType<typeof summarize>, elapsedMs: number): void {
  const f = (x: number) => x.toFixed(3);
  console.log(`--- ${target} echo statistics ---`);
  console.log(
    `${s.sent} sent, ${s.received} received, ${s.lossPercent}% loss, time ${
      Math.round(elapsedMs)
    } ms`,
  );
  if (s.received > 0) {
    console.log(`rtt min/avg/max/mdev = ${f(s.min)}/${f(s.avg)}/${f(s.max)}/${f(s.mdev)} ms`);
  } else throw new CommandError(`no replies from ${target}`);
}

/**
 * Stdin to a UDP server, datagrams back to stdout, until stdin has ended and
 * nothing came for --timeout (UDP has no "done"). Ctrl-C leaves a chat room
 * properly before exiting.
 */
async function udpSession(
  channel: Awaited<ReturnType<typeof openUdp>>,
  timeoutMs: number,
): Promise<void> {
  const session = new UdpSession(channel);
  const onInterrupt = async () => {
    await session.leave();
    channel.close();
    Deno.exit(130);
  };
  Deno.addSignalListener("SIGINT", onInterrupt);
  try {
    await session.run(Deno.stdin, Deno.stdout, timeoutMs);
  } finally {
    Deno.removeSignalListener("SIGINT", onInterrupt);
    channel.close();
  }
}

/**
 * Over UDP a closed port answers with ICMP "port unreachable", which only a
 * connected socket sees; Deno's node:dgram does not connect at the OS level
 * (denoland/deno#36492), so the client cannot tell it from a loss.
 */
const UDP_SILENCE = " (over UDP a closed port looks like a lost datagram)";
