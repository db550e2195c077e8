/**
 * `fsd echo serve PORT` and `fsd echo HOST PORT [MESSAGE ...]`: echo,
 * upper-case, ceiling and chat-room servers over TCP or UDP, and a client
 * that sends messages, prints replies and measures round trips.
 *
 * Permissions: --allow-net (--login USERS adds --allow-read=USERS) (a UDP client also binds a local port on the
 * wildcard address: --allow-net=HOST,0.0.0.0 at the narrowest).
 */

import { type EchoMode, startEchoServer } from "../lib/echo/server.ts";
import { type EchoChannel, openEchoChannel, openUdp, summarize } from "../lib/echo/client.ts";
import { pipeTcp, UdpSession } from "../lib/echo/stdio.ts";
import { errorMessage } from "../lib/bytes/source_sink.ts";
import { loginLab, PASSWORD_PROMPT } from "./echo/login.ts";
import { TerminalPipe } from "./shared/terminal.ts";
import {
  type Command,
  CommandError,
  expectedFailure,
  parseCommandLine,
  parseCount,
  type ParsedCommandLine,
  parsePort,
  parseSeconds,
  stopOnSignal,
  UsageError,
} from "./shared/cli.ts";

const help = `Echo servers and clients for socket labs, over TCP or UDP.

Usage:
  fsd echo serve PORT [--udp] [--upper | --ceil | --broadcast] [--host ADDR]
  fsd echo serve PORT --login USERS [--show-passwords] [--host ADDR]
  fsd echo HOST PORT [MESSAGE ...] [--udp] [--count N] [--interval SECONDS] [--timeout SECONDS]

Server: answers each message: over TCP a line, or, when no newline comes,
what arrived before the client paused (0.2 s) or half-closed; over UDP a
datagram:
  (default)     exactly the bytes that came, as they came (any bytes, any
                length, no lines)
  --upper       the text in upper case (text modes are line based: one answer
                line per message)
  --ceil        a real number's ceiling, the next integer up ("4.40" gives "5");
                anything else gets an "error: ..." line
  --broadcast   a chat room: each message goes to every other client, as
                "ID: text", with "* ID joined" and "* ID left" notices. A client
                that reads too slowly loses messages (and is told) instead of
                stalling the room. Over UDP a peer joins with its first datagram
                and leaves with "/leave" or after 5 silent minutes.

  --login USERS the login lab (TCP): asks "Username:" and "Password:", checks
                the pair against the accounts file USERS (see 'fsd user'),
                answers "Username and password are correct." and "You are now
                logged in.", or "Username or password is incorrect.", and
                closes. The log shows each name, and each password as "****"
                (--show-passwords: as typed, the lab's point about clear text).

Client: sends each MESSAGE as a line and prints the replies. With no MESSAGE
it passes stdin on as it is (over TCP byte for byte, like nc; over UDP one
datagram per line) and prints what comes back; in a UDP chat room it says
"/leave" when it ends. With --count N it sends the message N times, --interval
seconds apart (default 1), prints each round trip and ends with a summary in
ping's form (also on Ctrl-C; --count 0 goes on until interrupted); a reply
that does not come within --timeout seconds (default 2) is a loss. A message
starting with "-" (a negative number) goes after "--". On a terminal, what
is typed after a "Password:" prompt is not echoed, and the client ends when
the server closes.

Options:
  --udp               use UDP instead of TCP
  --host ADDR         address the server listens on (default 0.0.0.0)
  --count N           measure N round trips (0: until Ctrl-C)
  --interval SECONDS  time between round trips (default 1)
  --timeout SECONDS   how long to wait for a reply (default 2)
  -h, --help          show this help

Permissions: --allow-net

Examples:
  fsd echo serve 7000 --upper
  fsd echo 127.0.0.1 7000 hello world
  fsd echo serve 7001 --udp --ceil
  fsd echo 127.0.0.1 7001 --udp -- 4.40 -2.5   # "--" before negative numbers
  fsd echo 127.0.0.1 7000 --count 10 --interval 0.2
  fsd echo serve 7002 --broadcast          # then: fsd echo HOST 7002 (type away)
  fsd echo serve 7003 --login users.txt    # then: fsd echo HOST 7003`;

const ECHO_FLAGS = {
  udp: { type: "boolean" },
  upper: { type: "boolean" },
  ceil: { type: "boolean" },
  broadcast: { type: "boolean" },
  login: { type: "string" },
  "show-passwords": { type: "boolean" },
  host: { type: "string" },
  count: { type: "string" },
  interval: { type: "string" },
  timeout: { type: "string" },
} as const;

type EchoValues = ParsedCommandLine<typeof ECHO_FLAGS>["values"];

async function run(args: string[]): Promise<void> {
  const parsed = parseCommandLine(args, ECHO_FLAGS, help);
  if (!parsed) return;
  const { values, positionals } = parsed;
  const udp = values.udp ?? false;
  if (positionals[0] === "serve") {
    refuseFlags(values, CLIENT_ONLY, "the client (fsd echo HOST PORT)");
    return await serve(positionals.slice(1), values, udp);
  }
  refuseFlags(values, SERVER_ONLY, "the server (fsd echo serve PORT)");
  if (positionals.length < 2) {
    throw new UsageError("missing arguments: usage: fsd echo HOST PORT [MESSAGE ...]");
  }
  const [host, portText, ...messages] = positionals;
  const port = parsePort(portText, 1);
  const timeoutMs = values.timeout ? parseSeconds(values.timeout, "--timeout") : 2000;
  // Every option is checked before connecting: a usage error has no side effects.
  const count = values.count === undefined ? undefined : parseCount(values.count, "--count");
  const intervalMs = values.interval ? parseSeconds(values.interval, "--interval", true) : 1000;
  const cannotConnect = (error: unknown): never => {
    throw new CommandError(`cannot connect to ${host} port ${port}: ${errorMessage(error)}`, {
      cause: error,
    });
  };
  if (count === undefined && messages.length === 0) {
    if (!udp) {
      const terminal = new TerminalPipe(PASSWORD_PROMPT);
      return await pipeTcp(host, port, terminal.input, terminal.output).catch(cannotConnect);
    }
    return await udpSession(await openUdp(host, port).catch(cannotConnect), timeoutMs);
  }
  const channel = await openEchoChannel(host, port, udp).catch(cannotConnect);
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
  const login = await loginLab(values, udp, modes);
  const server = await startEchoServer({
    port,
    hostname: values.host,
    udp,
    mode,
    login,
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
        let timer: ReturnType<typeof setTimeout> | undefined;
        const pause = new Promise((resolve) => timer = setTimeout(resolve, wait));
        const why = await Promise.race([pause, interrupted]);
        clearTimeout(timer);
        if (why === "interrupted") break;
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

const SERVER_ONLY = ["upper", "ceil", "broadcast", "host", "login", "show-passwords"] as const;
const CLIENT_ONLY = ["count", "interval", "timeout"] as const;

/** A flag meant for the other side is a usage error, not silently ignored. */
function refuseFlags(values: EchoValues, flags: readonly (keyof EchoValues)[], side: string): void {
  const given = flags.find((flag) => values[flag] !== undefined);
  if (given) throw new UsageError(`--${given} is an option of ${side}`);
}

export const echo: Command = {
  name: "echo",
  summary: "echo, upper-case, ceiling and chat servers and clients; round-trip times",
  help,
  run,
};
