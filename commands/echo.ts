/**
 * `fsd echo serve PORT` and `fsd echo HOST PORT [MESSAGE ...]`: echo,
 * upper-case, ceiling and chat-room servers over TCP or UDP, and a client
 * that sends messages, prints replies and measures round trips.
 *
 * Permissions: --allow-net (a UDP client also binds a local port on the
 * wildcard address: --allow-net=HOST,0.0.0.0 at the narrowest).
 */

import { type EchoMode, startEchoServer } from "../lib/echo/server.ts";
import { type EchoChannel, openEchoChannel, summarize } from "../lib/echo/client.ts";
import { loginLab, PASSWORD_PROMPT, stdinLines } from "./echo_login.ts";
import { StdinLines } from "./terminal.ts";
import {
  type Command,
  parseCommandLine,
  parseCount,
  parsePort,
  parseSeconds,
  stopOnSignal,
  UsageError,
} from "./cli.ts";

const help = `Echo servers and clients for socket labs, over TCP or UDP.

Usage:
  fsd echo serve PORT [--udp] [--upper | --ceil | --broadcast] [--host ADDR]
  fsd echo serve PORT --login USERS [--show-passwords] [--host ADDR]
  fsd echo HOST PORT [MESSAGE ...] [--udp] [--count N] [--interval SECONDS] [--timeout SECONDS]

Server: answers each line (TCP) or datagram (UDP):
  (default)     the same text back
  --upper       the text in upper case
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

Client: sends each MESSAGE (or, with none, each line of stdin) and prints the
replies. On a terminal, what is typed after a "Password:" prompt is not
echoed. With --count N it sends the message N times, --interval seconds apart
(default 1), prints each round trip and ends with a summary in ping's form;
a reply that does not come within --timeout seconds (default 2) is a loss.

Options:
  --udp               use UDP instead of TCP
  --host ADDR         address the server listens on (default 0.0.0.0)
  --count N           measure N round trips
  --interval SECONDS  time between round trips (default 1)
  --timeout SECONDS   how long to wait for a reply (default 2)
  -h, --help          show this help

Permissions: --allow-net (--login USERS adds --allow-read=USERS)

Examples:
  fsd echo serve 7000 --upper
  fsd echo 127.0.0.1 7000 hello world
  fsd echo serve 7001 --udp --ceil
  fsd echo 127.0.0.1 7001 --udp -- 4.40 -2.5   # "--" before negative numbers
  fsd echo 127.0.0.1 7000 --count 10 --interval 0.2
  fsd echo serve 7002 --broadcast          # then: fsd echo HOST 7002 (type away)
  fsd echo serve 7003 --login users.txt    # then: fsd echo HOST 7003`;

async function run(args: string[]): Promise<void> {
  const parsed = parseCommandLine(args, {
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
  }, help);
  if (!parsed) return;
  const { values, positionals } = parsed;
  const udp = Boolean(values.udp);
  if (positionals[0] === "serve") return await serve(positionals.slice(1), values, udp);
  if (positionals.length < 2) {
    throw new UsageError("missing arguments: usage: fsd echo HOST PORT [MESSAGE ...]");
  }
  const [host, portText, ...messages] = positionals;
  const port = parsePort(portText);
  const timeoutMs = values.timeout ? parseSeconds(values.timeout as string, "--timeout") : 2000;
  // Every option is checked before connecting: a usage error has no side effects.
  const count = values.count === undefined
    ? undefined
    : parseCount(values.count as string, "--count", 1);
  const intervalMs = values.interval
    ? parseSeconds(values.interval as string, "--interval", true)
    : 1000;
  const channel = await openEchoChannel(host, port, udp).catch((error) => {
    throw new Error(`cannot connect to ${host} port ${port}: ${(error as Error).message}`);
  });
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
          throw new Error(`no reply to ${JSON.stringify(message)} within ${timeoutMs / 1000} s`);
        }
        console.log(reply);
      }
    } else {
      await interactive(channel, udp, timeoutMs);
    }
  } finally {
    channel.close();
  }
}

async function serve(
  positionals: string[],
  values: Record<string, unknown>,
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
    hostname: values.host as string | undefined,
    udp,
    mode,
    login,
    log: (line) => console.log(line),
  }).catch((error) => {
    if (error instanceof Deno.errors.AddrInUse || /EADDRINUSE/.test(String(error))) {
      throw new Error(`Unable to bind to port ${port}. Sorry! (${(error as Error).message})`);
    }
    throw error;
  });
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
  for (let seq = 1; seq <= count; seq++) {
    const sentAt = performance.now();
    await channel.send(message);
    const reply = await channel.receive(timeoutMs);
    if (reply === null) {
      console.log(`seq=${seq} no reply within ${timeoutMs / 1000} s`);
      if (channel.ended) break;
    } else {
      const rtt = performance.now() - sentAt;
      rtts.push(rtt);
      console.log(`seq=${seq} time=${rtt.toFixed(3)} ms: ${reply}`);
    }
    const wait = sentAt + intervalMs - performance.now();
    if (seq < count && wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  }
  const s = summarize(count, rtts);
  const f = (x: number) => x.toFixed(3);
  console.log(`--- ${target} echo statistics ---`);
  console.log(
    `${s.sent} sent, ${s.received} received, ${s.lossPercent}% loss, time ${
      Math.round(performance.now() - started)
    } ms`,
  );
  if (s.received > 0) {
    console.log(`rtt min/avg/max/mdev = ${f(s.min)}/${f(s.avg)}/${f(s.max)}/${f(s.mdev)} ms`);
  } else throw new Error(`no replies from ${target}`);
}

/**
 * Each stdin line out, every message in, as they come. Over TCP it ends when
 * the server closes (after our end of input, or on its own, as the login lab
 * does); over UDP, nothing says "done", so it ends at the first quiet
 * --timeout after stdin has ended.
 */
async function interactive(channel: EchoChannel, udp: boolean, timeoutMs: number): Promise<void> {
  let stdinDone = false;
  const hiding = new StdinLines();
  const printing = (async () => {
    for (;;) {
      const message = await channel.receive(udp ? timeoutMs : 0);
      if (message !== null && PASSWORD_PROMPT.test(message)) hiding.hide();
      if (message !== null) console.log(message);
      else if (!udp || stdinDone) return;
    }
  })().finally(() => {
    if (!udp) hiding.close(); // the server closed: stop reading stdin too
  });
  for await (const line of stdinLines(hiding)) await channel.send(line);
  stdinDone = true;
  await channel.finish();
  await printing;
}

export const echo: Command = {
  name: "echo",
  summary: "echo, upper-case, ceiling and chat servers and clients; round-trip times",
  help,
  run,
};
