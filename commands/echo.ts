/**
 * `fsd echo serve PORT` and `fsd echo HOST PORT [MESSAGE ...]`: echo,
 * upper-case, ceiling and chat-room servers over TCP or UDP, and a client
 * that sends messages, prints replies and measures round trips.
 * Its flags, help and permissions are declared below, once.
 */

import { ECHO_DEFAULTS, type EchoMode, startEchoServer } from "../lib/echo/server.ts";
import { limitFlags } from "./shared/limit_flags.ts";
import {
  type EchoChannel,
  type EchoTap,
  openEchoChannel,
  openUdp,
  summarize,
} from "../lib/echo/client.ts";
import { echoPcapTap } from "../lib/capture/pcap_tap.ts";
import { openCapture } from "./shared/capture.ts";
import { pipeTcp, UdpSession } from "../lib/echo/stdio.ts";
import { errorMessage } from "../lib/bytes/source_sink.ts";
import { loginLab, PASSWORD_PROMPT } from "./echo/login.ts";
import { TerminalPipe } from "./shared/terminal.ts";
import { CommandError, expectedFailure, stopOnSignal, UsageError } from "./shared/cli.ts";
import { defineCommand, type Flags, type FlagValues } from "./shared/command.ts";
import { integer, parsePort, seconds } from "./shared/values.ts";
import { orAfter } from "../lib/timer.ts";

const ECHO_FLAGS = {
  ...limitFlags(ECHO_DEFAULTS, "server"),
  udp: {
    type: "boolean",
    permission: "--allow-net=HOST,0.0.0.0",
    help: `use UDP instead of TCP (a UDP client binds a local port:
on loopback for a loopback server, --allow-net=127.0.0.1
is enough; else on the wildcard address,
--allow-net=HOST,0.0.0.0 at the narrowest)`,
  },
  host: {
    arg: "ADDR",
    side: "server",
    help: "address the server listens on (default 0.0.0.0)",
  },
  upper: {
    type: "boolean",
    side: "server",
    help: `the server answers the text in upper case (text modes
are line based: one answer line per message)`,
  },
  ceil: {
    type: "boolean",
    side: "server",
    help: `the server answers a real number's ceiling, the next
integer up ("4.40" gives "5"); anything else gets an
"error: ..." line`,
  },
  broadcast: {
    type: "boolean",
    side: "server",
    help: `a chat room: each message goes to every other client, as
"ID: text", with "* ID joined" and "* ID left" notices.
A client that reads too slowly loses messages (and is
told) instead of stalling the room. Over UDP a peer
joins with its first datagram and leaves with "/leave"
or after 60 silent seconds (at most 32 members; a
message over 1024 bytes is refused)`,
  },
  login: {
    arg: "USERS",
    side: "server",
    permission: "--allow-read=USERS",
    help: `the login lab (TCP): asks "Username:" and "Password:",
checks the pair against the accounts file USERS (see
'fsd user'), answers "Username and password are
correct." and "You are now logged in.", or "Username or
password is incorrect.", and closes. The log shows each
name, and each password as "****"`,
  },
  "show-passwords": {
    type: "boolean",
    side: "server",
    help: "with --login: log passwords as typed (the lab's point)",
  },
  count: {
    arg: "N",
    value: integer(),
    side: "client",
    help: "measure N round trips (0: until Ctrl-C)",
  },
  interval: {
    arg: "SECONDS",
    value: seconds({ min: 0 }),
    default: "1",
    side: "client",
    help: "time between round trips",
  },
  timeout: {
    arg: "SECONDS",
    value: seconds(),
    default: "2",
    side: "client",
    help: "how long to wait for a reply",
  },
  pcap: {
    arg: "FILE",
    side: "client",
    permission: "--allow-write=FILE",
    help: `write what the client sends and receives to FILE
(pcap, made-up Ethernet/IPv4 framing: UDP datagrams on
the real ports, or one TCP conversation)`,
  },
} as const satisfies Flags;

type EchoValues = FlagValues<typeof ECHO_FLAGS>;

