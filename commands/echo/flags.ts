/**
 * `fsd echo`'s flags, declared once: each with its help, its side (the
 * server's, the client's) and the permission it needs.
 */

import { ECHO_DEFAULTS } from "../../lib/echo/defaults.ts";
import { limitFlags } from "../shared/limit_flags.ts";
import type { Flags, FlagValues } from "../shared/command.ts";
import { integer, seconds } from "../shared/values.ts";

export const ECHO_FLAGS = {
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

export type EchoValues = FlagValues<typeof ECHO_FLAGS>;
