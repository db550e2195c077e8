/**
 * `fsd echo serve PORT` and `fsd echo HOST PORT [MESSAGE ...]`: echo,
 * upper-case, ceiling and chat-room servers over TCP or UDP, and a client
 * that sends messages, prints replies and measures round trips.
 * Its flags, help and permissions are declared once, in echo/flags.ts; each
 * side is loaded only when it runs (echo/serve.ts, echo/client.ts).
 */

import { defineCommand } from "./shared/command.ts";
import { ECHO_FLAGS } from "./echo/flags.ts";

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
    // Each side's modules only when it runs: the client loads none of the servers'.
    if (side === "server") {
      const { echoServer } = await import("./echo/serve.ts");
      return await echoServer(positionals.slice(1), values);
    }
    const { echoClient } = await import("./echo/client.ts");
    await echoClient(positionals, values);
  },
});