export const echo = defineCommand({
  name: "echo",
  title: "Echo servers and clients for socket labs, over TCP or UDP.",
  usage: [
    "fsd echo serve PORT [--udp] [--upper | --ceil | --broadcast] [--host ADDR]",
    "fsd echo serve PORT --login USERS [--show-passwords] [--host ADDR]",
    "fsd echo HOST PORT [MESSAGE ...] [--udp] [--count N] [--interval SECONDS] [--timeout SECONDS]\n                    [--pcap FILE]",
  ],
  about: `Server: answers each message: over TCP a line, or, when no newline comes,
what arrived before the client paused (0.2 s) or half-closed; over UDP a
datagram. By default exactly the bytes that came, as they came (any bytes,
any length, no lines); --upper, --ceil, --broadcast and --login choose
another answer.

Client: sends each MESSAGE as a line and prints the replies. With no MESSAGE
it passes stdin on as it is (over TCP byte for byte, like nc; over UDP one
datagram per line) and prints what comes back; in a UDP chat room it says
"/leave" when it ends. With --count N it sends the message N times, --interval
seconds apart, prints each round trip and ends with a summary in ping's form
(also on Ctrl-C; --count 0 goes on until interrupted); a reply that does not
come within --timeout seconds is a loss. A message starting with "-" (a
negative number) goes after "--". On a terminal, what is typed after a
"Password:" prompt is not echoed, and the client ends when the server closes.`,
  flags: ECHO_FLAGS,
  permissions: "--allow-net",
  examples: [
    "fsd echo serve 7000 --upper",
    "fsd echo 127.0.0.1 7000 hello world",
    "fsd echo serve 7001 --udp --ceil",
    'fsd echo 127.0.0.1 7001 --udp -- 4.40 -2.5   # "--" before negative numbers',
    "fsd echo 127.0.0.1 7000 --count 10 --interval 0.2",
    "fsd echo serve 7002 --broadcast          # then: fsd echo HOST 7002 (type away)",
    "fsd echo serve 7003 --login users.txt    # then: fsd echo HOST 7003",
  ],
  side: {
    of: (positionals) => positionals[0] === "serve" ? "server" : "client",
    names: {
      server: "the server (fsd echo serve PORT)",
      client: "the client (fsd echo HOST PORT)",
    },
  },
  async run({ values, positionals, side }) {
    const udp = values.udp;
    if (side === "server") return await serve(positionals.slice(1), values, udp);
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
    const pcap = openCapture(values.pcap);
    // Written out however the client ends (Ctrl-C exits from a signal handler).
    globalThis.addEventListener("unload", () => pcap?.close());
    const tap = pcap && echoPcapTap(pcap, udp);
    try {
      await talk(host, port, udp, messages, { count, intervalMs, timeoutMs, tap }, cannotConnect);
    } finally {
      pcap?.close();
    }
  },
});

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

async function serve(
  positionals: string[],
  values: EchoValues,
  udp: boolean,
): Promise<void> {
  if (positionals.length !== 1) {
    throw new UsageError("usage: fsd echo serve PORT [--udp] [--upper | --ceil | --broadcast]");
  }
  const port = parsePort(positionals[0]);
  const modes = (["upper", "ceil", "broadcast"] as const).filter((m) => values[m]);
  if (modes.length > 1) {
    throw new UsageError(
      `choose one of --upper, --ceil, --broadcast, not ${modes.map((m) => `--${m}`).join(" and ")}`,
    );
  }
  const mode: EchoMode = modes[0] ?? "echo";
  const limits = (["max-clients", "max-per-ip", "idle-timeout"] as const).find((f) =>
    values[f] !== undefined
  );
  if (udp && limits) {
    throw new UsageError(
      `--${limits} applies to TCP servers: over UDP each source has a rate instead (see --help)`,
    );
  }
  const login = await loginLab(values, udp, modes);
  const server = await startEchoServer({
    port,
    hostname: values.host,
    udp,
    mode,
    login,
    maxClients: values["max-clients"],
    maxPerIp: values["max-per-ip"],
    idleTimeoutMs: values["idle-timeout"],
    log: (line) => console.log(line),
  }).catch(expectedFailure);
  const stopped = stopOnSignal(() => server.close());
  console.log(
    `Echo server (${login ? "login" : mode}, ${
      udp ? "UDP" : "TCP"
    }) listening on ${server.hostname} port ${server.port}`,
  );
  await stopped;
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
